package walker

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestFind: a pattern without "/" matches names, one with "/" the whole
// absolute path; a node matching several patterns is found once; a
// malformed pattern is refused before anything is read.
func TestFind(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, rel := range []string{"a.txt", "sub/b.txt", "sub/c.conf", "etc/d.conf"} {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := repository.Init(ctx, mem.New(), []byte("pw"), repository.Options{CacheDir: t.TempDir(), KDF: &walkTestKDF})
	if err != nil {
		t.Fatal(err)
	}
	res, err := archiver.Backup(ctx, repo, []string{dir}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snaps := []*repository.Snapshot{res.Snapshot}
	search := func(patterns ...string) []string {
		t.Helper()
		var got []string
		lost, err := Find(ctx, repo, snaps, patterns, func(f Found) {
			if f.Snapshot != res.Snapshot || f.Node.Name != filepath.Base(f.Path) {
				t.Errorf("found %+v", f)
			}
			got = append(got, strings.TrimPrefix(f.Path, dir))
		}, func(*repository.Snapshot, string, error) { t.Error("a lost directory in an intact snapshot") })
		if err != nil || lost != 0 {
			t.Fatalf("find %q: %d lost, %v", patterns, lost, err)
		}
		return got
	}
	if got := search("*.txt"); !slices.Equal(got, []string{"/a.txt", "/sub/b.txt"}) {
		t.Errorf("*.txt: %v", got)
	}
	if got := search(dir+"/*/*.conf", "*.txt", "c.*"); !slices.Equal(got, []string{"/a.txt", "/etc/d.conf", "/sub/b.txt", "/sub/c.conf"}) {
		t.Errorf("several patterns: %v", got)
	}
	if got := search("/*.conf"); len(got) != 0 {
		t.Errorf("/*.conf matches only at the root: %v", got)
	}
	if _, err := Find(ctx, repo, snaps, []string{"[x"}, func(Found) {}, nil); err == nil || !strings.Contains(err.Error(), `pattern "[x"`) {
		t.Errorf("malformed pattern: %v", err)
	}
}
