package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/walker"
)

var testKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

func testRepo(t *testing.T) *repository.Repository {
	t.Helper()
	repo, err := repository.Init(context.Background(), mem.New(), []byte("pw"), repository.Options{CacheDir: t.TempDir(), KDF: &testKDF})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// TestComputeStats: two snapshots of the same files count the files of
// both, but each blob once: the dedup ratio is about 2.
func TestComputeStats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("content of "+name+" that is long enough to matter"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := testRepo(t)
	var snaps []*repository.Snapshot
	for range 2 {
		res, err := archiver.Backup(ctx, repo, []string{dir}, archiver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, res.Snapshot)
	}
	one, err := ComputeStats(ctx, repo, snaps[:1])
	if err != nil {
		t.Fatal(err)
	}
	two, err := ComputeStats(ctx, repo, snaps)
	if err != nil {
		t.Fatal(err)
	}
	if !one.ContentKnown || one.Snapshots != 1 || two.Snapshots != 2 {
		t.Fatalf("one %+v, two %+v", one, two)
	}
	if one.Files < 3 || two.Files != 2*one.Files || two.LogicalSize != 2*one.LogicalSize {
		t.Errorf("files and sizes must add up over snapshots: one %+v, two %+v", one, two)
	}
	if one.Blobs == 0 || one.Packs == 0 || one.PackBytes < one.StoredSize || one.StoredSize == 0 {
		t.Errorf("stored figures: %+v", one)
	}
	// The second backup stored the same content: the blobs it reaches
	// beyond the first's are its own manifest and statement-specific
	// trees at most, and the dedup ratio doubles or nearly.
	if two.StoredSize >= 2*one.StoredSize || two.DedupRatio <= one.DedupRatio {
		t.Errorf("dedup not counted: one %+v, two %+v", one, two)
	}
}

// TestComputeStatsRefusesBomb: a snapshot whose trees hold more than its
// signed summary declares is refused, wrapping walker.ErrTooLarge.
func TestComputeStatsRefusesBomb(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := testRepo(t)
	res, err := archiver.Backup(ctx, repo, []string{dir}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := *res.Snapshot
	o := *s.Owner
	o.Summary.FilesNew, o.Summary.FilesChanged, o.Summary.FilesUnchanged = 0, 0, 0
	o.Summary.DirsNew, o.Summary.DirsChanged, o.Summary.DirsUnchanged = 1, 0, 0
	s.Owner = &o
	if _, err := ComputeStats(ctx, repo, []*repository.Snapshot{&s}); !errors.Is(err, walker.ErrTooLarge) {
		t.Fatalf("stats of a snapshot holding more than it declares: %v", err)
	}
}
