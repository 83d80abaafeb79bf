package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

func listNames(t *testing.T, be *Backend, typ backend.FileType) []string {
	t.Helper()
	var names []string
	err := be.List(ctx, typ, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", typ, err)
	}
	return names
}

// TestListIgnoresStrays: temporary files, foreign files, misplaced packs,
// directories and symlinks never show up in a listing.
func TestListIgnoresStrays(t *testing.T) {
	be := newTestBackend(t)
	pack := saveBytes(t, be, backend.Data, []byte("pack"))
	snap := saveBytes(t, be, backend.Snapshots, []byte("snapshot"))
	other := backend.NameOf([]byte("other"))
	shard := filepath.Join(be.dir, "data", pack.Name[:2])
	wrongShard := "00"
	if other[:2] == wrongShard {
		wrongShard = "01"
	}
	write := func(path string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("stray"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(shard, ".tmp-123456"))
	write(filepath.Join(shard, "README"))
	write(filepath.Join(shard, strings.ToUpper(other)))
	write(filepath.Join(be.dir, "data", wrongShard, other)) // misplaced: Load would not find it
	write(filepath.Join(be.dir, "data", other))             // unsharded
	write(filepath.Join(be.dir, "snapshots", ".tmp-99"))
	if err := os.Mkdir(filepath.Join(be.dir, "snapshots", other), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(be.dir, "config"), filepath.Join(be.dir, "keys", other)); err != nil {
		t.Fatal(err)
	}
	// The stray temporaries are the test's own; keep the cleanup check honest.
	t.Cleanup(func() {
		os.Remove(filepath.Join(shard, ".tmp-123456"))
		os.Remove(filepath.Join(be.dir, "snapshots", ".tmp-99"))
	})

	if got := listNames(t, be, backend.Data); len(got) != 1 || got[0] != pack.Name {
		t.Errorf("list data: %q, want only %s", got, pack.Name)
	}
	if got := listNames(t, be, backend.Snapshots); len(got) != 1 || got[0] != snap.Name {
		t.Errorf("list snapshots: %q, want only %s", got, snap.Name)
	}
	if got := listNames(t, be, backend.Keys); len(got) != 0 {
		t.Errorf("list keys: %q, want nothing", got)
	}
	// Nor can a directory be removed through the backend.
	if err := be.Remove(ctx, backend.Handle{Type: backend.Snapshots, Name: other}); err == nil {
		t.Error("removed a directory")
	}
}

// TestMissingDirectories: lost shard or type directories list as empty and
// are remade by the next Save into them.
func TestMissingDirectories(t *testing.T) {
	be := newTestBackend(t)
	data := []byte("pack")
	name := backend.NameOf(data)
	for _, dir := range []string{filepath.Join("data", name[:2]), "index"} {
		if err := os.Remove(filepath.Join(be.dir, dir)); err != nil {
			t.Fatal(err)
		}
	}
	if got := listNames(t, be, backend.Data); len(got) != 0 {
		t.Fatalf("list data: %q", got)
	}
	if got := listNames(t, be, backend.Index); len(got) != 0 {
		t.Fatalf("list index: %q", got)
	}
	saveBytes(t, be, backend.Data, data)
	saveBytes(t, be, backend.Index, data)
	if got := listNames(t, be, backend.Data); len(got) != 1 {
		t.Fatalf("list data after save: %q", got)
	}
	if got := listNames(t, be, backend.Index); len(got) != 1 {
		t.Fatalf("list index after save: %q", got)
	}
}

// TestRepositoryGone: if the whole repository disappears (an unmounted
// disk), Save fails instead of quietly building a new tree in its place.
func TestRepositoryGone(t *testing.T) {
	be := newTestBackend(t)
	if err := os.RemoveAll(be.dir); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []backend.FileType{backend.Data, backend.Snapshots, backend.Config} {
		h := backend.Handle{Type: typ, Name: backend.NameOf(nil)}
		if typ == backend.Config {
			h.Name = "config"
		}
		if err := be.Save(ctx, h, backend.NewByteReader(nil)); err == nil {
			t.Errorf("save %v into a vanished repository succeeded", h)
		}
	}
	if _, err := os.Stat(be.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("repository directory was recreated: %v", err)
	}
}

func TestCleanTemp(t *testing.T) {
	be := newTestBackend(t)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	be.sys.now = func() time.Time { return now }
	pack := saveBytes(t, be, backend.Data, []byte("pack"))
	old := []string{
		filepath.Join(be.dir, ".tmp-1"),
		filepath.Join(be.dir, "data", "ff", ".tmp-2"),
		filepath.Join(be.dir, "snapshots", ".tmp-3"),
	}
	fresh := filepath.Join(be.dir, "data", "00", ".tmp-4")
	foreign := filepath.Join(be.dir, "data", "00", "tmp-5")
	for _, p := range append(old, fresh, foreign) {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		mtime := now.Add(-2 * time.Hour)
		if p == fresh {
			mtime = now.Add(-time.Minute)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	n, err := be.CleanTemp(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(old) {
		t.Errorf("removed %d files, want %d", n, len(old))
	}
	for _, p := range old {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived: %v", p, err)
		}
	}
	for _, p := range []string{fresh, foreign, be.path(pack)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	os.Remove(fresh)
	os.Remove(foreign)
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{&os.PathError{Op: "write", Path: "p", Err: syscall.ENOSPC}, backend.ErrNoSpace},
		{&os.PathError{Op: "write", Path: "p", Err: syscall.EDQUOT}, backend.ErrNoSpace},
		{&os.PathError{Op: "open", Path: "p", Err: syscall.EACCES}, backend.ErrPermission},
		{&os.PathError{Op: "open", Path: "p", Err: syscall.EPERM}, backend.ErrPermission},
		{&os.PathError{Op: "open", Path: "p", Err: syscall.EROFS}, backend.ErrPermission},
	} {
		got := classify(c.err)
		if !errors.Is(got, c.want) || !errors.Is(got, c.err) || !strings.Contains(got.Error(), "p") {
			t.Errorf("classify(%v) = %v, want %v wrapping the original", c.err, got, c.want)
		}
	}
	plain := errors.New("plain")
	if got := classify(plain); got != plain {
		t.Errorf("classify(plain) = %v", got)
	}
}

// TestPermissionDenied uses real permissions, which root ignores.
func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	be := newTestBackend(t)
	dir := filepath.Join(be.dir, "snapshots")
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	data := []byte("snapshot")
	err := be.Save(ctx, backend.Handle{Type: backend.Snapshots, Name: backend.NameOf(data)}, backend.NewByteReader(data))
	if !errors.Is(err, backend.ErrPermission) {
		t.Fatalf("save into read-only directory: got %v, want ErrPermission", err)
	}
}
