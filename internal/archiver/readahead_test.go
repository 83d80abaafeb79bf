package archiver

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// TestReadAhead: a listing taken from the read-ahead is the listing the
// walk would have made itself, whether it was finished, in progress, never
// queued or queued beyond the bound; nothing stays queued once taken, and
// close leaves no goroutine behind.
func TestReadAhead(t *testing.T) {
	root := t.TempDir()
	const dirs = aheadMax + 20
	for d := range dirs {
		for f := range 12 {
			p := filepath.Join(root, fmt.Sprintf("d%03d", d), fmt.Sprintf("f%02d", f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Mkdir(filepath.Join(root, "d000", "locked"), 0); err != nil {
		t.Fatal(err)
	}
	filter, err := fsmeta.NewFilter(fsmeta.FilterOptions{}, []string{root})
	if err != nil {
		t.Fatal(err)
	}
	a := &archiver{filter: filter, capNoX: fsmeta.NewCapturer(fsmeta.CaptureOptions{NoXattrs: true}), roots: map[string]struct{}{root: {}}}
	before := runtime.NumGoroutine()
	r := newReadAhead(a, 2)
	top := a.listDir(root, a.lstatRoot(t, root))
	if top.readErr != nil || len(top.names) != dirs {
		t.Fatalf("root listing: %v, %d names", top.readErr, len(top.names))
	}
	for i, name := range top.names {
		r.queue(filepath.Join(root, name), top.nodes[i])
	}
	for i, name := range top.names {
		p := filepath.Join(root, name)
		got := r.take(p, top.nodes[i])
		want := a.listDir(p, top.nodes[i])
		if got.readErr != nil || !reflect.DeepEqual(got.names, want.names) || len(got.nodes) != len(want.nodes) {
			t.Fatalf("%s: read-ahead listing differs: %v %q vs %q", name, got.readErr, got.names, want.names)
		}
		for j := range got.nodes {
			if got.nodes[j].Name != want.nodes[j].Name || got.nodes[j].Inode != want.nodes[j].Inode || got.nodes[j].Size != want.nodes[j].Size {
				t.Fatalf("%s/%s: node differs", name, got.names[j])
			}
		}
	}
	r.mu.Lock()
	left := len(r.m)
	r.mu.Unlock()
	if left != 0 {
		t.Errorf("%d listings still queued after all were taken", left)
	}
	// An unreadable directory comes back as its error, as a walk of its own
	// would report it (root reads anything: then it lists empty).
	locked := filepath.Join(root, "d000", "locked")
	st := a.lstatRoot(t, locked)
	r.queue(locked, st)
	if l := r.take(locked, st); os.Geteuid() != 0 && l.readErr == nil {
		t.Error("unreadable directory listed without an error")
	}
	r.close()
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines before, %d after close", before, n)
	}
}

func (a *archiver) lstatRoot(t *testing.T, path string) snapshot.Node {
	t.Helper()
	n, err := a.capNoX.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
