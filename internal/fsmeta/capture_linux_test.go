package fsmeta

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

func TestLstatKinds(t *testing.T) {
	dir := t.TempDir()
	c := NewCapturer(CaptureOptions{})
	p := func(s string) string { return filepath.Join(dir, s) }

	mustWrite(t, p("file"), "hello", 0o640)
	setTimes(t, p("file"), 1)
	mustWrite(t, p("empty"), "", 0o4755)
	if err := os.Mkdir(p("dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../some/where", p("link")); err != nil {
		t.Fatal(err)
	}
	setTimes(t, p("link"), 2)
	if err := unix.Mkfifo(p("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", p("sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustWrite(t, p("caf\xe9"), "x", 0o600)

	n := lstat(t, c, p("file"))
	if n.Type != snapshot.TypeFile || n.Mode != 0o640 || n.Size != 5 || n.Links != 1 || n.Name != "file" {
		t.Errorf("file: %+v", n)
	}
	if n.MTime.UnixNano() != 1_500_000_001*1e9+987_654_320 || n.ATime.UnixNano() != 1_600_000_001*1e9+123_456_790 {
		t.Errorf("file times: m %v a %v", n.MTime, n.ATime)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p("file"), &st); err != nil {
		t.Fatal(err)
	}
	if n.Inode != st.Ino || n.Device != st.Dev || n.UID != st.Uid || n.GID != st.Gid || n.CTime.UnixNano() != st.Ctim.Nano() {
		t.Errorf("file ids: %+v vs %+v", n, st)
	}
	if isRoot() && (n.User != "root" || n.Group != "root") {
		t.Errorf("names %q %q", n.User, n.Group)
	}

	if n := lstat(t, c, p("empty")); n.Type != snapshot.TypeFile || n.Size != 0 || n.Mode != 0o4755 {
		t.Errorf("empty: %+v", n)
	}
	if n := lstat(t, c, p("dir")); n.Type != snapshot.TypeDir || n.Mode != 0o750 || n.Size != 0 {
		t.Errorf("dir: %+v", n)
	}
	n = lstat(t, c, p("link"))
	if n.Type != snapshot.TypeSymlink || n.LinkTarget != "../some/where" || n.MTime.Unix() != 1_500_000_002 {
		t.Errorf("symlink: %+v", n)
	}
	if n := lstat(t, c, p("fifo")); n.Type != snapshot.TypeFIFO || n.Mode != 0o644 {
		t.Errorf("fifo: %+v", n)
	}
	if n := lstat(t, c, p("sock")); n.Type != snapshot.TypeSocket {
		t.Errorf("socket: %+v", n)
	}
	if n := lstat(t, c, p("caf\xe9")); n.Name != "caf\xe9" || n.Type != snapshot.TypeFile {
		t.Errorf("non-UTF-8 name: %q", n.Name)
	}
	names, err := ReadDirSorted(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"caf\xe9", "dir", "empty", "fifo", "file", "link", "sock"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("ReadDirSorted = %q, want %q", names, want)
	}
}

func TestLstatDevice(t *testing.T) {
	if !isRoot() {
		t.Skip("mknod of a device needs root")
	}
	p := filepath.Join(t.TempDir(), "null")
	if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod: %v", err)
	}
	n := lstat(t, NewCapturer(CaptureOptions{}), p)
	if n.Type != snapshot.TypeCharDev || unix.Major(n.Rdev) != 1 || unix.Minor(n.Rdev) != 3 {
		t.Errorf("char device: %+v", n)
	}
}

func TestLstatHardLinks(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	mustWrite(t, a, "data", 0o644)
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	c := NewCapturer(CaptureOptions{})
	na, nb := lstat(t, c, a), lstat(t, c, b)
	if na.Links != 2 || na.Inode != nb.Inode {
		t.Fatalf("links %d, inodes %d %d", na.Links, na.Inode, nb.Inode)
	}
	h := NewHardLinks()
	if _, ok := h.Link(na, "a"); ok {
		t.Error("first occurrence reported as link")
	}
	if to, ok := h.Link(nb, "b"); !ok || to != "a" {
		t.Errorf("second occurrence: %q %v", to, ok)
	}
	if len(h.seen) != 0 {
		t.Error("entry kept after all links were seen")
	}
	d := lstat(t, c, dir)
	if _, ok := h.Link(d, "."); ok {
		t.Error("directory recorded")
	}
}

func TestLstatXattrs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	mustWrite(t, p, "x", 0o644)
	if !trySetXattr(t, p, "user.cairn", []byte("v1")) {
		t.Skip("file system without user xattrs")
	}
	trySetXattr(t, p, "user.a", nil)
	n := lstat(t, NewCapturer(CaptureOptions{}), p)
	want := []snapshot.Xattr{{Name: "user.a", Value: []byte{}}, {Name: "user.cairn", Value: []byte("v1")}}
	if !reflect.DeepEqual(n.Xattrs, want) {
		t.Errorf("xattrs = %q, want %q", n.Xattrs, want)
	}
	if n := lstat(t, NewCapturer(CaptureOptions{NoXattrs: true}), p); n.Xattrs != nil {
		t.Errorf("NoXattrs still read %q", n.Xattrs)
	}
	// The content reader gets the same attributes through its descriptor.
	c, err := OpenContent(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if xs, err := c.Xattrs(); err != nil || !reflect.DeepEqual(xs, want) {
		t.Errorf("Content.Xattrs = %q, %v; want %q", xs, err, want)
	}
}

func TestLstatACL(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	mustWrite(t, p, "x", 0o640)
	acl := aclAccess()
	if !trySetXattr(t, p, "system.posix_acl_access", acl) {
		t.Skip("file system without POSIX ACLs")
	}
	n := lstat(t, NewCapturer(CaptureOptions{}), p)
	if len(n.Xattrs) != 1 || n.Xattrs[0].Name != "system.posix_acl_access" || !bytes.Equal(n.Xattrs[0].Value, acl) {
		t.Errorf("ACL xattr = %q", n.Xattrs)
	}
}

func TestChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	mustWrite(t, p, "one", 0o644)
	c := NewCapturer(CaptureOptions{})
	before := lstat(t, c, p)
	f, err := OpenContent(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	same, err := f.After()
	if err != nil {
		t.Fatal(err)
	}
	if Changed(before, same) || Changed(before, f.Before()) {
		t.Error("unchanged file reported changed")
	}
	if err := os.WriteFile(p, []byte("two!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !Changed(before, lstat(t, c, p)) {
		t.Error("rewritten file not reported changed")
	}
	// Same size and mtime, but ctime moves (a chmod or a careful rewrite).
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	mid := lstat(t, c, p)
	mid.CTime = mid.CTime.Add(-1)
	if !Changed(mid, lstat(t, c, p)) {
		t.Error("ctime change not detected")
	}
}

func TestOpenContentRefusesSymlinkAndFIFO(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "f"), "x", 0o644)
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "p"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"l", "p"} {
		if f, err := OpenContent(filepath.Join(dir, name)); err == nil {
			f.Close()
			t.Errorf("OpenContent(%s) succeeded", name)
		}
	}
}

// TestLstatAt: a stat relative to an open directory describes every kind
// as Lstat of the full path does, reads symlink targets longer than its
// first buffer, and names the full path when the entry is gone.
func TestLstatAt(t *testing.T) {
	dir := t.TempDir()
	c := NewCapturer(CaptureOptions{})
	p := func(s string) string { return filepath.Join(dir, s) }
	mustWrite(t, p("file"), "hello", 0o640)
	if err := os.Mkdir(p("dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	long := string(bytes.Repeat([]byte("a/"), 600)) + "end"
	for name, target := range map[string]string{"short": "x", "long": long, "edge": string(bytes.Repeat([]byte("b"), 256))} {
		if err := os.Symlink(target, p(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(p("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Names()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dir", "edge", "fifo", "file", "long", "short"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Names = %q, want %q", names, want)
	}
	for _, name := range names {
		at, err := c.LstatAt(d, name)
		if err != nil {
			t.Fatalf("LstatAt %s: %v", name, err)
		}
		full := lstat(t, c, p(name))
		at.ATime, full.ATime = time.Time{}, time.Time{} // reading a link's target touches its atime
		if !reflect.DeepEqual(at, full) {
			t.Errorf("%s: LstatAt %+v, Lstat %+v", name, at, full)
		}
	}
	if n, _ := c.LstatAt(d, "long"); n.LinkTarget != long {
		t.Errorf("long target read as %d bytes, want %d", len(n.LinkTarget), len(long))
	}
	_, err = c.LstatAt(d, "gone")
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != p("gone") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing entry: %v, want a PathError for %s", err, p("gone"))
	}
}
