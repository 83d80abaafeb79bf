package audit

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// TestRolling: the rolling audit of `cairn server run` audits at once when
// none ever ran, then at a tick only once the period has passed since the
// last audit the state database records (so a restart does not audit
// twice), and stops when its context ends. A failing audit or state read
// is logged and the loop goes on.
func TestRolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddClient(ctx, state.Client{Name: "bob", Hash: "x"}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
		now := t0
		var logs bytes.Buffer
		a := New(Config{State: st, Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now },
			Open: func(context.Context, string) (backend.Backend, error) { panic("no repositories") }})
		last := func() time.Time {
			t.Helper()
			at, err := st.LastAudit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return at
		}

		rctx, cancel := context.WithCancel(ctx)
		ticks := make(chan time.Time)
		done := make(chan struct{})
		opt := Options{Fraction: 1, Period: time.Hour}
		go func() {
			a.Rolling(rctx, opt, ticks)
			close(done)
		}()
		tick := func(at time.Time) {
			now = at
			ticks <- at
			synctest.Wait() // the round the tick started has ended
		}
		synctest.Wait()
		if !last().Equal(t0) || !strings.Contains(logs.String(), "audit done") {
			t.Fatalf("first audit at %v; log %s", last(), logs.String())
		}
		tick(t0.Add(59 * time.Minute))
		if !last().Equal(t0) {
			t.Fatalf("audited again before the period: %v", last())
		}
		tick(t0.Add(time.Hour))
		if !last().Equal(t0.Add(time.Hour)) {
			t.Fatalf("not audited after the period: %v", last())
		}
		cancel()
		<-done

		// A restart with the last audit recorded does not audit at once;
		// an audit that fails is logged.
		logs.Reset()
		rctx, cancel = context.WithCancel(ctx)
		done = make(chan struct{})
		go func() {
			a.Rolling(rctx, Options{Fraction: 2, Period: time.Hour}, ticks)
			close(done)
		}()
		synctest.Wait()
		if strings.Contains(logs.String(), "audit") {
			t.Fatalf("audited at a restart within the period: %s", logs.String())
		}
		tick(t0.Add(2 * time.Hour))
		if !strings.Contains(logs.String(), "audit failed") || !strings.Contains(logs.String(), "fraction 2") {
			t.Fatalf("log %s", logs.String())
		}
		// The state database fails: logged, and no audit.
		st.Close()
		tick(t0.Add(3 * time.Hour))
		if !strings.Contains(logs.String(), "read the last audit") {
			t.Fatalf("log %s", logs.String())
		}
		cancel()
		<-done
	})
}

// TestCollector: each audited client's last audit is exported; a state
// database that cannot be read exports nothing and says so in the log.
func TestCollector(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	bad := f.put(backend.Data, "a pack")
	if err := f.primary.Corrupt(bad, corrupt); err != nil {
		t.Fatal(err)
	}
	f.run(Options{})
	var logs bytes.Buffer
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(&Collector{State: f.st, Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != "bob" {
				t.Fatalf("%s labels %v", mf.GetName(), m.GetLabel())
			}
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"cairn_server_audit_last_timestamp_seconds": float64(f.now.Unix()),
		"cairn_server_audit_coverage_ratio":         0,
		"cairn_server_audit_bad_files":              1,
		"cairn_server_audit_unhealed_files":         1,
		"cairn_server_audit_read_bytes":             float64(len("a pack")),
	}
	if len(got) != len(want) {
		t.Fatalf("metrics %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	f.st.Close()
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("gathered %v %v from a closed state database", mfs, err)
	}
	if !strings.Contains(logs.String(), "metrics: audit results") {
		t.Fatalf("log %s", logs.String())
	}
}
