//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDrill: `cairn drill` restores a random sample of the latest
// snapshot's files (a name with glob characters among them) into a
// temporary directory, checks them, and removes the directory; with the
// repository's packs damaged it fails.
func TestDrill(t *testing.T) {
	e := newEnv(t)
	tmp := filepath.Join(e.dir, "tmp")
	os.MkdirAll(tmp, 0o700)
	e.vars["TMPDIR"] = tmp
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	for i, size := range []int{10, 1000, 50000, 200000, 70000} {
		writeRandom(t, filepath.Join(src, "f"+strings.Repeat("x", i)), size)
	}
	writeRandom(t, filepath.Join(src, "sub", "we*ird[1]?"), 300)
	e.ok("init")
	e.ok("backup", src)

	type summary struct {
		MessageType     string   `json:"message_type"`
		SnapshotID      string   `json:"snapshot_id"`
		FilesInSnapshot int      `json:"files_in_snapshot"`
		FilesSampled    int      `json:"files_sampled"`
		FilesVerified   int      `json:"files_verified"`
		BytesRestored   int64    `json:"bytes_restored"`
		Paths           []string `json:"paths"`
		Problems        int      `json:"problems"`
		OK              bool     `json:"ok"`
	}
	var s summary
	lastJSON(t, e.ok("drill", "--files", "100", "--json").stdout, &s)
	if s.MessageType != "drill_summary" || s.FilesInSnapshot != 6 || s.FilesSampled != 6 || s.FilesVerified != 6 || !s.OK || s.BytesRestored != 10+1000+50000+200000+70000+300 {
		t.Fatalf("drill of everything: %+v", s)
	}
	// A budget: three files at most, 100 KB at most.
	lastJSON(t, e.ok("drill", "--files", "3", "--bytes", "100KiB", "--json").stdout, &s)
	if s.FilesSampled == 0 || s.FilesSampled > 3 || s.BytesRestored > 100<<10 || s.FilesVerified != s.FilesSampled {
		t.Fatalf("drill within a budget: %+v", s)
	}
	for _, p := range s.Paths {
		if strings.HasSuffix(p, "/fxxx") {
			t.Fatalf("a 200 KB file sampled within 100 KiB: %v", s.Paths)
		}
	}
	out := e.ok("drill", "--files", "2").stdout
	if !strings.Contains(out, "2 of 6 files sampled") || !strings.Contains(out, "2 restored and verified") {
		t.Fatalf("drill: %s", out)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("the drill left %v in $TMPDIR", left)
	}
	r := e.run("drill", "--bytes", "5")
	expectExit(t, r, 1, "fits in --bytes")
	r = e.run("drill", "--files", "0")
	expectExit(t, r, 1, "--files")

	// Damage the middle of the largest pack (file data; the trees are in
	// a small pack of their own): the drill names the file it could not
	// restore intact, and fails.
	var largest string
	var size int64
	err := filepath.Walk(filepath.Join(e.repo, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() > size {
			largest, size = p, fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(largest, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("damage"), size/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r = e.run("--no-cache", "drill", "--files", "100", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "content lost") || !strings.Contains(r.stderr, "restore drill of snapshot") {
		t.Fatalf("drill of a damaged repository: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	lastJSON(t, r.stdout, &s)
	if s.OK || s.Problems == 0 || s.FilesVerified >= s.FilesSampled {
		t.Fatalf("damaged repository: %+v", s)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("the failed drill left %v in $TMPDIR", left)
	}
}
