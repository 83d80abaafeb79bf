package fsmeta

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// aclAccess encodes a system.posix_acl_access value: user::rw-,
// user:1234:r--, group::r--, mask::r--, other::---.
func aclAccess() []byte {
	type ent struct {
		tag, perm uint16
		id        uint32
	}
	ents := []ent{{0x01, 6, 0xffffffff}, {0x02, 4, 1234}, {0x04, 4, 0xffffffff}, {0x10, 4, 0xffffffff}, {0x20, 0, 0xffffffff}}
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range ents {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// mustWrite creates path with data and unix mode bits (07777).
func mustWrite(t *testing.T, path string, data string, mode uint32) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// setTimes sets atime and mtime of path (not following symlinks) to
// distinct nanosecond values derived from seed.
func setTimes(t *testing.T, path string, seed int64) {
	t.Helper()
	at := time.Unix(1_600_000_000+seed, 123_456_789+seed)
	mt := time.Unix(1_500_000_000+seed, 987_654_321-seed)
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// trySetXattr sets an xattr and reports whether the file system supports it.
func trySetXattr(t *testing.T, path, name string, value []byte) bool {
	t.Helper()
	err := unix.Lsetxattr(path, name, value, 0)
	if errors.Is(err, unix.ENOTSUP) {
		return false
	}
	if err != nil {
		t.Fatalf("lsetxattr %s %s: %v", path, name, err)
	}
	return true
}

func isRoot() bool { return os.Geteuid() == 0 }

func lstat(t *testing.T, c *Capturer, path string) snapshot.Node {
	t.Helper()
	n, err := c.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// makeSparse writes 4 KiB of data at 0 and at 1 MiB into a 4 MiB file.
func makeSparse(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := make([]byte, 4096)
	for i := range a {
		a[i] = 'a'
	}
	if _, err := f.Write(a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(1<<20, 0); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		a[i] = 'b'
	}
	if _, err := f.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 20); err != nil {
		t.Fatal(err)
	}
}

func rel(t *testing.T, base, p string) string {
	t.Helper()
	r, err := filepath.Rel(base, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
