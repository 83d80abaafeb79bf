//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/walker"
)

// The salvage scenario (issue 12): four corrupted bytes in one 16 MiB
// pack of a repository with a couple of thousand files. `repair
// --read-data` keeps every blob of the pack that still opens and names
// exactly what was lost; afterwards `check` reports only that, `ls`
// lists everything reachable and warns of the loss, and `restore` writes
// every other file byte for byte and exits 3 naming the loss.

// salvageEnv is a repository with one snapshot of src: 24 directories of
// 80 files (4-16 KiB each, about 20 MiB in all: more than one pack), each
// with a nested directory sub/deeper of 3 more.
type salvageEnv struct {
	*env
	src   string
	files []string // every file, relative to src
}

func newSalvageEnv(t *testing.T) *salvageEnv {
	e := newEnv(t)
	e.ok("init")
	s := &salvageEnv{env: e, src: filepath.Join(e.dir, "src")}
	rng := rand.New(rand.NewPCG(12, 4))
	write := func(rel string, size int) {
		p := filepath.Join(s.src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		s.files = append(s.files, rel)
	}
	for d := range 24 {
		for f := range 80 {
			write(fmt.Sprintf("d%02d/f%02d", d, f), 4<<10+rng.IntN(12<<10))
		}
		for f := range 3 {
			write(fmt.Sprintf("d%02d/sub/deeper/g%d", d, f), 1000+rng.IntN(4000))
		}
	}
	sort.Strings(s.files)
	e.ok("backup", s.src)
	return s
}

// corrupt flips 4 bytes in the middle of the stored copy of the blob that
// holds rel's content (a file: its first chunk) or listing (a directory:
// its tree) in the oldest snapshot, found through the owner key, and
// returns the pack's name.
func (s *salvageEnv) corrupt(t *testing.T, rel string) string {
	t.Helper()
	ctx := context.Background()
	be, err := location.Open(ctx, s.repo, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Open(ctx, be, []byte("correct horse"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	snaps, _, err := repo.Snapshots(ctx)
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots: %v %v", snaps, err)
	}
	oldest := slices.MinFunc(snaps, func(a, b *repository.Snapshot) int { return a.Time().Compare(b.Time()) })
	n, err := walker.FindNode(ctx, repo, oldest.File.Statement.Root, strings.TrimPrefix(filepath.Join(s.src, rel), "/"))
	if err != nil {
		t.Fatal(err)
	}
	var e index.Entry
	var ok bool
	if n.Subtree != nil {
		e, ok = repo.Lookup(blob.Tree, *n.Subtree)
	} else {
		e, ok = repo.Lookup(blob.Data, n.Content[0])
	}
	if !ok {
		t.Fatalf("%s: blob not indexed", rel)
	}
	var path string
	filepath.WalkDir(filepath.Join(s.repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == e.Pack.String() {
			path = p
		}
		return nil
	})
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4)
	off := int64(e.Offset + e.Length/2)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xa5
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	return e.Pack.String()
}

type repairJSON struct {
	Report struct {
		Packs []struct {
			Pack                  string
			Blobs, Salvaged, Lost int
		} `json:"packs"`
		Dropped   []string `json:"dropped_packs"`
		Repacked  int      `json:"repacked_blobs"`
		NewPacks  []string `json:"new_packs"`
		LostBlobs int      `json:"lost_blobs"`
		Snapshots []struct {
			Files []struct {
				Path      string `json:"path"`
				Dir       bool   `json:"dir"`
				LostBlobs int    `json:"lost_blobs"`
			} `json:"files"`
		} `json:"snapshots"`
	} `json:"report"`
}

// salvage damages the blob of victim, repairs, and checks everything the
// scenario promises; lost are the files (relative to src) victim's loss
// takes with it.
func (s *salvageEnv) salvage(t *testing.T, victim string, dir bool, lost []string) {
	pack := s.corrupt(t, victim)
	full := filepath.Join(s.src, victim)

	r := s.run("check", "--read-data")
	if r.code != 1 || !strings.Contains(r.stderr, "cairn: pack data/"+pack[:4]) {
		t.Fatalf("check --read-data: exit %d\n%s", r.code, r.stderr)
	}

	// The server key cannot tell the pack's good content from its damaged
	// content: it leaves the pack for the owner, changes nothing, exit 3.
	sv, skey := serverKey(s.env)
	indexBefore := listing(t, filepath.Join(s.repo, "index"))
	r = s.runWith(sv, "--key-file", skey, "repair", "--read-data")
	if r.code != 3 || !strings.Contains(r.stdout, "left in the index") || !strings.Contains(r.stderr, "owner key") {
		t.Fatalf("server-key repair: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !slices.Equal(indexBefore, listing(t, filepath.Join(s.repo, "index"))) {
		t.Fatal("the server-key repair changed the index")
	}

	out := s.ok("repair", "--read-data", "--json")
	var doc repairJSON
	if err := json.Unmarshal([]byte(out.stdout), &doc); err != nil {
		t.Fatalf("%v: %s", err, out.stdout)
	}
	rp := doc.Report
	if len(rp.Packs) != 1 || rp.Packs[0].Pack != pack || rp.Packs[0].Lost != 1 || rp.Packs[0].Salvaged != rp.Packs[0].Blobs-1 || rp.Packs[0].Blobs < 50 { // trees have packs of their own (docs/format.md §10): fewer blobs in a tree pack
		t.Fatalf("4 damaged bytes should lose one blob of the pack and salvage the rest: %+v", rp.Packs)
	}
	if rp.LostBlobs != 1 || len(rp.NewPacks) == 0 || rp.Repacked == 0 || !slices.Equal(rp.Dropped, []string{pack}) {
		t.Fatalf("repair report: %+v", rp)
	}
	if len(rp.Snapshots) != 1 || len(rp.Snapshots[0].Files) != 1 {
		t.Fatalf("lost files: %+v", rp.Snapshots)
	}
	if f := rp.Snapshots[0].Files[0]; f.Path != full || f.Dir != dir {
		t.Fatalf("lost %+v, want %s (directory %v)", f, full, dir)
	}

	// check reports the loss, and nothing else.
	for _, args := range [][]string{{"check"}, {"check", "--read-data"}} {
		r := s.run(args...)
		problems := strings.Count(r.stderr, "problem: ")
		if r.code != 1 || problems != 1 || !strings.Contains(r.stderr, full) {
			t.Fatalf("%s after repair: exit %d, %d problems, want 1 naming %s\n%s", args, r.code, problems, full, r.stderr)
		}
	}

	// ls lists every path still reachable, and warns of the loss.
	r = s.run("ls", "latest")
	if r.code != 3 || !strings.Contains(r.stderr, "cairn: warning: "+full+": ") || !strings.Contains(r.stderr, "1 paths lost") {
		t.Fatalf("ls: exit %d\n%s", r.code, r.stderr)
	}
	listed := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		listed[l] = true
	}
	for _, f := range s.files {
		p := filepath.Join(s.src, f)
		if listed[p] == slices.Contains(lost, f) && (dir || f != victim) {
			t.Fatalf("ls lists %s: %v; lost %v", p, listed[p], slices.Contains(lost, f))
		}
	}
	if !listed[full] {
		t.Fatalf("ls does not list %s itself", full)
	}
	var nodes []struct {
		Path string `json:"path"`
		Lost string `json:"lost"`
	}
	r = s.run("ls", "--json", "latest")
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil || r.code != 3 {
		t.Fatalf("ls --json: exit %d %v", r.code, err)
	}
	var marked []string
	for _, n := range nodes {
		if n.Lost != "" {
			marked = append(marked, n.Path)
		}
	}
	if !slices.Equal(marked, []string{full}) {
		t.Fatalf("ls --json marks %v lost, want %s", marked, full)
	}

	// restore writes every other file byte for byte, and exits 3 naming
	// the loss.
	target := filepath.Join(s.dir, "restored")
	r = s.run("restore", "latest", "--target", target)
	if r.code != 3 || strings.Count(r.stderr, "cairn: warning: ") != 1 || !strings.Contains(r.stderr, strings.TrimPrefix(full, "/")) {
		t.Fatalf("restore: exit %d\n%s", r.code, r.stderr)
	}
	want := contentHashes(t, s.src)
	got := contentHashes(t, filepath.Join(target, s.src))
	for _, f := range s.files {
		if slices.Contains(lost, f) {
			continue
		}
		if g, ok := got[f]; !ok || g != want[f] {
			t.Fatalf("%s not restored identical (present %v)", f, ok)
		}
	}
}

// TestSalvageDataBlob: the damaged bytes hit one file's content.
func TestSalvageDataBlob(t *testing.T) {
	s := newSalvageEnv(t)
	s.salvage(t, "d07/f23", false, []string{"d07/f23"})
}

// TestSalvageTreeBlob: the damaged bytes hit a directory's tree: that
// directory and everything below it are lost, nothing else.
func TestSalvageTreeBlob(t *testing.T) {
	s := newSalvageEnv(t)
	var lost []string
	for _, f := range s.files {
		if strings.HasPrefix(f, "d11/") {
			lost = append(lost, f)
		}
	}
	s.salvage(t, "d11", true, lost)

	r := s.run("find", "g1")
	if r.code != 3 || strings.Count(r.stdout, "g1\n") != 23 || !strings.Contains(r.stderr, "/d11: directory lost") {
		t.Fatalf("find: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
