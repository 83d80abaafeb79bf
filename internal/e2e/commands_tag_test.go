//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type tagOutput struct {
	Changed []struct {
		Old  string   `json:"old_snapshot_id"`
		New  string   `json:"new_snapshot_id"`
		Tags []string `json:"tags"`
	} `json:"changed"`
	Unchanged int `json:"unchanged_snapshots"`
}

func dataFiles(t *testing.T, repo string) []string {
	t.Helper()
	return listing(t, filepath.Join(repo, "data"))
}

// TestTagCommand: tags are changed by re-signing a snapshot and
// tombstoning the old one; nothing is uploaded for an owner's snapshot,
// times stay, check stays clean, retention by tag and prune keep the
// tagged snapshot restorable. A writer's snapshot becomes the owner's;
// a writer key cannot tag.
func TestTagCommand(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 300000)
	e.ok("init")
	e.ok("backup", src, "--tag", "daily")
	writeRandom(t, filepath.Join(src, "b"), 200000)
	e.ok("backup", src, "--tag", "daily")
	before := e.snapshots()
	first := before[0]
	want := contentHashes(t, src)

	expectExit(t, e.run("tag", first.ID[:8]), 1, "give --add, --remove or --set")
	expectExit(t, e.run("tag", "--set", "x", "--add", "y", first.ID[:8]), 1, "cannot be combined")

	packs := dataFiles(t, e.repo)
	var out tagOutput
	lastJSON(t, e.ok("tag", "--add", "keep", "--json", first.ID[:8]).stdout, &out)
	if len(out.Changed) != 1 || out.Changed[0].Old != first.ID || !slices.Equal(out.Changed[0].Tags, []string{"daily", "keep"}) {
		t.Fatalf("tag output: %+v", out)
	}
	if got := dataFiles(t, e.repo); !slices.Equal(got, packs) {
		t.Errorf("tagging an owner's snapshot stored packs:\nbefore %v\nafter %v", packs, got)
	}
	after := e.snapshots()
	if len(after) != 2 {
		t.Fatalf("%d snapshots after tag, want 2", len(after))
	}
	var tagged snapJSON
	for _, s := range after {
		if s.ID == first.ID {
			t.Errorf("the old snapshot %s is still listed", first.ShortID)
		}
		if s.ID == out.Changed[0].New {
			tagged = s
		}
	}
	if tagged.Time != first.Time || tagged.Tree != first.Tree || !slices.Equal(tagged.Tags, []string{"daily", "keep"}) {
		t.Errorf("re-tagged snapshot %+v, from %+v", tagged, first)
	}
	if ts, _ := os.ReadDir(filepath.Join(e.repo, "tombstones")); len(ts) != 1 {
		t.Errorf("%d tombstones, want 1", len(ts))
	}
	// Tagging again with what it has changes nothing.
	lastJSON(t, e.ok("tag", "--add", "keep", "--json", tagged.ID[:8]).stdout, &out)
	if len(out.Changed) != 0 || out.Unchanged != 1 {
		t.Errorf("a no-op tag changed something: %+v", out)
	}
	// By filter: --remove daily on the snapshots tagged keep only.
	lastJSON(t, e.ok("tag", "--remove", "daily", "--tag", "keep", "--json").stdout, &out)
	if len(out.Changed) != 1 || !slices.Equal(out.Changed[0].Tags, []string{"keep"}) {
		t.Fatalf("tag --remove by filter: %+v", out)
	}
	keepID := out.Changed[0].New
	e.ok("check", "--read-data")

	// Retention by the new tag, then prune: the kept one restores.
	e.ok("forget", "--keep-tag", "keep", "--prune", "--grace", "0")
	left := e.snapshots()
	if len(left) != 1 || left[0].ID != keepID {
		t.Fatalf("after forget --keep-tag keep: %+v", left)
	}
	e.ok("check", "--read-data")
	target := filepath.Join(e.dir, "restore")
	e.ok("restore", keepID[:8], "--target", target)
	got := contentHashes(t, filepath.Join(target, src))
	if got["a"] != want["a"] || len(got) != 1 {
		t.Errorf("restored %v, want a as backed up", got)
	}

	// A writer cannot tag; the owner tags the writer's snapshot, which
	// becomes the owner's and keeps its content.
	w := enrolHostileWriter(t, e)
	if r := w.run(e, "backup", "--host", writerHost, "--time", claimLater, src); r.code != 0 {
		t.Fatalf("writer backup: %d %s", r.code, r.stderr)
	}
	expectExit(t, w.run(e, "tag", "--add", "x", "latest"), 11, "owner key")
	var ws []signedSnap
	for _, s := range signedSnapshots(e) {
		if s.Signer != "owner" {
			ws = append(ws, s)
		}
	}
	if len(ws) != 1 {
		t.Fatalf("writer snapshots: %+v", ws)
	}
	lastJSON(t, e.ok("tag", "--add", "web", "--json", ws[0].ID[:8]).stdout, &out)
	if len(out.Changed) != 1 {
		t.Fatalf("owner tags writer snapshot: %+v", out)
	}
	for _, s := range signedSnapshots(e) {
		// The owner's signature vouches for the time: the writer's
		// policy time, never its claim of 2031.
		if s.ID == out.Changed[0].New && (s.Signer != "owner" || strings.HasPrefix(s.Time, "2031")) {
			t.Errorf("re-tagged writer snapshot signed by %q at %s, want owner, not 2031", s.Signer, s.Time)
		}
	}
	e.ok("check", "--read-data")
	target = filepath.Join(e.dir, "restore-w")
	e.ok("restore", out.Changed[0].New[:8], "--target", target)
	if got := contentHashes(t, filepath.Join(target, src)); got["a"] != want["a"] || got["b"] != want["b"] {
		t.Errorf("restored re-tagged writer snapshot differs")
	}
	// A snapshot under a host label its writer is not bound to is not
	// re-signed: the owner would vouch for the label.
	var r result
	asAttacker(t, src, func() { r = w.run(e, "backup", "--host", ownerHost, src) })
	if r.code != 0 {
		t.Fatalf("impostor backup: %d %s", r.code, r.stderr)
	}
	var impostor string
	for _, s := range signedSnapshots(e) {
		if s.Impostor {
			impostor = s.ID
		}
	}
	if impostor == "" {
		t.Fatal("no impostor snapshot to tag")
	}
	state := listing(t, e.repo)
	r = e.run("tag", "--add", "x", impostor[:8])
	expectExit(t, r, 1, "were not re-tagged")
	if !strings.Contains(r.stderr, "not bound") {
		t.Errorf("refusal does not say why: %s", r.stderr)
	}
	if got := listing(t, e.repo); !slices.Equal(got, state) {
		t.Error("a refused tag changed the repository")
	}

	r = e.run("-r", "rest:http://127.0.0.1:1/c/r", "tag", "--add", "x", "latest")
	expectExit(t, r, 1, "cairn server")
	if !strings.Contains(r.stderr, "backup --tag") {
		t.Errorf("rest: refusal gives no way forward: %s", r.stderr)
	}
}
