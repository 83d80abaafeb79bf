package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
)

// waitJobs waits until the client has n recorded jobs.
func waitJobs(t *testing.T, ts *testServer, client string, n int) []state.Job {
	t.Helper()
	for range 200 {
		jobs, err := ts.data.State.Jobs(context.Background(), client, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) >= n {
			return jobs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d jobs", client, n)
	return nil
}

// TestScheduledMaintenance: on a tick the server applies bob's policy to
// his cairn repository (tombstones, then the snapshot files), only once
// per --every; a space budget it cannot meet makes his uploads 507 until
// the policy changes (R13).
func TestScheduledMaintenance(t *testing.T) {
	ticks := make(chan time.Time)
	ts := startTest(t, Options{MaintainTicks: ticks})
	ctx := context.Background()
	repo, be := ts.cairnClient("m")
	for i := range 4 {
		commit(t, repo, "content "+string(rune('a'+i)))
		ts.advance(2 * time.Hour)
	}
	st := ts.data.State
	if err := st.SetPolicy(ctx, "bob", policy.Policy{Keep: retention.Policy{Last: 2}, GroupBy: policy.DefaultGroupBy, Every: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ticks <- ts.nowFn()
	jobs := waitJobs(t, ts, "bob", 1)
	if j := jobs[0]; j.Error != "" || j.SnapshotsRemoved != 2 || j.Repo != "bob/m" || j.BytesFreed <= 0 {
		t.Fatalf("job %+v", j)
	}
	if n, m := count(t, be, backend.Snapshots), count(t, be, backend.Tombstones); n != 2 || m != 2 {
		t.Fatalf("%d snapshots and %d tombstones left, want 2 and 2", n, m)
	}
	// Not due again within --every: a second tick is taken only after
	// the first's pass is done, and records nothing.
	ticks <- ts.nowFn()
	ticks <- ts.nowFn()
	if jobs, _ := st.Jobs(ctx, "bob", 100); len(jobs) != 1 {
		t.Fatalf("%d jobs within one --every", len(jobs))
	}

	// A budget of one byte cannot be met without deleting floors.
	if err := st.SetPolicy(ctx, "bob", policy.Policy{MaxSize: 1, GroupBy: policy.DefaultGroupBy, Every: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ts.advance(2 * time.Hour)
	ticks <- ts.nowFn()
	jobs = waitJobs(t, ts, "bob", 2)
	if jobs[0].SnapshotsRemoved != 0 || jobs[0].Error == "" {
		t.Fatalf("over-budget job %+v", jobs[0])
	}
	ticks <- ts.nowFn() // the pass that recorded the job has finished
	if b, _ := st.BudgetOf(ctx, "bob"); !b.Exceeded {
		t.Fatalf("budget not marked exceeded; job: %+v", jobs[0])
	}
	if n := count(t, be, backend.Snapshots); n != 2 {
		t.Fatalf("%d snapshots left over budget, want 2 (floors)", n)
	}
	body := random(1000)
	h := sha256.Sum256(body)
	path := "/bob/restic/data/" + hex.EncodeToString(h[:])
	if code, _, _ := ts.do("bob", pwBob, http.MethodPost, "/bob/restic/?create=true", nil); code != http.StatusOK {
		t.Fatalf("create: %d", code)
	}
	if code, _, msg := ts.do("bob", pwBob, http.MethodPost, path, body); code != http.StatusInsufficientStorage {
		t.Fatalf("upload over budget: %d %s", code, msg)
	}
	if code, _, _ := ts.do("alice", pwAlice, http.MethodPost, "/alice/x/?create=true", nil); code != http.StatusOK {
		t.Fatal("another client is refused")
	}
	srv, err := New(ts.data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `cairn_client_budget_exceeded{client="bob"} 1`) {
		t.Fatalf("no budget alert in /metrics:\n%s", rec.Body.String())
	}
	if err := st.ClearPolicy(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if code, _, msg := ts.do("bob", pwBob, http.MethodPost, path, body); code != http.StatusOK {
		t.Fatalf("upload after the policy was cleared: %d %s", code, msg)
	}
}

// TestMaintenanceKeepsWritersLast: a policy that keeps nothing of a
// writer still leaves its last statement, which its next commit chains to.
func TestMaintenanceKeepsWritersLast(t *testing.T) {
	ticks := make(chan time.Time)
	ts := startTest(t, Options{MaintainTicks: ticks})
	ctx := context.Background()
	repo, be := ts.cairnClient("k")
	for i := range 3 {
		commit(t, repo, "content "+string(rune('a'+i)))
		ts.advance(2 * time.Hour)
	}
	if err := ts.data.State.SetPolicy(ctx, "bob", policy.Policy{Keep: retention.Policy{Tags: []string{"never-set"}}, GroupBy: policy.DefaultGroupBy, Every: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ticks <- ts.nowFn()
	if j := waitJobs(t, ts, "bob", 1)[0]; j.SnapshotsRemoved != 2 || j.Error != "" {
		t.Fatalf("job %+v", j)
	}
	if n := count(t, be, backend.Snapshots); n != 1 {
		t.Fatalf("%d snapshots left, want the writer's last", n)
	}
	commit(t, repo, "after maintenance") // chains to the kept statement
}
