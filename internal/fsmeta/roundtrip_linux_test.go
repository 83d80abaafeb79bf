package fsmeta

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// buildSource creates a tree with every kind of object and returns whether
// user xattrs and ACLs were set.
func buildSource(t *testing.T, src string) {
	t.Helper()
	p := func(s string) string { return filepath.Join(src, s) }
	for _, d := range []string{"dir", "dir/sub", "ro"} {
		if err := os.Mkdir(p(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, p("file.txt"), "hello, world\n", 0o640)
	mustWrite(t, p("empty"), "", 0o600)
	mustWrite(t, p("setuid"), "#!/bin/true\n", 0o4755)
	mustWrite(t, p("caf\xe9"), "non-UTF-8 name", 0o644)
	mustWrite(t, p("dir/sub/deep"), "deep", 0o444)
	mustWrite(t, p("ro/inside"), "in a read-only dir", 0o644)
	mustWrite(t, p("hard1"), "linked", 0o644)
	if err := os.Link(p("hard1"), p("dir/hard2")); err != nil {
		t.Fatal(err)
	}
	makeSparse(t, p("sparse"))
	if err := os.Symlink("file.txt", p("link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/../../etc", p("dir/dangling")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p("fifo"), 0o620); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", p("sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if isRoot() {
		if err := unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lchown(p("file.txt"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lchown(p("link"), 4321, 8765); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(p("dir/sub"), 0o2775); err != nil { // after chown would clear it
			t.Fatal(err)
		}
	}
	if trySetXattr(t, p("file.txt"), "user.cairn", []byte("value\x00with nul")) {
		trySetXattr(t, p("dir"), "user.dir", []byte("d"))
		trySetXattr(t, p("file.txt"), "system.posix_acl_access", aclAccess())
	}
	if isRoot() { // trusted.* works on any type: exercises the non-fd path
		trySetXattr(t, p("link"), "trusted.cairn", []byte("on a symlink"))
		trySetXattr(t, p("fifo"), "trusted.cairn", []byte("on a fifo"))
	}
	if err := unix.Chmod(p("ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	// Times last, children before parents.
	var paths []string
	filepath.Walk(src, func(path string, _ os.FileInfo, err error) error {
		paths = append(paths, path)
		return err
	})
	for i := len(paths) - 1; i >= 0; i-- {
		setTimes(t, paths[i], int64(i))
	}
}

type captured struct {
	rel  string
	node snapshot.Node
}

func captureTree(t *testing.T, root string) []captured {
	t.Helper()
	f, err := NewFilter(FilterOptions{IncludeVirtual: true}, []string{root})
	if err != nil {
		t.Fatal(err)
	}
	links := NewHardLinks()
	var out []captured
	err = Walk(context.Background(), []string{root}, NewCapturer(CaptureOptions{}), f, func(e Entry, err error) error {
		if err != nil {
			return err
		}
		r := rel(t, root, e.Path)
		if to, ok := links.Link(e.Node, r); ok {
			e.Node.HardLinkTo = to
		}
		if e.Node.Type == snapshot.TypeFile && e.Node.HardLinkTo == "" {
			fh, err := OpenContent(e.Path)
			if err != nil {
				return err
			}
			e.Node.Extents, err = fh.Extents()
			fh.Close()
			if err != nil {
				return err
			}
		}
		out = append(out, captured{r, e.Node})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func components(rel string) []string {
	if rel == "." {
		return nil
	}
	return strings.Split(rel, "/")
}

// restoreTree plays the restorer: create in pre-order, copy content with
// plain io (extents only for sparse files), then set metadata in reverse
// order so directories come after their children.
// With viaFD a regular file gets its metadata from SetFileMetadata on the
// descriptor it was written through, as the restorer does.
func restoreTree(t *testing.T, r *Restorer, src string, tree []captured, viaFD bool) {
	t.Helper()
	for _, c := range tree {
		comp, n := components(c.rel), c.node
		var err error
		switch {
		case n.HardLinkTo != "":
			var to []string
			if to, err = SplitPath(n.HardLinkTo); err == nil {
				err = r.Hardlink(comp, to)
			}
		case n.Type == snapshot.TypeDir:
			err = r.MkdirAll(comp)
		case n.Type == snapshot.TypeFile:
			err = copyFile(r, comp, filepath.Join(src, c.rel), n, viaFD)
		case n.Type == snapshot.TypeSymlink:
			err = r.Symlink(comp, n.LinkTarget)
		default:
			err = r.Mknod(comp, n)
		}
		if err != nil {
			t.Fatalf("restore %s: %v", c.rel, err)
		}
	}
	for i := len(tree) - 1; i >= 0; i-- {
		if n := tree[i].node; viaFD && n.Type == snapshot.TypeFile && n.HardLinkTo == "" {
			continue
		}
		if err := r.SetMetadata(components(tree[i].rel), tree[i].node); err != nil {
			t.Fatalf("metadata %s: %v", tree[i].rel, err)
		}
	}
}

func copyFile(r *Restorer, comp []string, srcPath string, n snapshot.Node, viaFD bool) error {
	dst, err := r.CreateFile(comp, int64(n.Size))
	if err != nil {
		return err
	}
	defer dst.Close()
	src, err := os.Open(srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	if n.Extents == nil {
		if _, err = io.Copy(dst, src); err != nil {
			return err
		}
	}
	for _, e := range n.Extents {
		if _, err := io.Copy(io.NewOffsetWriter(dst, e.Offset), io.NewSectionReader(src, e.Offset, e.Length)); err != nil {
			return err
		}
	}
	if viaFD {
		return r.SetFileMetadata(dst, comp, n)
	}
	return nil
}

func TestRestoreRoundTrip(t *testing.T) {
	t.Run("by path", func(t *testing.T) { testRestoreRoundTrip(t, false) })
	t.Run("files by descriptor", func(t *testing.T) { testRestoreRoundTrip(t, true) })
}

func testRestoreRoundTrip(t *testing.T, viaFD bool) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // let TempDir's cleanup into the read-only directories
		os.Chmod(filepath.Join(src, "ro"), 0o755)
		os.Chmod(filepath.Join(dst, "ro"), 0o755)
	})
	buildSource(t, src)
	tree := captureTree(t, src)

	var warnings []string
	r, err := NewRestorer(dst, RestoreOptions{Warn: func(p string, err error) { warnings = append(warnings, p+": "+err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	restoreTree(t, r, src, tree, viaFD)
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
	got := captureTree(t, dst)
	if len(got) != len(tree) {
		t.Fatalf("restored %d entries, captured %d", len(got), len(tree))
	}
	inodes := map[string]uint64{}
	for i, w := range tree {
		g := got[i]
		if g.rel != w.rel {
			t.Fatalf("entry %d: %q, want %q", i, g.rel, w.rel)
		}
		compareNode(t, w.rel, w.node, g.node)
		inodes[w.rel] = g.node.Inode
		if w.node.Type == snapshot.TypeFile && w.node.HardLinkTo == "" {
			a, _ := os.ReadFile(filepath.Join(src, w.rel))
			b, _ := os.ReadFile(filepath.Join(dst, w.rel))
			if !bytes.Equal(a, b) {
				t.Errorf("%s: content differs", w.rel)
			}
		}
	}
	if inodes["hard1"] != inodes["dir/hard2"] {
		t.Error("hard link identity lost")
	}
	var sparse snapshot.Node
	for _, c := range tree {
		if c.rel == "sparse" {
			sparse = c.node
		}
	}
	if sparse.Extents != nil {
		if a := allocated(t, filepath.Join(dst, "sparse")); a > 256<<10 {
			t.Errorf("restored sparse file allocates %d bytes of %d", a, sparse.Size)
		}
	} else {
		t.Log("source file system kept no holes; sparse check not exercised")
	}
	if isRoot() && lookupType(tree, "null") != snapshot.TypeCharDev {
		t.Error("char device not captured")
	}
}

func lookupType(tree []captured, rel string) snapshot.NodeType {
	for _, c := range tree {
		if c.rel == rel {
			return c.node.Type
		}
	}
	return 0
}

func compareNode(t *testing.T, path string, want, got snapshot.Node) {
	t.Helper()
	check := func(field string, w, g any) {
		if !reflect.DeepEqual(w, g) {
			t.Errorf("%s: %s = %v, want %v", path, field, g, w)
		}
	}
	if path != "." { // the roots are named differently
		check("name", want.Name, got.Name)
	}
	check("type", want.Type, got.Type)
	check("mode", want.Mode, got.Mode)
	if isRoot() {
		check("uid", want.UID, got.UID)
		check("gid", want.GID, got.GID)
	}
	check("mtime", want.MTime.UnixNano(), got.MTime.UnixNano())
	check("atime", want.ATime.UnixNano(), got.ATime.UnixNano())
	check("size", want.Size, got.Size)
	check("links", want.Links, got.Links)
	check("rdev", want.Rdev, got.Rdev)
	check("target", want.LinkTarget, got.LinkTarget)
	check("xattrs", want.Xattrs, got.Xattrs)
	check("extents", want.Extents, got.Extents)
	check("hardlink", want.HardLinkTo, got.HardLinkTo)
}

func TestRestoreNoOwnerDropsPrivileges(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root")
	}
	dst := t.TempDir()
	r, err := NewRestorer(dst, RestoreOptions{NoOwner: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.CreateFile([]string{"suid"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	n := snapshot.Node{Type: snapshot.TypeFile, Mode: 0o6755, UID: 1000, GID: 1000}
	if err := r.SetMetadata([]string{"suid"}, n); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dst, "suid"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o755 || st.Uid != 0 {
		t.Errorf("mode %#o uid %d, want 0755 owned by root", st.Mode&0o7777, st.Uid)
	}
	// The same through the descriptor.
	f, err = r.CreateFile([]string{"suid-fd"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.SetFileMetadata(f, []string{"suid-fd"}, n); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(dst, "suid-fd"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o755 || st.Uid != 0 {
		t.Errorf("by descriptor: mode %#o uid %d, want 0755 owned by root", st.Mode&0o7777, st.Uid)
	}
}

func TestRestoreMknodWithoutRoot(t *testing.T) {
	if isRoot() {
		t.Skip("only meaningful without root")
	}
	r, err := NewRestorer(t.TempDir(), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Mknod([]string{"null"}, snapshot.Node{Type: snapshot.TypeCharDev, Rdev: unix.Mkdev(1, 3)})
	if !errors.Is(err, ErrSkipped) {
		t.Errorf("Mknod = %v, want ErrSkipped", err)
	}
}
