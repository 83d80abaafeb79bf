//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// A file of zero or one content blob records no content hash: its one
// blob's keyed ID is its identity (snapshot.ContentDigest). These tests
// meet that with the real binary wherever content is compared: restore
// --verify (of what it writes and of what it keeps), --overwrite
// if-changed and drill.

// restoreSummary is the last line of `cairn --json restore`.
type restoreSummary struct {
	FilesRestored uint64 `json:"files_restored"`
	FilesVerified uint64 `json:"files_verified"`
	Unchanged     uint64 `json:"unchanged"`
	Kept          uint64 `json:"kept"`
	Errors        int    `json:"errors"`
}

// flipByte changes one byte of path in place: same size, other content.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestContentIdentity: a backup records no content hash for files of zero
// or one blob and one for a file of several; restore --verify checks all
// of them, a kept file changed in one byte fails verification whatever its
// number of blobs, and --overwrite if-changed keeps an unchanged one-blob
// file (same inode) while rewriting same-size changed ones. drill verifies
// one-blob files.
func TestContentIdentity(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "one"), 3000)
	writeRandom(t, filepath.Join(src, "same"), 2000)
	writeRandom(t, filepath.Join(src, "big"), 9<<20) // beyond the 4 MiB largest chunk: several blobs
	writeRandom(t, filepath.Join(src, "empty"), 0)
	e.ok("init")
	e.ok("backup", src)

	var tr struct {
		Nodes []struct {
			Name        string   `json:"name"`
			Content     []string `json:"content"`
			ContentHash string   `json:"content_hash"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(e.ok("cat", "tree", "latest:"+src).stdout), &tr); err != nil || len(tr.Nodes) != 4 {
		t.Fatalf("cat tree: %+v %v", tr, err)
	}
	for _, n := range tr.Nodes {
		wantBlobs := map[string]int{"one": 1, "same": 1, "empty": 0}[n.Name]
		switch {
		case n.Name == "big" && (len(n.Content) < 2 || n.ContentHash == ""):
			t.Errorf("big: %d blobs, content hash %q: want several and a hash", len(n.Content), n.ContentHash)
		case n.Name != "big" && (len(n.Content) != wantBlobs || n.ContentHash != ""):
			t.Errorf("%s: %d blobs, content hash %q: want %d and no hash", n.Name, len(n.Content), n.ContentHash, wantBlobs)
		}
	}

	target := filepath.Join(e.dir, "target")
	restored := filepath.Join(target, src)
	var s restoreSummary
	lastJSON(t, e.ok("--json", "restore", "latest", "--target", target, "--verify").stdout, &s)
	if s.FilesRestored != 4 || s.FilesVerified != 4 || s.Errors != 0 {
		t.Fatalf("restore --verify: %+v", s)
	}
	if got, want := contentHashes(t, restored), contentHashes(t, src); len(got) != 4 || got["one"] != want["one"] || got["big"] != want["big"] {
		t.Fatal("restore does not give the source back")
	}

	// One byte changed in a one-blob and in a several-blob file, sizes
	// kept: verifying the kept files names both.
	flipByte(t, filepath.Join(restored, "one"), 1234)
	flipByte(t, filepath.Join(restored, "big"), 7<<20)
	r := e.run("--json", "restore", "latest", "--target", target, "--overwrite", "never", "--verify")
	if r.code != 3 {
		t.Fatalf("restore --overwrite never --verify: exit %d, want 3\n%s", r.code, r.stderr)
	}
	for _, name := range []string{"one", "big"} {
		if !strings.Contains(r.stderr, name+": kept (--overwrite never) and differs from the snapshot (verify failed)") {
			t.Errorf("the changed %s is not named:\n%s", name, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "same:") || strings.Contains(r.stderr, "empty:") {
		t.Errorf("an unchanged file failed verification:\n%s", r.stderr)
	}
	lastJSON(t, r.stdout, &s)
	if s.Kept != 4 || s.FilesVerified != 2 || s.Errors != 2 {
		t.Fatalf("restore --overwrite never --verify: %+v", s)
	}

	// if-changed: the unchanged files stay (same inode), the changed
	// ones of the same size are rewritten.
	sameIno, oneIno := inode(t, filepath.Join(restored, "same")), inode(t, filepath.Join(restored, "one"))
	lastJSON(t, e.ok("--json", "restore", "latest", "--target", target, "--verify").stdout, &s)
	if s.Unchanged != 2 || s.FilesRestored != 2 || s.FilesVerified != 4 || s.Errors != 0 {
		t.Fatalf("restore --overwrite if-changed --verify: %+v", s)
	}
	if inode(t, filepath.Join(restored, "same")) != sameIno {
		t.Error("the unchanged one-blob file was rewritten")
	}
	if inode(t, filepath.Join(restored, "one")) == oneIno {
		t.Error("the changed one-blob file was kept")
	}
	if got, want := contentHashes(t, restored), contentHashes(t, src); got["one"] != want["one"] || got["big"] != want["big"] {
		t.Fatal("if-changed did not restore the changed files")
	}

	// drill over the one-blob files (big does not fit in --bytes).
	var d struct {
		FilesSampled  int  `json:"files_sampled"`
		FilesVerified int  `json:"files_verified"`
		OK            bool `json:"ok"`
	}
	lastJSON(t, e.ok("drill", "--files", "10", "--bytes", "1MiB", "--json").stdout, &d)
	if d.FilesSampled != 3 || d.FilesVerified != 3 || !d.OK {
		t.Fatalf("drill: %+v", d)
	}
}

// TestHostileContentIdentity: a writer's tree that lies about a file
// (a size beyond its one blob, a content hash that is not its blobs')
// restores with restore --verify naming exactly those files; a tree that
// gives a one-blob file a content hash as well is refused outright.
func TestHostileContentIdentity(t *testing.T) {
	w := newWriterRepo(t)
	a, b := []byte("first chunk of a file"), []byte(" and its second chunk")
	snap := w.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		ia, ib := save(blob.Data, a), save(blob.Data, b)
		one := fileNode("one", 0o644, a, ia)
		grown := fileNode("grown", 0o644, a, ia)
		grown.Size += 10
		two := fileNode("two", 0o644, append(a[:len(a):len(a)], b...), ia)
		two.SetContent([]blob.ID{ia, ib}, sha256.Sum256(append(a[:len(a):len(a)], b...)))
		lying := two
		lying.Name = "two-lying"
		lying.SetContent([]blob.ID{ia, ib}, sha256.Sum256(b))
		x := save(blob.Tree, tree(t, grown, one, two, lying))
		return save(blob.Tree, tree(t, dirNode("x", x)))
	})
	target := filepath.Join(w.dir, "target")
	r := w.run("--json", "restore", snap, "--target", target, "--verify")
	if r.code != 3 {
		t.Fatalf("restore --verify: exit %d, want 3\n%s", r.code, r.stderr)
	}
	for _, name := range []string{"grown", "two-lying"} {
		if !strings.Contains(r.stderr, "x/"+name+": restored content does not match the content recorded at backup (verify failed)") {
			t.Errorf("%s is not named:\n%s", name, r.stderr)
		}
	}
	var s restoreSummary
	lastJSON(t, r.stdout, &s)
	if s.FilesVerified != 2 || s.Errors != 2 {
		t.Fatalf("restore --verify of the writer's lies: %+v", s)
	}

	// One blob and a content hash: two identities that could disagree.
	// Encode refuses to write it, so the bytes are made by hand: a tree
	// of one file node ends with its flags byte.
	double := w.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		enc := tree(t, fileNode("one", 0o644, a, save(blob.Data, a)))
		enc[len(enc)-1] = 2 // content hash follows
		sum := sha256.Sum256(a)
		x := save(blob.Tree, append(enc, sum[:]...))
		return save(blob.Tree, tree(t, dirNode("x", x)))
	})
	r = w.run("restore", double, "--target", filepath.Join(w.dir, "double"), "--verify")
	if r.code == 0 || !strings.Contains(r.stderr, "file of 1 content blobs with a content hash") {
		t.Fatalf("a one-blob file with a content hash: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
