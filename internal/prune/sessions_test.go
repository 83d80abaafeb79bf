package prune

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// clocks is a coordinator clock and a storage clock that runs a fixed
// offset behind it, advanced together.
type clocks struct {
	mu     sync.Mutex
	coord  time.Time
	behind time.Duration
}

func (c *clocks) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.coord }
func (c *clocks) storage() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.coord.Add(-c.behind)
}
func (c *clocks) advance(d time.Duration) { c.mu.Lock(); c.coord = c.coord.Add(d); c.mu.Unlock() }

// leases is a sessions table as a server keeps it.
type leases struct {
	mu   sync.Mutex
	open map[string]time.Time // id → opened
}

func (l *leases) start(id string, t time.Time) { l.mu.Lock(); l.open[id] = t; l.mu.Unlock() }
func (l *leases) end(id string)                { l.mu.Lock(); delete(l.open, id); l.mu.Unlock() }
func (l *leases) openAt(_ context.Context, t time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.open {
		if !o.After(t) {
			n++
		}
	}
	return n, nil
}

func commitBlob(t *testing.T, repo *repository.Repository, content string) {
	t.Helper()
	ctx := context.Background()
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := s.SaveBlob(ctx, blob.Data, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, repository.CommitInput{Root: id, Refs: []snapshot.Ref{{Type: blob.Data, ID: id}}, Time: repo.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSweepWaitsForSessions (R12): a plan whose grace has passed is not
// swept while a backup session that was open when it condemned its packs
// is live, and is swept once that session ends. A session opened after
// the condemnation does not hold it back. The storage clock runs three
// hours behind the coordinator's, so comparing the plan's raw storage
// time with session times would miss the early session.
func TestSweepWaitsForSessions(t *testing.T) {
	ctx := context.Background()
	clk := &clocks{coord: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC), behind: 3 * time.Hour}
	be := mem.NewWithClock(clk.storage)
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}, CacheDir: t.TempDir(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	commitBlob(t, repo, "forgotten soon")
	commitBlob(t, repo, "kept")
	snaps, _, err := repo.Snapshots(ctx)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("%d snapshots, %v", len(snaps), err)
	}
	first := snaps[0]
	if snaps[1].File.Statement.Seq < first.File.Statement.Seq {
		first = snaps[1]
	}
	if err := repo.ForgetSnapshot(ctx, first, "test"); err != nil {
		t.Fatal(err)
	}

	ls := &leases{open: map[string]time.Time{}}
	ls.start("early", clk.now().Add(-30*time.Minute)) // a backup that started before the condemnation
	opts := Options{Grace: time.Hour, SessionsOpenAt: ls.openAt}
	rep, err := Run(ctx, repo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Condemned) != 1 || rep.PlansPending != 1 {
		t.Fatalf("first run: %+v", rep)
	}
	dead := rep.Condemned[0]
	packGone := func() bool {
		_, err := be.Stat(ctx, backend.Handle{Type: backend.Data, Name: dead})
		return err != nil
	}

	clk.advance(2 * time.Hour) // grace passed
	ls.start("late", clk.now().Add(-time.Hour))
	rep, err = Run(ctx, repo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 0 || rep.PlansPending != 1 || packGone() {
		t.Fatalf("swept while a session open at condemnation is live: %+v", rep)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "waiting for 1 backup sessions open since condemnation") {
		t.Fatalf("notes %q", rep.Notes)
	}

	ls.end("early") // "late" opened an hour after the condemnation: it saw the plan
	rep, err = Run(ctx, repo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 1 || rep.Deleted[0] != dead || rep.PlansSwept != 1 || rep.PlansPending != 0 || !packGone() {
		t.Fatalf("not swept after the session ended: %+v", rep)
	}
}

// TestGraceZeroWaitsForSessions: with grace 0 the new plan is swept at
// once only if no session is live; otherwise it waits like any other.
func TestGraceZeroWaitsForSessions(t *testing.T) {
	ctx := context.Background()
	clk := &clocks{coord: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)}
	be := mem.NewWithClock(clk.storage)
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}, CacheDir: t.TempDir(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	commitBlob(t, repo, "a")
	commitBlob(t, repo, "b")
	// Both snapshots have the same time, so their order in the list is
	// not fixed: forget the first by its sequence number.
	snaps, _, _ := repo.Snapshots(ctx)
	for _, s := range snaps {
		if s.File.Statement.Seq == 1 {
			if err := repo.ForgetSnapshot(ctx, s, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	ls := &leases{open: map[string]time.Time{"running": clk.now()}}
	rep, err := Run(ctx, repo, Options{SessionsOpenAt: ls.openAt})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Condemned) != 1 || len(rep.Deleted) != 0 || rep.PlansPending != 1 {
		t.Fatalf("grace 0 with a live session: %+v", rep)
	}
	ls.end("running")
	clk.advance(time.Second)
	rep, err = Run(ctx, repo, Options{SessionsOpenAt: ls.openAt})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 1 || rep.PlansPending != 0 {
		t.Fatalf("grace 0 after the session ended: %+v", rep)
	}
	// Without the hook (direct mode) nothing changes: grace 0 sweeps at once.
	commitBlob(t, repo, "c")
	snaps, _, _ = repo.Snapshots(ctx)
	for _, s := range snaps {
		if s.File.Statement.Seq == 2 {
			if err := repo.ForgetSnapshot(ctx, s, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep, err = Run(ctx, repo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 1 || rep.PlansPending != 0 {
		t.Fatalf("grace 0 without sessions: %+v", rep)
	}
}
