package fsmeta

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// TestRestoreNoSetid: setuid/setgid bits go from files and directories,
// security.capability from files, as any user and through either path.
func TestRestoreNoSetid(t *testing.T) {
	dst := t.TempDir()
	r, err := NewRestorer(dst, RestoreOptions{NoSetid: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// cap_setuid+ep, version 2 (VFS_CAP_REVISION_2).
	capability := []byte{0x01, 0x00, 0x00, 0x02, 0x80, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	file := snapshot.Node{Type: snapshot.TypeFile, Mode: 0o6755, UID: uint32(unix.Getuid()), GID: uint32(unix.Getgid()),
		Xattrs: []snapshot.Xattr{{Name: "security.capability", Value: capability}}}
	f, err := r.CreateFile([]string{"by-name"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := r.SetMetadata([]string{"by-name"}, file); err != nil {
		t.Fatal(err)
	}
	f, err = r.CreateFile([]string{"by-fd"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetFileMetadata(f, []string{"by-fd"}, file); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := r.MkdirAll([]string{"dir"}); err != nil {
		t.Fatal(err)
	}
	dir := snapshot.Node{Type: snapshot.TypeDir, Mode: 0o2775, UID: file.UID, GID: file.GID}
	if err := r.SetMetadata([]string{"dir"}, dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"by-name": 0o755, "by-fd": 0o755, "dir": 0o775} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dst, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != want {
			t.Errorf("%s: mode %#o, want %#o", name, st.Mode&0o7777, want)
		}
		if _, err := unix.Lgetxattr(filepath.Join(dst, name), "security.capability", make([]byte, 64)); err == nil {
			t.Errorf("%s: security.capability restored", name)
		}
	}
}

// TestRestoreWarnsLostXattr: an xattr the kernel refuses (an unknown
// namespace, refused for root too) reaches Warn from both paths, and the
// rest of the metadata is still set.
func TestRestoreWarnsLostXattr(t *testing.T) {
	dst := t.TempDir()
	var warned []string
	r, err := NewRestorer(dst, RestoreOptions{Warn: func(p string, err error) {
		warned = append(warned, p+": "+err.Error())
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := snapshot.Node{Type: snapshot.TypeFile, Mode: 0o750, UID: uint32(unix.Getuid()), GID: uint32(unix.Getgid()),
		Xattrs: []snapshot.Xattr{{Name: "bogus.attr", Value: []byte("v")}}}
	f, err := r.CreateFile([]string{"a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetFileMetadata(f, []string{"a"}, n); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := r.MkdirAll([]string{"d"}); err != nil {
		t.Fatal(err)
	}
	n.Type = snapshot.TypeDir
	if err := r.SetMetadata([]string{"d"}, n); err != nil {
		t.Fatal(err)
	}
	slices.Sort(warned)
	if len(warned) != 2 || !strings.HasPrefix(warned[0], "a: xattr \"bogus.attr\" not restored") || !strings.HasPrefix(warned[1], "d: ") {
		t.Fatalf("warnings %q, want one for a and one for d", warned)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dst, "d"), &st); err != nil || st.Mode&0o7777 != 0o750 {
		t.Errorf("d: mode %#o (%v), want 0750 despite the lost xattr", st.Mode&0o7777, err)
	}
}
