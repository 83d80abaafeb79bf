package monitor

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

func TestEvaluateAgentRuns(t *testing.T) {
	ctx := context.Background()
	st, _ := setup(t) // alice's last snapshot at t0
	report := func(at time.Duration, result, msg string) {
		t.Helper()
		end := t0.Add(at)
		if err := st.RecordAgentRun(ctx, reports.AgentRun{Client: "alice", RunID: "ab", Attempt: 1, Start: end.Add(-time.Minute), End: end,
			Received: end, Result: result, Error: msg}); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(at time.Duration) ClientStatus {
		t.Helper()
		r, err := Evaluate(ctx, st, nil, t0.Add(at), "")
		if err != nil {
			t.Fatal(err)
		}
		return r.Clients[0]
	}
	if c := eval(time.Hour); c.Level != alert.OK || c.AgentRun != nil {
		t.Fatalf("no run reported: %+v", c)
	}
	report(time.Hour, "failed", "disk not mounted")
	c := eval(2 * time.Hour)
	if c.Level != alert.Warning || c.State != "WARNING" || c.Reason != "last agent run failed: disk not mounted" || c.AgentRun == nil || c.AgentRun.Result != "failed" {
		t.Fatalf("after a failed run: %+v", c)
	}
	// Already at ALERT for its age: the level stays, the reason says both.
	c = eval(40 * time.Hour)
	if c.Level != alert.Alert || !strings.Contains(c.Reason, "; last agent run failed: disk not mounted") {
		t.Fatalf("old and failed: %+v", c)
	}
	// A snapshot that arrived after the report clears it.
	if err := st.RecordSnapshot(ctx, "alice", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c := eval(4 * time.Hour); c.Level != alert.OK || c.AgentRun.Result != "failed" {
		t.Fatalf("snapshot after the failed run: %+v", c)
	}
	report(5*time.Hour, "gave-up", "every attempt failed")
	if c := eval(6 * time.Hour); c.Level != alert.Warning {
		t.Fatalf("gave up: %+v", c)
	}
	// So does a later successful run.
	report(7*time.Hour, "ok", "")
	if c := eval(8 * time.Hour); c.Level != alert.OK || c.AgentRun.Result != "ok" {
		t.Fatalf("after a successful run: %+v", c)
	}
}

func TestWatcherAlertsOnFailedAgentRun(t *testing.T) {
	ctx := context.Background()
	st, now := setup(t)
	rec := newReceiver(t)
	addHook(t, st, "hook", rec.srv.URL, 2*time.Hour)
	w := &Watcher{State: st, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return *now }, Server: "test"}
	*now = t0.Add(time.Hour)
	if err := st.RecordAgentRun(ctx, reports.AgentRun{Client: "alice", RunID: "ab", Attempt: 1, Start: *now, End: *now, Received: *now, Result: "gave-up", Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].Subject != AgentSubject("alice") || evs[0].Level != alert.Warning || evs[0].Reason != "last agent run failed: boom" {
		t.Fatalf("events: %+v", evs)
	}
}
