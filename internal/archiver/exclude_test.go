package archiver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

func TestExcludes(t *testing.T) {
	dir := t.TempDir()
	mk := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(dir, "cache/CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n")
	mk(filepath.Join(dir, "fake/CACHEDIR.TAG"), "not a signature")
	mk(filepath.Join(dir, "skipme/.nobackup"), "")
	if err := os.MkdirAll(filepath.Join(dir, "plain"), 0o700); err != nil {
		t.Fatal(err)
	}
	e, err := newExcludes(Options{IExcludes: []string{"*.JPG"}, ExcludeIfPresent: []string{CacheDirTag, ".nobackup"}, ExcludeLargerThan: 100})
	if err != nil {
		t.Fatal(err)
	}
	d := &snapshot.Node{Type: snapshot.TypeDir}
	for _, c := range []struct {
		path string
		n    *snapshot.Node
		want bool
	}{
		{filepath.Join(dir, "cache"), d, true},
		{filepath.Join(dir, "fake"), d, false},
		{filepath.Join(dir, "skipme"), d, true},
		{filepath.Join(dir, "plain"), d, false},
		{"/x/photo.jpg", &snapshot.Node{Type: snapshot.TypeFile}, true},
		{"/x/photo.Jpg", &snapshot.Node{Type: snapshot.TypeFile}, true},
		{"/x/photo.png", &snapshot.Node{Type: snapshot.TypeFile, Size: 100}, false},
		{"/x/big.png", &snapshot.Node{Type: snapshot.TypeFile, Size: 101}, true},
		{"/x/bigdir", &snapshot.Node{Type: snapshot.TypeDir, Size: 4096}, false},
	} {
		if got := e.excluded(c.path, c.n); got != c.want {
			t.Errorf("excluded(%s) = %v, want %v", c.path, got, c.want)
		}
	}
	for _, bad := range []string{"", ":x", "a/b", ".."} {
		if _, err := newExcludes(Options{ExcludeIfPresent: []string{bad}}); err == nil {
			t.Errorf("--exclude-if-present %q accepted", bad)
		}
	}
}
