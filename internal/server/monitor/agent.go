package monitor

import (
	"time"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// AgentSubject is the alert subject of a client's agent runs: the last
// one its agent reported failed or gave up.
func AgentSubject(client string) string { return "agent " + client }

// AgentRunSummary is a client's last reported agent run in its status.
type AgentRunSummary struct {
	RunID      string    `json:"run_id"`
	Attempt    int       `json:"attempt"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Result     string    `json:"result"` // ok, failed or gave-up
	BytesAdded int64     `json:"bytes_added"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

// AgentLevel is the agent rule: WARNING while the last reported run
// failed or gave up, until a later successful run or a snapshot that
// arrived after the report (both on the server's clock); OK otherwise.
func AgentLevel(c state.Client, last reports.AgentRun, ok bool) (alert.Level, string) {
	if !ok || last.Result == "ok" /* restapi.AgentOK */ || (!c.LastSnapshot.IsZero() && !c.LastSnapshot.Before(last.Received)) {
		return alert.OK, "last agent run succeeded or a snapshot arrived since"
	}
	return alert.Warning, "last agent run failed: " + last.Error
}

func agentSummary(r reports.AgentRun) *AgentRunSummary {
	return &AgentRunSummary{RunID: r.RunID, Attempt: r.Attempt, Start: r.Start, End: r.End, Result: r.Result,
		BytesAdded: r.BytesAdded, DurationMS: r.Duration.Milliseconds(), Error: r.Error}
}

// agentStatus raises a client's level to at least WARNING while its last
// agent run failed (AgentLevel), and records that run.
func agentStatus(cs *ClientStatus, c state.Client, last reports.AgentRun, ok bool) {
	if !ok {
		return
	}
	cs.AgentRun = agentSummary(last)
	if c.Disabled {
		return
	}
	level, reason := AgentLevel(c, last, ok)
	if level == alert.OK {
		return
	}
	if cs.Level >= level {
		cs.Reason += "; " + reason
		return
	}
	cs.Level, cs.Reason = level, reason
	if !cs.Never {
		cs.State = level.String()
	}
}
