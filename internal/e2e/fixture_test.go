//go:build linux

package e2e

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixture is a small repository of the current format, committed so
// that a later format change proves it still reads repositories written
// before it, or says why not (docs/format.md §16). After a deliberate,
// documented format change, regenerate it with one command:
//
//	go test ./internal/e2e -run TestFormatFixture -update
//
// It lives in testdata/fixtures/format2/:
//
//	password         the owner's password
//	repo/            the repository
//	trees/NAME/      the source trees the snapshots were made of
//	snapshots.json   snapshot ID → tree NAME, plus what the snapshot list shows
var update = flag.Bool("update", false, "TestFormatFixture: regenerate testdata/fixtures/format2")

const fixtureDir = "testdata/fixtures/format2"

// fixtureSnap is one snapshot of the fixture as snapshots.json records it.
type fixtureSnap struct {
	Tree   string   `json:"tree"`
	Host   string   `json:"host"`
	Tags   []string `json:"tags"`
	Writer bool     `json:"writer"` // made with a writer key
}

// TestFormatFixture opens the committed fixture repository with the
// current code: the snapshot list is the recorded one, check --read-data
// is clean, and every snapshot restores to the tree it was made of.
func TestFormatFixture(t *testing.T) {
	if *update {
		writeFixture(t)
	}
	var want map[string]fixtureSnap
	b, err := os.ReadFile(filepath.Join(fixtureDir, "snapshots.json"))
	if err != nil {
		t.Fatalf("%v (regenerate: go test ./internal/e2e -run TestFormatFixture -update)", err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	// A copy: opening a repository may write (locks, claims), and the
	// committed fixture must stay as it is.
	if err := os.CopyFS(e.repo, os.DirFS(filepath.Join(fixtureDir, "repo"))); err != nil {
		t.Fatal(err)
	}
	pw, err := filepath.Abs(filepath.Join(fixtureDir, "password"))
	if err != nil {
		t.Fatal(err)
	}
	e.vars["CAIRN_PASSWORD_FILE"] = pw
	snaps := e.snapshots()
	if len(snaps) != len(want) {
		t.Fatalf("%d snapshots, want %d", len(snaps), len(want))
	}
	for _, s := range snaps {
		w, ok := want[s.ID]
		if !ok {
			t.Fatalf("snapshot %s is not in snapshots.json", s.ID)
		}
		if s.Host != w.Host || strings.Join(s.Tags, ",") != strings.Join(w.Tags, ",") || len(s.Paths) != 1 {
			t.Errorf("snapshot %s: host %q, tags %v, paths %v; want host %q, tags %v, one path", s.ShortID, s.Host, s.Tags, s.Paths, w.Host, w.Tags)
			continue
		}
		target := filepath.Join(e.dir, "restore-"+s.ShortID)
		e.ok("restore", s.ID, "--target", target)
		got := contentHashes(t, filepath.Join(target, s.Paths[0]))
		tree := contentHashes(t, filepath.Join(fixtureDir, "trees", w.Tree))
		if len(got) != len(tree) {
			t.Errorf("snapshot %s restored %d files, tree %s has %d", s.ShortID, len(got), w.Tree, len(tree))
		}
		for p, h := range tree {
			if got[p] != h {
				t.Errorf("snapshot %s: %s differs from tree %s", s.ShortID, p, w.Tree)
			}
		}
	}
	if out := e.ok("check", "--read-data").stdout; !strings.Contains(out, "no problems found") {
		t.Fatalf("check --read-data: %s", out)
	}
}

// writeFixture replaces the fixture with a new repository: the owner backs
// up tree "a", then "b" (a changed, tagged), then forgets the first (its
// tombstone stays); a writer key backs up tree "c".
func writeFixture(t *testing.T) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	trees := filepath.Join(t.TempDir(), "trees")
	file := func(tree, name string, size int) {
		p := filepath.Join(trees, tree, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, size)
		rng.Read(b)
		if strings.HasSuffix(name, ".txt") {
			b = []byte(strings.Repeat(fmt.Sprintf("%s line %d\n", name, size), size/20+1))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file("a", "readme.txt", 300)
	file("a", "big.bin", 300<<10) // more than the minimum chunk (256 KiB)
	file("a", "sub/small.bin", 1000)
	file("a", "sub/empty", 0)
	os.CopyFS(filepath.Join(trees, "b"), os.DirFS(filepath.Join(trees, "a")))
	file("b", "readme.txt", 400)
	file("b", "sub/new.bin", 5000)
	os.Remove(filepath.Join(trees, "b", "sub", "small.bin"))
	file("c", "writer.txt", 200)
	file("c", "data.bin", 3000)

	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	backup := func(tree string, vars map[string]string, args ...string) string {
		t.Helper()
		os.RemoveAll(src)
		if err := os.CopyFS(src, os.DirFS(filepath.Join(trees, tree))); err != nil {
			t.Fatal(err)
		}
		r := e.runWith(vars, append(append(args, "backup", "--json"), src)...)
		if r.code != 0 {
			t.Fatalf("backup of tree %s: exit %d: %s", tree, r.code, r.stderr)
		}
		var sum struct {
			ID string `json:"snapshot_id"`
		}
		lastJSON(t, r.stdout, &sum)
		return sum.ID
	}
	e.ok("init")
	backup("a", nil, "--host", "fixture")
	snaps := map[string]fixtureSnap{}
	snaps[backup("b", nil, "--host", "fixture", "--tag", "weekly")] = fixtureSnap{Tree: "b"}
	e.ok("forget", "--keep-last", "1")
	wpw := filepath.Join(e.dir, "writer-password")
	os.WriteFile(wpw, []byte("writer secret\n"), 0o600)
	wkey := filepath.Join(e.dir, "w.key")
	e.ok("key", "add", "--role", "writer", "--export", wkey, "--new-password-file", wpw, "--label", "fixture-writer")
	w := map[string]string{"CAIRN_PASSWORD_FILE": wpw, "XDG_CACHE_HOME": filepath.Join(e.dir, "writer-cache")}
	snaps[backup("c", w, "--key-file", wkey)] = fixtureSnap{Tree: "c", Writer: true}
	for _, s := range e.snapshots() {
		f, ok := snaps[s.ID]
		if !ok {
			t.Fatalf("snapshot %s was not made by writeFixture", s.ShortID)
		}
		f.Host, f.Tags = s.Host, s.Tags
		snaps[s.ID] = f
	}

	if err := os.RemoveAll(fixtureDir); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(fixtureDir, 0o755)
	if err := os.CopyFS(filepath.Join(fixtureDir, "repo"), os.DirFS(e.repo)); err != nil {
		t.Fatal(err)
	}
	// Git keeps no empty directory: the test reads the repository
	// without them, as a checkout has it.
	removeEmptyDirs(t, filepath.Join(fixtureDir, "repo"))
	if err := os.CopyFS(filepath.Join(fixtureDir, "trees"), os.DirFS(trees)); err != nil {
		t.Fatal(err)
	}
	pw, _ := os.ReadFile(e.vars["CAIRN_PASSWORD_FILE"])
	os.WriteFile(filepath.Join(fixtureDir, "password"), pw, 0o644)
	js, _ := json.MarshalIndent(snaps, "", "  ")
	os.WriteFile(filepath.Join(fixtureDir, "snapshots.json"), append(js, '\n'), 0o644)
	t.Logf("regenerated %s", fixtureDir)
}

// removeEmptyDirs removes every empty directory below dir, deepest first.
func removeEmptyDirs(t *testing.T, dir string) {
	t.Helper()
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != dir {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if ents, err := os.ReadDir(dirs[i]); err == nil && len(ents) == 0 {
			if err := os.Remove(dirs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
}
