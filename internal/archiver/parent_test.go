package archiver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestWipedCacheUsesParent: with the file cache gone, the owner's next
// backup takes the last snapshot of the same paths as its parent, so
// unchanged files are not read again, a changed one is, and nothing
// already stored is uploaded; the backup after that finds the cache
// rebuilt.
func TestWipedCacheUsesParent(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	const files = 120
	for i := range files {
		p := filepath.Join(src, fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("content of %s\n", p)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cache := t.TempDir()
	kdf := crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}
	be := mem.New()
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &kdf, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{}); err != nil {
		t.Fatal(err)
	}
	// Wipe the cache, change one file, open the repository afresh.
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d0", "f000"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reopen := func() *repository.Repository {
		r, err := repository.Open(ctx, be, []byte("pw"), repository.Options{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	res, err := archiver.Backup(ctx, reopen(), []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.FilesUnchanged != files-1 || s.FilesChanged+s.FilesNew != 1 {
		t.Errorf("without a cache: %d unchanged, %d changed, %d new; want %d, 1 read", s.FilesUnchanged, s.FilesChanged, s.FilesNew, files-1)
	}
	if s.BytesAdded > 16<<10 {
		t.Errorf("without a cache the backup stored %d bytes", s.BytesAdded)
	}
	res, err = archiver.Backup(ctx, reopen(), []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.FilesUnchanged != files {
		t.Errorf("with the rebuilt cache: %d of %d files unchanged", res.Summary.FilesUnchanged, files)
	}
}
