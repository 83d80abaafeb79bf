package fsmeta

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// TestSetFileMetadataOwnFile: a file CreateTemp made is not chowned to
// the restoring process's own ids, which it has; it is chowned to any
// other owner, and in a setgid directory of another group (where it got
// that group).
func TestSetFileMetadataOwnFile(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root")
	}
	dst := t.TempDir()
	sg := filepath.Join(dst, "sg")
	if err := os.Mkdir(sg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sg, 0, 4321); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sg, 0o2755); err != nil {
		t.Fatal(err)
	}
	calls := 0
	fchown = func(fd, uid, gid int) error {
		calls++
		return unix.Fchown(fd, uid, gid)
	}
	defer func() { fchown = unix.Fchown }()
	r, err := NewRestorer(dst, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	euid, egid := os.Geteuid(), os.Getegid()
	for _, c := range []struct {
		path     []string
		uid, gid int
		chowns   int
	}{
		{[]string{"own"}, euid, egid, 0},
		{[]string{"other"}, 1234, 5678, 1},
		{[]string{"sg", "own"}, euid, egid, 1},
	} {
		calls = 0
		f, err := r.CreateTemp(c.path, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := snapshot.Node{Type: snapshot.TypeFile, Mode: 0o640, UID: uint32(c.uid), GID: uint32(c.gid)}
		if err := r.SetFileMetadata(f, c.path, n); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(f.Fd(), &st); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if int(st.Uid) != c.uid || int(st.Gid) != c.gid {
			t.Errorf("%v: owned by %d:%d, want %d:%d", c.path, st.Uid, st.Gid, c.uid, c.gid)
		}
		if calls != c.chowns {
			t.Errorf("%v: %d chowns, want %d", c.path, calls, c.chowns)
		}
	}
}
