package replication

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

func put(t *testing.T, be backend.Backend, typ backend.FileType, content string) backend.Handle {
	t.Helper()
	h := backend.Handle{Type: typ, Name: backend.NameOf([]byte(content))}
	if typ == backend.Config {
		h.Name = "config"
	}
	if err := be.Save(context.Background(), h, backend.NewByteReader([]byte(content))); err != nil {
		t.Fatal(err)
	}
	return h
}

type fixture struct {
	st      *state.State
	svc     *Service
	primary *mem.Backend
	dir     string // the destination
	opens   atomic.Int64
	failing atomic.Bool // the primary cannot be opened
}

// newFixture runs a service over a state database with client bob, a
// primary repository bob/laptop in memory, and a directory destination.
func newFixture(t *testing.T, reconcile time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.AddClient(ctx, state.Client{Name: "bob", Hash: "x", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, primary: mem.New(), dir: filepath.Join(t.TempDir(), "replicas")}
	put(t, f.primary, backend.Config, "config")
	put(t, f.primary, backend.Data, "pack 1")
	put(t, f.primary, backend.Index, "index 1")
	if err := st.AddDestination(ctx, replicas.Destination{Name: "disk", Location: f.dir, Concurrency: 2, ReconcileEvery: reconcile, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.svc = New(Config{State: st, SpoolDir: t.TempDir(), Reload: 10 * time.Millisecond,
		Open: func(ctx context.Context, repo string) (backend.Backend, error) {
			f.opens.Add(1)
			if f.failing.Load() {
				return nil, errors.New("primary unavailable")
			}
			if repo != "bob/laptop" {
				return nil, backend.ErrNotFound
			}
			return f.primary, nil
		}})
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f.svc.Run(rctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f
}

// commit stores a snapshot on the primary and notifies the service, once
// its worker runs (a commit before that is found by the worker's first
// reconciliation, which the tests below do not want to rely on).
func (f *fixture) commit(t *testing.T, content string) string {
	t.Helper()
	put(t, f.primary, backend.Data, "pack of "+content)
	h := put(t, f.primary, backend.Snapshots, content)
	f.svc.Notify("bob", "bob/laptop", h.Name)
	return h.Name
}

func (f *fixture) row(t *testing.T) Row {
	t.Helper()
	rows, err := Report(context.Background(), f.st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("report: %+v", rows)
	}
	return rows[0]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fixture) waitWorker(t *testing.T) {
	waitFor(t, "the destination's worker", func() bool {
		f.svc.mu.Lock()
		defer f.svc.mu.Unlock()
		return len(f.svc.workers) == 1
	})
}

// TestCommitIsReplicated: a notified commit lands on the replica with
// everything it needs; status shows it with no lag; the ledger names
// every file copied.
func TestCommitIsReplicated(t *testing.T) {
	f := newFixture(t, time.Hour)
	f.waitWorker(t)
	snap := f.commit(t, "snapshot 1")
	waitFor(t, "the snapshot replicated", func() bool { r := f.row(t); return r.Snapshot == snap && r.Lag == 0 })
	replica, err := local.Open(filepath.Join(f.dir, "bob", "laptop"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, typ := range []backend.FileType{backend.Data, backend.Index, backend.Snapshots} {
		replica.List(context.Background(), typ, func(backend.FileInfo) error { n++; return nil })
	}
	if n != 4 {
		t.Fatalf("the replica holds %d files, want 4", n)
	}
	if got, _ := f.st.LedgerSize(context.Background(), "disk", "bob/laptop"); got != 4 { // the config is not content-named: not in the ledger
		t.Fatalf("ledger names %d files, want 4", got)
	}
	r := f.row(t)
	if r.Client != "bob" || r.Repo != "laptop" || r.LastError != "" || r.ReplicatedAt.IsZero() {
		t.Fatalf("status: %+v", r)
	}
}

// TestFailedPassIsRetriedWithBackoff: while the primary cannot be read,
// the status shows the error, a growing lag and the failures in a row,
// and the pass is retried with backoff (not in a tight loop); once it
// can, the retry completes the replica without another commit.
func TestFailedPassIsRetriedWithBackoff(t *testing.T) {
	f := newFixture(t, time.Hour)
	f.waitWorker(t)
	f.failing.Store(true)
	snap := f.commit(t, "snapshot 1")
	waitFor(t, "a second failed pass", func() bool { return f.row(t).Failures >= 2 })
	r := f.row(t)
	if !strings.Contains(r.LastError, "primary unavailable") || r.Lag <= 0 || r.Snapshot != "" {
		t.Fatalf("status after failures: %+v", r)
	}
	// Backoff: 1 s, then 2 s: over a second, at most two more attempts.
	before := f.opens.Load()
	time.Sleep(1200 * time.Millisecond) // measuring a rate: nothing to wait for
	if n := f.opens.Load() - before; n > 2 {
		t.Fatalf("%d attempts in 1.2 s: no backoff", n)
	}
	f.failing.Store(false)
	waitFor(t, "the retry completes", func() bool { r := f.row(t); return r.Snapshot == snap && r.Lag == 0 })
	if r := f.row(t); r.LastError != "" || r.Failures != 0 {
		t.Fatalf("status after recovery: %+v", r)
	}
}

// TestReconcileHealsAndFindsMissedCommits: a file removed from the
// replica and a commit that was never notified are both copied by the
// periodic reconciliation.
func TestReconcileHealsAndFindsMissedCommits(t *testing.T) {
	f := newFixture(t, 50*time.Millisecond)
	f.waitWorker(t)
	snap := f.commit(t, "snapshot 1")
	waitFor(t, "the snapshot replicated", func() bool { return f.row(t).Snapshot == snap })
	replica, err := local.Open(filepath.Join(f.dir, "bob", "laptop"))
	if err != nil {
		t.Fatal(err)
	}
	lost := backend.Handle{Type: backend.Data, Name: backend.NameOf([]byte("pack 1"))}
	if err := replica.Remove(context.Background(), lost); err != nil {
		t.Fatal(err)
	}
	missed := put(t, f.primary, backend.Snapshots, "snapshot 2 (no notify)")
	waitFor(t, "reconciliation", func() bool {
		_, e1 := replica.Stat(context.Background(), lost)
		_, e2 := replica.Stat(context.Background(), missed)
		return e1 == nil && e2 == nil
	})
	// Nothing is ever deleted on the replica.
	if err := f.primary.Remove(context.Background(), backend.Handle{Type: backend.Snapshots, Name: snap}); err != nil {
		t.Fatal(err)
	}
	snap3 := f.commit(t, "snapshot 3")
	waitFor(t, "snapshot 3", func() bool { r := f.row(t); return r.Lag == 0 && r.Snapshot == snap3 })
	if _, err := replica.Stat(context.Background(), backend.Handle{Type: backend.Snapshots, Name: snap}); err != nil {
		t.Fatalf("a snapshot removed on the primary went from the replica: %v", err)
	}
}

// TestDestinationsReload: a destination added to a running service gets
// a worker, which replicates what was committed before; a removed one
// loses it.
func TestDestinationsReload(t *testing.T) {
	f := newFixture(t, time.Hour)
	f.waitWorker(t)
	snap := f.commit(t, "snapshot 1")
	other := filepath.Join(t.TempDir(), "other")
	if err := f.st.AddDestination(context.Background(), replicas.Destination{Name: "other", Location: other, Clients: []string{"bob"}, Concurrency: 1, ReconcileEvery: time.Hour, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new destination replicates the earlier commit", func() bool {
		rows, _ := Report(context.Background(), f.st, time.Now())
		for _, r := range rows {
			if r.Destination == "other" && r.Snapshot == snap && r.Lag == 0 {
				return true
			}
		}
		return false
	})
	if err := f.st.RemoveDestination(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed destination's worker stops", func() bool {
		f.svc.mu.Lock()
		defer f.svc.mu.Unlock()
		return len(f.svc.workers) == 1
	})
	if _, err := local.Open(filepath.Join(other, "bob", "laptop")); err != nil {
		t.Fatalf("the removed destination's replica: %v", err)
	}
}

// TestFirstPassStoppedBeforeConfigResumes: a replica directory holding
// trust files but no config (a first pass stopped between them) is
// resumed, not refused as a foreign directory.
func TestFirstPassStoppedBeforeConfigResumes(t *testing.T) {
	f := newFixture(t, time.Hour)
	cv := put(t, f.primary, backend.Configs, "config")
	partial, err := local.Create(context.Background(), filepath.Join(f.dir, "bob", "laptop"))
	if err != nil {
		t.Fatal(err)
	}
	put(t, partial, backend.Configs, "config")
	f.waitWorker(t)
	snap := f.commit(t, "snapshot 1")
	waitFor(t, "the snapshot replicated", func() bool { r := f.row(t); return r.Snapshot == snap && r.Lag == 0 })
	replica, err := local.Open(filepath.Join(f.dir, "bob", "laptop"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Stat(context.Background(), cv); err != nil {
		t.Fatal(err)
	}
}

// TestReplicaThatLostItsConfigGetsOnlyAVersion: a directory replica that
// lost its config and kept its files is opened as it is; while the
// primary's config is none of the repository's config versions (forged
// or damaged in place) no pass stores it there: the pass fails, says
// why, and holds the snapshot back. Once the primary's config is healed
// the next pass stores it and the snapshot. (docs/threat-model.md R3.)
func TestReplicaThatLostItsConfigGetsOnlyAVersion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, time.Hour)
	put(t, f.primary, backend.Configs, "config")
	f.waitWorker(t)
	snap := f.commit(t, "snapshot 1")
	waitFor(t, "the snapshot replicated", func() bool { r := f.row(t); return r.Snapshot == snap && r.Lag == 0 })
	dir := filepath.Join(f.dir, "bob", "laptop")
	if err := os.Remove(filepath.Join(dir, "config")); err != nil {
		t.Fatal(err)
	}
	if err := f.primary.ReplaceConfig(ctx, backend.NewByteReader([]byte("config forged"))); err != nil {
		t.Fatal(err)
	}
	snap2 := f.commit(t, "snapshot 2")
	waitFor(t, "a pass", func() bool { r := f.row(t); return r.LastError != "" || r.Snapshot == snap2 })
	if r := f.row(t); !strings.Contains(r.LastError, "not one of the repository's config versions") || r.Snapshot != snap {
		t.Fatalf("status: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "config")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the replica got a config: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshots", snap2)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the snapshot was not held back: %v", err)
	}
	// The primary's config healed (as the audit does): the retry stores it.
	if err := f.primary.ReplaceConfig(ctx, backend.NewByteReader([]byte("config"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retry", func() bool { r := f.row(t); return r.Snapshot == snap2 && r.Lag == 0 })
	if b, err := os.ReadFile(filepath.Join(dir, "config")); err != nil || string(b) != "config" {
		t.Fatalf("the replica's config: %q %v", b, err)
	}
}
