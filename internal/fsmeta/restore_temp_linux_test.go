package fsmeta

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// names lists dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestCreateTempCommit: a temporary file is invisible under its final name
// until Commit, is removed by Close without Commit, replaces a file or a
// symlink (without writing through it) on Commit, and never a directory;
// both without a name until Commit (O_TMPFILE) and, where the file system
// refuses that, under a temporary name.
func TestCreateTempCommit(t *testing.T) {
	t.Run("nameless", func(t *testing.T) { testCreateTempCommit(t, false) })
	t.Run("named", func(t *testing.T) { testCreateTempCommit(t, true) })
}

func testCreateTempCommit(t *testing.T, named bool) {
	r, target, outside := hostile(t, RestoreOptions{})
	r.noTmpfile.Store(named)
	write := func(name string, replace bool) error {
		t.Helper()
		f, err := r.CreateTemp([]string{name}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("new " + name)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(target, name)); err == nil && name == "fresh" {
			t.Error("the final name exists before Commit")
		}
		err = f.Commit(replace)
		if cerr := f.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		return err
	}

	// Abandoned: nothing is left.
	f, err := r.CreateTemp([]string{"abandoned"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n := names(t, target); named && (len(n) != 1 || !strings.HasPrefix(n[0], ".abandoned.cairn-")) || !named && len(n) != 0 {
		t.Fatalf("while writing: %q", n)
	}
	if f.anon == named || r.noTmpfile.Load() != named {
		t.Fatalf("named %v: the file was made nameless %v (O_TMPFILE refused: %v)", named, f.anon, r.noTmpfile.Load())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := names(t, target); len(n) != 0 {
		t.Fatalf("after Close without Commit: %q", n)
	}

	if err := write("fresh", false); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(target, "old"), "old", 0o644)
	if err := write("old", false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Commit without replace over a file: %v", err)
	}
	if err := write("old", true); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(target, "link")); err != nil {
		t.Fatal(err)
	}
	if err := write("link", true); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(target, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := write("dir", true); !errors.Is(err, ErrIsDir) {
		t.Errorf("Commit over a directory: %v", err)
	}
	for _, name := range []string{"fresh", "old", "link"} {
		b, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(b) != "new "+name {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(target, "dir")); err != nil || !fi.IsDir() {
		t.Errorf("the directory was replaced: %v", err)
	}
	if n := names(t, target); len(n) != 4 {
		t.Errorf("temporary files left: %q", n)
	}
	assertUntouched(t, outside)
}

// TestTempNames: long names fit, and RemoveTemps removes only regular
// files with another Restorer's temporary names.
func TestTempNames(t *testing.T) {
	r, target, _ := hostile(t, RestoreOptions{})
	long := strings.Repeat("x", MaxNameLen)
	if tn := r.tempName(long, 1<<63); len(tn) > MaxNameLen || ValidName(tn) != nil {
		t.Errorf("temporary name of a long name: %d bytes", len(tn))
	}
	if _, ok := parseTemp(r.tempName("a.cairn-12345678-1", 0xffffffffffffffff)); !ok {
		t.Error("a temporary name is not recognised")
	}
	other := ".f.cairn-0123abcd-a"
	mine := r.tempName("f", 7)
	keep := []string{"f.cairn-0123abcd-a", ".f.cairn-0123abcd-", ".f.cairn-0123ABCD-a", ".f.cairn-0123abc-a", ".f.cairn-0123abcd-a-b", ".f.cairn-0123abcd-0123456789abcdef0"}
	for _, n := range append([]string{other, mine}, keep...) {
		mustWrite(t, filepath.Join(target, n), "x", 0o600)
	}
	if err := os.Mkdir(filepath.Join(target, ".d.cairn-0123abcd-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	removed, err := r.RemoveTemps(nil)
	if err != nil || removed != 1 {
		t.Fatalf("RemoveTemps = %d, %v; want 1", removed, err)
	}
	if _, err := os.Lstat(filepath.Join(target, other)); !os.IsNotExist(err) {
		t.Error("another run's temporary file is still there")
	}
	if n := names(t, target); len(n) != len(keep)+2 {
		t.Errorf("left %q", n)
	}
}

// TestSyncFS: the target's file system is flushed.
func TestSyncFS(t *testing.T) {
	r, _, _ := hostile(t, RestoreOptions{})
	if err := r.SyncFS(); err != nil {
		t.Fatal(err)
	}
}
