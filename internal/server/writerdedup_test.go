package server

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/walker"
)

// readCounter counts whole snapshot files a client reads (a writer
// looking for its sealed dedup set reads them); it unwraps like a
// decorator.
type readCounter struct {
	backend.Backend
	mu    sync.Mutex
	whole int
}

func (c *readCounter) Load(ctx context.Context, h backend.Handle, length int, off int64, fn func(io.Reader) error) error {
	if h.Type == backend.Snapshots && length == 0 {
		c.mu.Lock()
		c.whole++
		c.mu.Unlock()
	}
	return c.Backend.Load(ctx, h, length, off, fn)
}

func (c *readCounter) Unwrap() backend.Backend { return c.Backend }

// TestWriterDedupsAgainstServer: a writer backs up through the server,
// loses its cache, and backs up the same files again: it asks the server
// for its last snapshot's blob-ID set (R16) and uploads almost nothing,
// without reading snapshot files; the owner restores the second snapshot
// byte-identically.
func TestWriterDedupsAgainstServer(t *testing.T) {
	ts := startTest(t, Options{MaxUpload: 64 << 20})
	ctx := context.Background()
	owner, _ := ts.cairnClient("wd")
	wkeys := enrolWriter(t, owner, "laptop")
	// Every directory the test needs is made before the first backup: a
	// new one beside src would change an ancestor's mtime.
	src, caches, restoreDir := t.TempDir(), t.TempDir(), t.TempDir()
	for i := range 6 {
		if err := os.WriteFile(filepath.Join(src, "file"+string(rune('a'+i))), random(300_000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writer := func(cache string) (*repository.Repository, *readCounter) {
		u, _ := url.Parse(ts.url + "/bob/wd/")
		u.User = url.UserPassword("bob", pwBob)
		be, err := rest.Open(ctx, rest.Config{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		rc := &readCounter{Backend: be}
		cfg, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := repository.OpenWithKeys(ctx, rc, wkeys, "", cfg, repository.Options{CacheDir: cache, Now: ts.nowFn})
		if err != nil {
			t.Fatal(err)
		}
		return r, rc
	}
	stored := func() (n int, size int64) {
		ts.t.Helper()
		err := filepath.WalkDir(filepath.Join(ts.data.Dir, datadir.ReposDir, "bob", "wd", string(backend.Data)), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				fi, _ := d.Info()
				n, size = n+1, size+fi.Size()
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, size
	}

	cache := filepath.Join(caches, "1")
	w, _ := writer(cache)
	first, err := archiver.Backup(ctx, w, []string{src}, archiver.Options{Host: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	packs1, bytes1 := stored()
	ts.advance(2 * time.Hour)
	// What other tests do to the shared temporary directory: an ancestor
	// of src changes. Only the ancestors' (tiny) trees may change with it.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Dir(src), later, later); err != nil {
		t.Fatal(err)
	}

	// The cache is wiped: a new, empty one.
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	w, rc := writer(filepath.Join(caches, "2"))
	second, err := archiver.Backup(ctx, w, []string{src}, archiver.Options{Host: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	packs2, bytes2 := stored()
	t.Logf("first backup: %d packs, %d bytes, %d new blobs; after the cache was wiped: +%d packs, +%d bytes, %d new blobs",
		packs1, bytes1, first.Summary.BlobsNew, packs2-packs1, bytes2-bytes1, second.Summary.BlobsNew)
	if bytes2-bytes1 > bytes1/20 || packs2-packs1 > 2 {
		t.Fatalf("the second backup stored %d bytes in %d packs (first: %d bytes)", bytes2-bytes1, packs2-packs1, bytes1)
	}
	// The fixture's own tree, not the root's: the root holds src's
	// ancestors (the shared temporary directory), whose times other
	// tests change.
	if a, b := fixtureTree(t, owner, first.Snapshot.File.Statement.Root, src), fixtureTree(t, owner, second.Snapshot.File.Statement.Root, src); a != b {
		t.Fatal("same files, another tree (R20)")
	}
	if !strings.Contains(ts.logs.String(), "writer snapshot list") {
		t.Fatal("the writer did not ask the server")
	}
	if rc.whole > 0 {
		t.Fatalf("the writer read %d whole snapshot files", rc.whole)
	}

	dir := restoreDir
	restoreAll(t, owner, second.Snapshot.ID, dir)
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		want, _ := os.ReadFile(filepath.Join(src, e.Name()))
		got, err := os.ReadFile(filepath.Join(dir, src, e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s restored differently (%v)", e.Name(), err)
		}
	}
}

// fixtureTree returns the ID of the tree of dir in the snapshot with root.
func fixtureTree(t *testing.T, repo *repository.Repository, root blob.ID, dir string) blob.ID {
	t.Helper()
	n, err := walker.FindNode(context.Background(), repo, root, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n.Subtree == nil {
		t.Fatalf("%s is no directory in the snapshot", dir)
	}
	return *n.Subtree
}
