package archiver_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestIndexLoadFailure: the index loads while the walk runs; when it cannot
// be read the backup fails with that error, promptly, stores no snapshot,
// and a later backup with the index readable again succeeds and uploads
// nothing the first stored.
func TestIndexLoadFailure(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	for i := range 200 {
		dir := filepath.Join(src, "d", string(rune('a'+i%20)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i/20))), []byte(dir+string(rune(i))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kdf := crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}
	be := mem.New()
	opts := repository.Options{KDF: &kdf}
	repo, err := repository.Init(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	first, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snaps := func() int {
		n := 0
		if err := be.List(ctx, backend.Snapshots, func(backend.FileInfo) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := snaps()

	injected := errors.New("index fragment unreadable")
	be.SetFault(func(op string, h backend.Handle) error {
		if op == mem.OpLoad && h.Type == backend.Index {
			return injected
		}
		return nil
	})
	reopened, err := repository.Open(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := archiver.Backup(ctx, reopened, []string{src}, archiver.Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, injected) {
			t.Fatalf("backup with an unreadable index: %v, want the load error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("backup with an unreadable index did not return")
	}
	if n := snaps(); n != before {
		t.Fatalf("%d snapshots after a failed backup, want %d", n, before)
	}

	be.SetFault(nil)
	again, err := repository.Open(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := archiver.Backup(ctx, again, []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing the first backup stored is read or stored again. The trees
	// of src's ancestors may be new: other processes create files in
	// /tmp and so change its mtime.
	sum := res.Summary
	ancestors := uint64(strings.Count(src, "/"))
	if sum.FilesUnchanged != 200 || sum.BytesRead != 0 || sum.BlobsNew != sum.DirsNew+sum.DirsChanged || sum.DirsNew+sum.DirsChanged > ancestors {
		t.Errorf("backup after the failure: %+v, want 200 unchanged files, nothing read, at most %d new trees (src's ancestors) and no other new blob; first stored %d blobs",
			sum, ancestors, first.Summary.BlobsNew)
	}
}
