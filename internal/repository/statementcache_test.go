package repository_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestCommitReadsOnlyNewStatements: a commit chains to the key's last
// statement, found among every stored snapshot file; files read by an
// earlier commit come from the key's cache, so a commit reads only the
// snapshot files stored since. With the cache gone or damaged it reads
// them all again; the chain is right either way.
func TestCommitReadsOnlyNewStatements(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	cache := t.TempDir()
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &quickKDF, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	var loads atomic.Int64
	be.SetFault(func(op string, h backend.Handle) error {
		if op == mem.OpLoad && h.Type == backend.Snapshots {
			loads.Add(1)
		}
		return nil
	})
	var prev *repository.Snapshot
	for i := range 4 {
		loads.Store(0)
		s := commitOne(t, repo, "content "+string(rune('a'+i)))
		if prev != nil {
			wantChained(t, "commit", s, prev)
		}
		// Only the file the commit before stored is new to this one.
		if want := int64(min(i, 1)); loads.Load() != want {
			t.Errorf("commit %d read %d snapshot files, want %d", i+1, loads.Load(), want)
		}
		prev = s
	}
	files := 0
	if err := be.List(ctx, backend.Snapshots, func(backend.FileInfo) error { files++; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, damage := range []func(string) error{
		os.Remove,
		func(p string) error { return os.WriteFile(p, []byte("{not json"), 0o600) },
	} {
		if err := damage(filepath.Join(repo.Cache().Dir(), "statements.json")); err != nil {
			t.Fatal(err)
		}
		loads.Store(0)
		s := commitOne(t, repo, "after damage")
		wantChained(t, "commit without its cache", s, prev)
		if int64(files) != loads.Load() {
			t.Errorf("without its cache a commit read %d snapshot files, want all %d", loads.Load(), files)
		}
		prev = s
		files++
	}
}
