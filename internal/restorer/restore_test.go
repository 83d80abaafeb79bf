package restorer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/walker"
)

var fastKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	big := make([]byte, 9<<20)
	rand.Read(big)
	// Several compressed chunks of different sizes, so a large file's
	// restore reuses its buffers across zstd blobs as well as raw ones.
	var text bytes.Buffer
	for i := 0; text.Len() < 12<<20; i++ {
		fmt.Fprintf(&text, "line %d of a large compressible file, %x\n", i, i*i)
	}
	files := map[string][]byte{
		"a.txt":         []byte("hello"),
		"empty":         nil,
		"sub/big.bin":   big,
		"sub/big.txt":   text.Bytes(),
		"sub/deep/x.go": bytes.Repeat([]byte("package x\n"), 5000),
		"caf\xe9":       []byte("latin-1 name"),
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "a.txt"), filepath.Join(src, "sub", "hard")); err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(ctx, repoDir)
	if err != nil {
		t.Fatal(err)
	}
	opts := repository.Options{CacheDir: t.TempDir(), KDF: &fastKDF}
	repo, err := repository.Init(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Partial() {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	// A second backup of the unchanged tree stores nothing new (R20).
	res2, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Only the trees of src's ancestors (whose mtimes other processes may
	// touch) and the manifest can be new; src's own tree must be identical.
	rel := src[1:]
	n1, err := walker.FindNode(ctx, repo, res.Snapshot.File.Statement.Root, rel)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := walker.FindNode(ctx, repo, res2.Snapshot.File.Statement.Root, rel)
	if err != nil {
		t.Fatal(err)
	}
	if *n1.Subtree != *n2.Subtree {
		t.Errorf("tree of an unchanged directory changed")
	}
	if res2.Summary.BytesAdded > 64<<10 {
		t.Errorf("unchanged backup stored %d bytes", res2.Summary.BytesAdded)
	}
	if res2.Summary.FilesUnchanged != res.Summary.FilesNew {
		t.Errorf("second backup read files again: %+v", res2.Summary)
	}
	if res2.Snapshot.File.Statement.Seq != 2 || res2.Snapshot.File.Statement.Prev != res.Snapshot.File.Statement.Hash() {
		t.Errorf("statements are not chained: seq %d", res2.Snapshot.File.Statement.Seq)
	}

	// Reopen from scratch with the password and restore.
	repo2, err := repository.Open(ctx, be, []byte("pw"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	snaps, errs, err := repo2.Snapshots(ctx)
	if err != nil || len(errs) > 0 || len(snaps) != 2 {
		t.Fatalf("snapshots: %v %v %d", err, errs, len(snaps))
	}
	target := t.TempDir()
	rr, err := restorer.Restore(ctx, repo2, snaps[1], "", restorer.Options{Target: target, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Warnings) > 0 {
		t.Fatalf("restore warnings: %v", rr.Warnings)
	}
	restored := filepath.Join(target, src)
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(restored, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: content differs", name)
		}
	}
	if l, err := os.Readlink(filepath.Join(restored, "link")); err != nil || l != "a.txt" {
		t.Errorf("symlink: %q %v", l, err)
	}
	a, _ := os.Stat(filepath.Join(restored, "a.txt"))
	h, _ := os.Stat(filepath.Join(restored, "sub", "hard"))
	if !os.SameFile(a, h) {
		t.Errorf("hard link not restored as a hard link")
	}
	if rr.Verified == 0 {
		t.Errorf("verify checked nothing")
	}

	// Wrong password: a clear error, nothing written.
	if _, err := repository.Open(ctx, be, []byte("nope"), repository.Options{}); err == nil {
		t.Fatal("wrong password accepted")
	}
}

// TestRestoreManyFiles restores more files than one batch of the walk
// holds, so files are written while the walk goes on and a pack's files
// can straddle two batches: every file must still come back whole, with
// its mode and mtime, and be counted once.
func TestRestoreManyFiles(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	defer restorer.SetRestoreBatch(1024)()
	const dirs, perDir = 31, 101 // 3,131 files: three batches and a bit
	mtime := time.Date(2020, 2, 29, 12, 0, 0, 0, time.UTC)
	want := map[string][]byte{}
	for d := range dirs {
		for f := range perDir {
			rel := filepath.Join(fmt.Sprintf("d%02d", d), fmt.Sprintf("f%03d", f))
			data := []byte(fmt.Sprintf("file %s, %d\n", rel, d*f))
			p := filepath.Join(src, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o604); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			want[rel] = data
		}
	}
	repo, snap, _ := backupDir(t, src)
	target := t.TempDir()
	rr, err := restorer.Restore(ctx, repo, snap, src[1:], restorer.Options{Target: target, Workers: 2, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Warnings) > 0 {
		t.Fatalf("warnings: %v", rr.Warnings)
	}
	if rr.Files != uint64(len(want)) || rr.Verified != uint64(len(want)) {
		t.Errorf("restored %d files, verified %d; want %d", rr.Files, rr.Verified, len(want))
	}
	for rel, data := range want {
		p := filepath.Join(target, rel)
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: content differs", rel)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o604 || !st.ModTime().Equal(mtime) {
			t.Fatalf("%s: mode %v mtime %v", rel, st.Mode(), st.ModTime())
		}
	}
}

// TestRestoreWritesBackInBackground: a restore flushes what it wrote in
// the background as it goes (here after every file), one flush at a
// time, none after it returns, and still once at its end; a background
// flush that fails fails the restore, though the end's succeeds (the file
// system reports a writeback error to one syncfs only). --no-fsync
// flushes nothing.
func TestRestoreWritesBackInBackground(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	const files = 64
	for i := range files {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), bytes.Repeat([]byte{byte(i)}, 1000+i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, snap, _ := backupDir(t, src)
	injected := errors.New("injected writeback error")
	restore := func(failFirst, noFsync bool) (calls int, err error) {
		t.Helper()
		var mu sync.Mutex
		running, returned, overlap, late := false, false, false, false
		defer restorer.SetWriteback(1, func(real func() error) error {
			mu.Lock()
			calls++
			n := calls
			overlap = overlap || running
			late = late || returned
			running = true
			mu.Unlock()
			err := real()
			mu.Lock()
			running = false
			mu.Unlock()
			if failFirst && n == 1 {
				return injected
			}
			return err
		})()
		target := t.TempDir()
		_, err = restorer.Restore(ctx, repo, snap, src[1:], restorer.Options{Target: target, Workers: 4, NoFsync: noFsync})
		mu.Lock()
		returned = true
		mu.Unlock()
		if err == nil {
			for i := range files {
				got, rerr := os.ReadFile(filepath.Join(target, fmt.Sprintf("f%02d", i)))
				if rerr != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 1000+i)) {
					t.Fatalf("f%02d: %v", i, rerr)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if overlap {
			t.Error("two flushes ran at once")
		}
		if late {
			t.Error("a flush ran after the restore returned")
		}
		return calls, err
	}
	if calls, err := restore(false, false); err != nil || calls < 2 {
		t.Fatalf("restore: %d flushes, %v; want a background one and the end's", calls, err)
	}
	if calls, err := restore(true, false); !errors.Is(err, injected) {
		t.Fatalf("a background flush failed: restore returned %v after %d flushes", err, calls)
	}
	if calls, err := restore(false, true); err != nil || calls != 0 {
		t.Fatalf("--no-fsync: %d flushes, %v", calls, err)
	}
}
