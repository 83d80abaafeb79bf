//go:build linux

package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckRepairMissingPack: a pack disappears; check says which and what
// to do (exit 1), repair drops it from the index and names the snapshot
// and the file that lost content, and check no longer reports the pack.
func TestCheckRepairMissingPack(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	writeRandom(t, filepath.Join(src, "d", "big"), 20<<20) // more than one pack
	os.WriteFile(filepath.Join(src, "small"), []byte("hello"), 0o644)
	e.ok("backup", src)
	snaps := e.snapshots()

	// Audit half the packs, then the other half.
	for range 2 {
		r := e.ok("check", "--read-data-subset", "1/2")
		if !strings.Contains(r.stdout, "audit: ") {
			t.Fatalf("no audit coverage line: %s", r.stdout)
		}
	}
	if r := e.ok("check"); !strings.Contains(r.stdout, "R17") {
		t.Errorf("check does not say the R17 detections ran: %s", r.stdout)
	}

	var biggest string
	var size int64
	filepath.WalkDir(filepath.Join(e.repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, _ := d.Info(); fi.Size() > size {
				biggest, size = p, fi.Size()
			}
		}
		return nil
	})
	if err := os.Remove(biggest); err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(biggest)

	// Problems go to stderr one a line, then the error.
	r := e.run("check")
	if r.code != 1 || !strings.Contains(r.stderr, "\ncairn: pack data/"+name[:4]+"… is missing") {
		t.Fatalf("check: exit %d, stderr %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "cairn repair") || !strings.Contains(r.stderr, snaps[0].ShortID) {
		t.Fatalf("check's error does not say what happened and what to do: %s", r.stderr)
	}

	dry := e.ok("repair", "--dry-run")
	if !strings.Contains(dry.stdout, "would drop") || !strings.Contains(dry.stdout, "/d/big") {
		t.Fatalf("dry run: %s", dry.stdout)
	}
	sv, skey := serverKey(e)
	if r := e.runWith(sv, "--key-file", skey, "repair", "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "owner key") {
		t.Fatalf("server-key dry run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	out := e.ok("repair", "--json")
	var doc struct {
		Report struct {
			Dropped   []string `json:"dropped_packs"`
			Snapshots []struct {
				Snapshot string `json:"snapshot"`
				Files    []struct {
					Path string `json:"path"`
				} `json:"files"`
			} `json:"snapshots"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &doc); err != nil {
		t.Fatalf("%v: %s", err, out.stdout)
	}
	rp := doc.Report
	if len(rp.Dropped) != 1 || rp.Dropped[0] != name || len(rp.Snapshots) != 1 || !strings.HasPrefix(snaps[0].ID, rp.Snapshots[0].Snapshot) {
		t.Fatalf("repair report: %+v", rp)
	}
	found := false
	for _, f := range rp.Snapshots[0].Files {
		found = found || strings.HasSuffix(f.Path, "/d/big")
	}
	if !found {
		t.Fatalf("repair does not name the lost file: %+v", rp)
	}

	after := e.run("check")
	if strings.Contains(after.stderr, name[:12]) {
		t.Fatalf("check still reports the dropped pack: %s", after.stderr)
	}
	if after.code != 1 || !strings.Contains(after.stderr, "not in the index") {
		t.Fatalf("check after repair: exit %d, %s", after.code, after.stderr) // the snapshot still lacks the lost content
	}
}
