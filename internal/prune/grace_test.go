package prune

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/ticker"
)

// TestGraceZeroSweepsEarlierPlans: packs condemned by a prune with the
// default grace are swept by a later `prune --grace 0` at once, not a day
// later; a pack no index lists counts as unused space and goes too.
func TestGraceZeroSweepsEarlierPlans(t *testing.T) {
	ctx := context.Background()
	clk := &clocks{coord: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)}
	be := mem.NewWithClock(clk.storage)
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}, CacheDir: t.TempDir(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	commitBlob(t, repo, "a")
	commitBlob(t, repo, "b")
	snaps, _, _ := repo.Snapshots(ctx)
	for _, s := range snaps {
		if s.File.Statement.Seq == 1 {
			if err := repo.ForgetSnapshot(ctx, s, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep, err := Run(ctx, repo, Options{Grace: DefaultGrace})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Condemned) != 1 || len(rep.Deleted) != 0 || rep.PlansPending != 1 {
		t.Fatalf("prune with the default grace: %+v", rep)
	}
	// A killed backup's pack: stored, in no index.
	orphan := make([]byte, 4096)
	rand.Read(orphan)
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(orphan)}
	if err := be.Save(ctx, h, backend.NewByteReader(orphan)); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	prog := ticker.Start(func(ticker.Counts) {})
	rep, err = Run(ctx, repo, Options{Grace: 0, Progress: prog})
	prog.Stop()
	if err != nil {
		t.Fatal(err)
	}
	// The progress counted the packs deleted, with their bytes.
	if n := prog.Counts(); n.Items != 2 || n.TotalItems != 2 || n.Bytes < uint64(len(orphan)) || n.Bytes != n.TotalBytes {
		t.Errorf("progress counted %+v, want the 2 packs deleted", n)
	}
	if rep.Unindexed != 1 || rep.UnindexedBytes != uint64(len(orphan)) || rep.DeadBytes < uint64(len(orphan)) {
		t.Fatalf("the unindexed pack is not counted as unused: %+v", rep)
	}
	if len(rep.Deleted) != 2 || rep.PlansPending != 0 || rep.PlansSwept < 1 {
		t.Fatalf("prune --grace 0 after a prune with the default grace: %+v", rep)
	}
	if _, err := be.Stat(ctx, h); err == nil {
		t.Fatal("the unindexed pack is still stored")
	}
	var packs int
	be.List(ctx, backend.Data, func(backend.FileInfo) error { packs++; return nil })
	if packs != 1 {
		t.Fatalf("%d packs stored, want the live one", packs)
	}
}
