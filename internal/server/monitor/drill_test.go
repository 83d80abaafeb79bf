package monitor

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// Restore drills: never drilled is its own state, aged from enrolment;
// a drill record makes it OK until it is older than the limit (the
// default or the client's own); the oldest repository governs; the
// Watcher raises the alert and clears it, and /metrics shows it.
func TestDrillLevels(t *testing.T) {
	ctx := context.Background()
	st, _ := setup(t) // alice, enrolled at t0-1h, backed up at t0
	for _, r := range []string{"alice/a", "alice/b"} {
		if err := st.NoteRepo(ctx, "alice", r); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(at time.Time) ClientStatus {
		t.Helper()
		r, err := Evaluate(ctx, st, nil, at, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return r.Clients[0]
	}
	if c := eval(t0.Add(24 * time.Hour)); c.DrillState != "never drilled" || c.DrillLevel != alert.OK || len(c.Drills) != 2 || c.DrillAfterSecs != int64(DefaultDrillAfter/time.Second) {
		t.Fatalf("fresh client: %+v", c)
	}
	if c := eval(t0.Add(DefaultDrillAfter)); c.DrillState != "never drilled" || c.DrillLevel != alert.Alert || !strings.Contains(c.DrillReason, "never drilled") {
		t.Fatalf("never drilled after the limit: %+v", c)
	}
	drill := func(repo string, at time.Time) {
		if err := st.RecordDrill(ctx, reports.Drill{Client: "alice", Repo: repo, Snapshot: "ab", At: at, Received: at, Files: 1, Total: 1, Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	drill("alice/a", t0.Add(30*24*time.Hour))
	if c := eval(t0.Add(DefaultDrillAfter)); c.DrillLevel != alert.Alert || !strings.Contains(c.DrillReason, "alice/b never drilled") {
		t.Fatalf("one repository never drilled: %+v", c)
	}
	drill("alice/b", t0.Add(31*24*time.Hour))
	c := eval(t0.Add(DefaultDrillAfter))
	if c.DrillState != "OK" || !c.LastDrill.Equal(t0.Add(30*24*time.Hour)) || !strings.Contains(c.DrillReason, "alice/a") {
		t.Fatalf("both drilled: %+v", c)
	}
	late := t0.Add(66 * 24 * time.Hour)
	if c := eval(late); c.DrillLevel != alert.Alert {
		t.Fatalf("36 days after the drill of alice/a: %+v", c)
	}
	if err := st.SetDrillAfter(ctx, "alice", 40*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if c := eval(late); c.DrillLevel != alert.OK {
		t.Fatalf("with --drill-after 40d: %+v", c)
	}
	if err := st.SetDrillAfter(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}

	// The Watcher raises the drill alert as its own subject.
	now := late
	w := &Watcher{State: st, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := Evaluate(ctx, st, nil, now, "")
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, ev := range r.Alerts {
		subjects = append(subjects, ev.Subject)
	}
	if !strings.Contains(strings.Join(subjects, ","), DrillSubject("alice")) || len(r.Clients[0].Alerts) != len(r.Alerts) {
		t.Fatalf("open alerts %v, alice's %v", subjects, r.Clients[0].Alerts)
	}
	drill("alice/a", now)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := Evaluate(ctx, st, nil, now, ""); len(r.Clients[0].Alerts) != 1 || r.Clients[0].Alerts[0].Subject != Subject("alice") {
		t.Fatalf("after a new drill, open: %+v", r.Clients[0].Alerts)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&Collector{State: st, Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()]++
			if mf.GetName() == "cairn_server_client_drill_state" && m.GetGauge().GetValue() != 0 {
				t.Errorf("drill state %v after a fresh drill", m.GetGauge().GetValue())
			}
		}
	}
	if got["cairn_server_client_drill_state"] != 1 || got["cairn_server_last_drill_timestamp_seconds"] != 2 {
		t.Fatalf("series %v", got)
	}
}

// The Watcher notes the history of what a client stores, once per change.
func TestWatcherNotesHistory(t *testing.T) {
	ctx := context.Background()
	st, now := setup(t)
	w := &Watcher{State: st, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return *now }}
	for i := 0; i < 3; i++ {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		*now = now.Add(time.Minute)
	}
	if err := st.RecordSnapshot(ctx, "alice", *now); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := st.History(ctx, "alice", 10)
	if err != nil || len(h) != 2 || h[1].Snapshots != 2 {
		t.Fatalf("history %+v %v", h, err)
	}
}
