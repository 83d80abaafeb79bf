package fsmeta

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

func TestValidName(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "/", "a\x00b", strings.Repeat("x", 256)} {
		if err := ValidName(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"a", "...", "caf\xe9", " ", "-", ".hidden", strings.Repeat("x", 255)} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
	for _, p := range []string{"", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "a/\x00"} {
		if _, err := SplitPath(p); err == nil {
			t.Errorf("SplitPath(%q) accepted", p)
		}
	}
	if c, err := SplitPath("a/b/caf\xe9"); err != nil || len(c) != 3 {
		t.Errorf("SplitPath = %q, %v", c, err)
	}
}

// hostile sets up base/target (the restore target) and base/outside (which
// nothing may touch) and returns a Restorer on the target.
func hostile(t *testing.T, opts RestoreOptions) (r *Restorer, target, outside string) {
	t.Helper()
	base := t.TempDir()
	target, outside = filepath.Join(base, "target"), filepath.Join(base, "outside")
	for _, d := range []string{target, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(outside, "secret"), "keep", 0o600)
	r, err := NewRestorer(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, target, outside
}

// assertUntouched fails if anything in outside was added or changed.
func assertUntouched(t *testing.T, outside string) {
	t.Helper()
	names, err := ReadDirSorted(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "secret" {
		t.Errorf("outside now holds %q", names)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(outside, "secret"), &st); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(outside, "secret"))
	if string(data) != "keep" || st.Mode&0o7777 != 0o600 || st.Uid != uint32(os.Geteuid()) || st.Nlink != 1 {
		t.Errorf("secret changed: %q mode %#o uid %d nlink %d", data, st.Mode&0o7777, st.Uid, st.Nlink)
	}
	if err := unix.Stat(outside, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o755 || st.Mtim.Sec < time.Now().Add(-time.Hour).Unix() {
		t.Errorf("outside dir changed: mode %#o mtime %d", st.Mode&0o7777, st.Mtim.Sec)
	}
}

func TestRestoreRefusesBadNames(t *testing.T) {
	r, target, outside := hostile(t, RestoreOptions{})
	bad := [][]string{nil, {""}, {".."}, {".", "x"}, {"..", "outside", "x"}, {"a/b"}, {"a\x00b"}, {"ok", ".."}, {strings.Repeat("n", 256)}}
	for _, c := range bad {
		if len(c) > 0 { // MkdirAll(nil) is the target itself
			if err := r.MkdirAll(c); err == nil {
				t.Errorf("MkdirAll(%q) accepted", c)
			}
		}
		if f, err := r.CreateFile(c, 1); err == nil {
			f.Close()
			t.Errorf("CreateFile(%q) accepted", c)
		}
		if err := r.Symlink(c, "x"); err == nil {
			t.Errorf("Symlink(%q) accepted", c)
		}
		if err := r.Mknod(c, snapshot.Node{Type: snapshot.TypeFIFO}); err == nil {
			t.Errorf("Mknod(%q) accepted", c)
		}
		if len(c) > 0 {
			if err := r.SetMetadata(c, snapshot.Node{Type: snapshot.TypeDir, Mode: 0o777}); err == nil {
				t.Errorf("SetMetadata(%q) accepted", c)
			}
		}
	}
	deep := make([]string, MaxDepth+1)
	for i := range deep {
		deep[i] = "d"
	}
	if err := r.MkdirAll(deep); !errors.Is(err, ErrTooDeep) {
		t.Errorf("MkdirAll(too deep) = %v", err)
	}
	if err := r.Symlink([]string{"l"}, "a\x00b"); err == nil {
		t.Error("symlink target with NUL accepted")
	}
	if err := r.Symlink([]string{"l"}, ""); err == nil {
		t.Error("empty symlink target accepted")
	}
	if err := r.Mknod([]string{"f"}, snapshot.Node{Type: snapshot.TypeFile}); err == nil {
		t.Error("Mknod of a regular file accepted")
	}
	if names, _ := ReadDirSorted(target); len(names) != 0 {
		t.Errorf("target holds %q", names)
	}
	assertUntouched(t, outside)
}

func TestRestoreSymlinkCannotRedirect(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		r, target, outside := hostile(t, RestoreOptions{Overwrite: overwrite})
		// A symlink restored from the tree, then entries below it.
		if err := r.Symlink([]string{"evil"}, outside); err != nil {
			t.Fatal(err)
		}
		if f, err := r.CreateFile([]string{"evil", "x"}, 10); err == nil {
			f.Close()
			t.Error("CreateFile through a symlink succeeded")
		}
		if err := r.Symlink([]string{"evil", "s"}, "x"); err == nil {
			t.Error("Symlink through a symlink succeeded")
		}
		if err := r.Mknod([]string{"evil", "p"}, snapshot.Node{Type: snapshot.TypeFIFO}); err == nil {
			t.Error("Mknod through a symlink succeeded")
		}
		mustWrite(t, filepath.Join(target, "file"), "", 0o644)
		if err := r.Hardlink([]string{"evil", "h"}, []string{"file"}); err == nil {
			t.Error("Hardlink through a symlink succeeded")
		}
		// Hard link to the secret through the symlink, and to the symlink.
		if err := r.Hardlink([]string{"h"}, []string{"evil", "secret"}); err == nil {
			t.Error("Hardlink to a path through a symlink succeeded")
		}
		if err := r.Hardlink([]string{"h"}, []string{"evil"}); err == nil {
			t.Error("Hardlink to a symlink succeeded")
		}
		if err := r.Hardlink([]string{"h"}, []string{"..", "outside", "secret"}); err == nil {
			t.Error("Hardlink to .. succeeded")
		}
		// Metadata for a node claiming to be a dir or file at "evil" must
		// not reach the symlink's target; as a symlink only the link changes.
		old := time.Unix(1000, 0)
		for _, typ := range []snapshot.NodeType{snapshot.TypeDir, snapshot.TypeFile} {
			if err := r.SetMetadata([]string{"evil"}, snapshot.Node{Type: typ, Mode: 0o777, MTime: old}); err == nil {
				t.Errorf("SetMetadata(evil as %s) succeeded", typ)
			}
		}
		if err := r.SetMetadata([]string{"evil"}, snapshot.Node{Type: snapshot.TypeSymlink, Mode: 0o777, MTime: old, ATime: old}); err != nil {
			t.Errorf("SetMetadata(evil as symlink) = %v", err)
		}
		if err := r.SetMetadata([]string{"evil", "secret"}, snapshot.Node{Type: snapshot.TypeFile, Mode: 0o777}); err == nil {
			t.Error("SetMetadata through a symlink succeeded")
		}
		// The same symlink again: never written through, with Overwrite replaced.
		err := r.Symlink([]string{"evil"}, outside)
		if overwrite != (err == nil) {
			t.Errorf("overwrite=%v: second Symlink = %v", overwrite, err)
		}
		// A directory below it: refused, or with Overwrite the symlink is
		// replaced by a real directory inside the target.
		err = r.MkdirAll([]string{"evil", "d"})
		if overwrite != (err == nil) {
			t.Errorf("overwrite=%v: MkdirAll(evil/d) = %v", overwrite, err)
		}
		if overwrite {
			if fi, err := os.Lstat(filepath.Join(target, "evil", "d")); err != nil || !fi.IsDir() {
				t.Errorf("evil/d not a directory in the target: %v", err)
			}
		}
		assertUntouched(t, outside)
	}
}

func TestRestorePreexistingSymlink(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		r, target, outside := hostile(t, RestoreOptions{Overwrite: overwrite})
		secret := filepath.Join(outside, "secret")
		for _, name := range []string{"f", "d", "fifo", "dangling"} {
			dest := secret
			if name == "dangling" {
				dest = filepath.Join(outside, "new")
			}
			if name == "d" {
				dest = outside
			}
			if err := os.Symlink(dest, filepath.Join(target, name)); err != nil {
				t.Fatal(err)
			}
		}
		f, err := r.CreateFile([]string{"f"}, 3)
		if overwrite {
			if err != nil {
				t.Fatalf("overwrite CreateFile = %v", err)
			}
			f.Write([]byte("new"))
			f.Close()
		} else if !errors.Is(err, fs.ErrExist) {
			t.Errorf("CreateFile over a symlink = %v, want ErrExist", err)
		}
		if f, err := r.CreateFile([]string{"dangling"}, 1); err == nil {
			f.Close()
			if !overwrite {
				t.Error("CreateFile followed a dangling symlink")
			}
		}
		err = r.MkdirAll([]string{"d", "sub"})
		if overwrite != (err == nil) {
			t.Errorf("overwrite=%v: MkdirAll over a symlink = %v", overwrite, err)
		}
		err = r.Mknod([]string{"fifo"}, snapshot.Node{Type: snapshot.TypeFIFO})
		if overwrite != (err == nil) {
			t.Errorf("overwrite=%v: Mknod over a symlink = %v", overwrite, err)
		}
		if overwrite {
			var st unix.Stat_t
			for name, want := range map[string]uint32{"f": unix.S_IFREG, "d": unix.S_IFDIR, "fifo": unix.S_IFIFO, "dangling": unix.S_IFREG} {
				if err := unix.Lstat(filepath.Join(target, name), &st); err != nil || st.Mode&unix.S_IFMT != want {
					t.Errorf("%s not replaced: mode %#o %v", name, st.Mode, err)
				}
			}
		}
		assertUntouched(t, outside)
	}
}

func TestRestoreExistingDirIsNotReplaced(t *testing.T) {
	r, target, _ := hostile(t, RestoreOptions{Overwrite: true})
	if err := os.MkdirAll(filepath.Join(target, "d", "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if f, err := r.CreateFile([]string{"d"}, 0); err == nil {
		f.Close()
		t.Error("CreateFile replaced a directory")
	}
	if err := r.MkdirAll([]string{"d", "new"}); err != nil {
		t.Errorf("MkdirAll into an existing directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "d", "keep")); err != nil {
		t.Error("existing directory contents lost")
	}
}
