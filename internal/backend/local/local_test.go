package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/backendtest"
)

var ctx = context.Background()

func newTestBackend(t *testing.T) *Backend {
	t.Helper()
	be, err := Create(ctx, filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if tmps := tempFiles(t, be.dir); len(tmps) > 0 {
			t.Errorf("temporary files left behind: %q", tmps)
		}
	})
	return be
}

func TestSuite(t *testing.T) {
	backendtest.RunSuite(t, func(t *testing.T) backend.Backend { return newTestBackend(t) })
}

// TestSuiteLinkFallback runs the suite as on a filesystem without
// RENAME_NOREPLACE, where Save moves files into place with link + unlink.
func TestSuiteLinkFallback(t *testing.T) {
	backendtest.RunSuite(t, func(t *testing.T) backend.Backend {
		be := newTestBackend(t)
		be.sys.renameNoReplace = func(string, string) error { return &os.LinkError{Op: "renameat2", Err: syscall.EINVAL} }
		return be
	})
}

// tempFiles lists every ".tmp-*" file under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			found = append(found, path)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return found
}

func saveBytes(t *testing.T, be *Backend, typ backend.FileType, data []byte) backend.Handle {
	t.Helper()
	h := backend.Handle{Type: typ, Name: backend.NameOf(data)}
	if typ == backend.Config {
		h.Name = "config"
	}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatalf("save %v: %v", h, err)
	}
	return h
}

func TestCreateLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "repo")
	be, err := Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, t0 := range backend.AllTypes {
		if t0 == backend.Config {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, string(t0)))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a 0700 directory", t0, fi.Mode(), err)
		}
	}
	for i := range 256 {
		if fi, err := os.Stat(filepath.Join(dir, "data", shard(i))); err != nil || !fi.IsDir() {
			t.Fatalf("shard %s: %v", shard(i), err)
		}
	}
	if _, err := Open(dir); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("open before config is saved: got %v, want ErrNotFound", err)
	}
	saveBytes(t, be, backend.Config, []byte("config v1"))
	if _, err := Open(dir); err != nil {
		t.Fatalf("open: %v", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	t.Run("existing repository", func(t *testing.T) {
		be := newTestBackend(t)
		saveBytes(t, be, backend.Config, []byte("config"))
		_, err := Create(ctx, be.dir)
		if !errors.Is(err, backend.ErrExists) || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("create over a repository: got %v, want ErrExists", err)
		}
	})
	t.Run("foreign files", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "holiday.jpg"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Create(ctx, dir)
		if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "holiday.jpg") {
			t.Fatalf("create in a non-empty directory: got %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("refused create still made data/: %v", err)
		}
	})
	t.Run("symlink to a full directory", func(t *testing.T) {
		full := t.TempDir()
		if err := os.WriteFile(filepath.Join(full, "notes.txt"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(t.TempDir(), "repo")
		if err := os.Symlink(full, link); err != nil {
			t.Fatal(err)
		}
		if _, err := Create(ctx, link); err == nil || !strings.Contains(err.Error(), "notes.txt") {
			t.Fatalf("create through a symlink to a non-empty directory: got %v", err)
		}
	})
	t.Run("files inside the layout", func(t *testing.T) {
		be := newTestBackend(t)
		saveBytes(t, be, backend.Keys, []byte("a key but no config"))
		if _, err := Create(ctx, be.dir); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("create over a half-made repository: got %v", err)
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Create(ctx, file); err == nil {
			t.Fatal("create on a regular file succeeded")
		}
	})
	t.Run("interrupted create is resumed", func(t *testing.T) {
		be := newTestBackend(t)
		if err := os.Remove(filepath.Join(be.dir, "data", "7f")); err != nil {
			t.Fatal(err)
		}
		if _, err := Create(ctx, be.dir); err != nil {
			t.Fatalf("create over a bare layout: %v", err)
		}
		if _, err := os.Stat(filepath.Join(be.dir, "data", "7f")); err != nil {
			t.Fatalf("shard not remade: %v", err)
		}
	})
}

func TestOpenNoRepository(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(base, "missing"), base, file} {
		_, err := Open(dir)
		if !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), "no repository at "+dir) {
			t.Errorf("open %s: got %v, want ErrNotFound saying \"no repository at %s\"", dir, err, dir)
		}
	}
}

func TestProperties(t *testing.T) {
	be := newTestBackend(t)
	if p := be.Properties(); p.Location != be.dir || p.Connections < 1 {
		t.Fatalf("properties %+v", p)
	}
}

// TestOpenWithoutConfig: a repository that holds files and lost its
// config (or never got one) opens as it is, and nothing is stored by
// opening it; a config can then be saved and the repository opens as
// usual. A directory with a config, without files, or with anything
// beside the layout is not such a repository.
func TestOpenWithoutConfig(t *testing.T) {
	for _, typ := range []backend.FileType{backend.Keys, backend.Data} {
		be := newTestBackend(t)
		h := saveBytes(t, be, typ, []byte("a file but no config"))
		got, err := OpenWithoutConfig(be.dir)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if _, err := os.Lstat(filepath.Join(be.dir, "config")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: opening stored a config: %v", typ, err)
		}
		if _, err := got.Stat(ctx, h); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		saveBytes(t, got, backend.Config, []byte("config"))
		if _, err := Open(be.dir); err != nil {
			t.Fatalf("%s: open after the config was saved: %v", typ, err)
		}
		if _, err := OpenWithoutConfig(be.dir); !errors.Is(err, backend.ErrExists) {
			t.Fatalf("%s: a repository with its config: got %v, want ErrExists", typ, err)
		}
	}
	foreign := newTestBackend(t)
	saveBytes(t, foreign, backend.Keys, []byte("a key"))
	if err := os.WriteFile(filepath.Join(foreign.dir, "holiday.jpg"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{
		"missing":      filepath.Join(t.TempDir(), "missing"),
		"empty":        t.TempDir(),
		"bare layout":  newTestBackend(t).dir,
		"foreign file": foreign.dir,
	} {
		if _, err := OpenWithoutConfig(dir); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("%s: got %v, want ErrNotFound", name, err)
		}
	}
}
