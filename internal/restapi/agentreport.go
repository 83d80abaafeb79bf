package restapi

// Agent run reports (docs/agent.md, docs/server.md): after each attempt
// and at the end of a run, `cairn agent` POSTs an AgentReport to
// /{client}/?agent-report with the client's credentials; the server keeps
// the last runs of each client and `cairn server status` warns while the
// last one failed. A client reports only for itself (its name is the
// path's only component).

import "time"

// AgentReportQuery is the query of POST /{client}/?agent-report.
const AgentReportQuery = "agent-report"

// MaxAgentReport caps the body of an agent report in bytes.
const MaxAgentReport = 4 << 10

// MaxAgentReportError caps the error text of an agent report in bytes;
// the agent truncates longer text, the server refuses it.
const MaxAgentReportError = 1 << 10

// Results of an agent run report.
const (
	AgentOK     = "ok"      // the attempt succeeded
	AgentFailed = "failed"  // the attempt failed; another may follow
	AgentGaveUp = "gave-up" // the last attempt failed: the run gave up
)

// AgentReport is one attempt of an agent run.
type AgentReport struct {
	RunID   string    `json:"run_id"`  // the run's ID, shared by its attempts (1 to 64 of [0-9a-f])
	Attempt int       `json:"attempt"` // 1 for the first
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Result  string    `json:"result"` // AgentOK, AgentFailed or AgentGaveUp
	// BytesAdded is what the backup added to the repository, when the
	// agent knows it (0 otherwise).
	BytesAdded int64 `json:"bytes_added"`
	// DurationMS is End-Start in milliseconds, as the agent measured it.
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// AgentPollQuery is the query of GET /{client}/?agent-poll: a daemon
// agent asks whether an operator wants a run now (`cairn server client
// run-now`). The server can only ask for a run of the job the agent
// already has; it never sends a command.
const AgentPollQuery = "agent-poll"

// AgentPoll is the answer to an agent poll.
type AgentPoll struct {
	RunNow      bool      `json:"run_now"`
	RequestedAt time.Time `json:"requested_at,omitzero"` // when the run was asked for (server's clock)
}
