//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestHabitsListing: the listings a restic user reads, with the real
// binary: ls -l like ls, snapshots --latest and --path DIR/, forget ID,
// sizes with GB meaning GiB, and singular counts.
func TestHabitsListing(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(filepath.Join(src, "tmp"), 0o755)
	syscall.Chmod(filepath.Join(src, "tmp"), 0o1777)
	os.WriteFile(filepath.Join(src, "f"), []byte("12345"), 0o644)
	os.Link(filepath.Join(src, "f"), filepath.Join(src, "g"))
	e.ok("backup", src)
	e.ok("backup", src)

	ls := e.ok("ls", "-l", "latest", src).stdout
	for _, want := range []string{"drwxrwxrwt ", "-rw-r--r-- "} {
		if !strings.Contains(ls, want) {
			t.Errorf("ls -l lacks %q:\n%s", want, ls)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(ls), "\n") {
		if strings.HasSuffix(l, "/g") && !strings.Contains(l, " 5 ") {
			t.Errorf("hard link's second name without its size: %q", l)
		}
	}

	snaps := e.snapshots()
	out := e.ok("snapshots", "--latest", "1", "--path", src+"/").stdout
	if !strings.Contains(out, snaps[1].ShortID) || strings.Contains(out, snaps[0].ShortID) || !strings.Contains(out, "1 snapshot\n") {
		t.Errorf("snapshots --latest 1 --path %s/:\n%s", src, out)
	}
	e.ok("forget", snaps[0].ShortID)
	if left := e.snapshots(); len(left) != 1 || left[0].ID != snaps[1].ID {
		t.Errorf("after forget %s: %+v", snaps[0].ShortID, left)
	}
	// "1GB" is taken (as 1 GiB, internal/units): a budget far above the
	// repository's size removes nothing; a size that is not one is refused.
	out = e.ok("forget", "--max-size", "1GB", "--dry-run").stdout
	if !strings.Contains(out, "would remove 0 of 1 snapshot\n") {
		t.Errorf("forget --max-size 1GB:\n%s", out)
	}
	r := e.run("forget", "--max-size", "1 gigabyte")
	expectExit(t, r, 1, "GB and GiB mean the same")
}
