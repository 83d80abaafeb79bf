package reports_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

func TestAgentRunsKeepsTheLast(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, n := range []string{"alice", "bob"} {
		if err := st.AddClient(ctx, state.Client{Name: n, Hash: "h", Created: time.Unix(100, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range reports.AgentRunsKept + 5 {
		at := time.Unix(int64(1000+i), 0)
		if err := st.RecordAgentRun(ctx, reports.AgentRun{Client: "alice", RunID: "ab", Attempt: i + 1, Start: at, End: at, Received: at, Result: "failed", Error: "e", Duration: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordAgentRun(ctx, reports.AgentRun{Client: "bob", RunID: "cd", Attempt: 1, Start: time.Unix(5, 0), End: time.Unix(6, 0), Received: time.Unix(7, 0), Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	runs, err := st.AgentRuns(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != reports.AgentRunsKept || runs[0].Attempt != reports.AgentRunsKept+5 || runs[len(runs)-1].Attempt != 6 {
		t.Fatalf("%d runs kept, newest attempt %d, oldest %d", len(runs), runs[0].Attempt, runs[len(runs)-1].Attempt)
	}
	last, err := st.LastAgentRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := last["alice"], last["bob"]; len(last) != 2 || a.Attempt != reports.AgentRunsKept+5 || a.Duration != time.Second || b.Result != "ok" || !b.Received.Equal(time.Unix(7, 0)) {
		t.Fatalf("last runs: %+v", last)
	}
	// Removing a client removes its runs.
	if err := st.RemoveClient(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if runs, _ := st.AgentRuns(ctx, "bob"); len(runs) != 0 {
		t.Errorf("%d runs of a removed client", len(runs))
	}
}
