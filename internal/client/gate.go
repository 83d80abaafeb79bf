package client

// The words of `cairn backup --commit-gate` (docs/commands.md, "Commit
// gate"), shared by the backup that asks and the agent that answers: the
// backup writes one JSON line whose message_type is GateQuestion, the
// parent answers one line, GateCommit or GateAbort.
const (
	GateQuestion = "commit_pending"
	GateCommit   = "commit"
	GateAbort    = "abort"
)
