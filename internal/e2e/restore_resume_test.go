//go:build linux

package e2e

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestoreInterrupt (restore-interrupt): a restore into one target is
// stopped again and again, by SIGINT at several points of a large file and
// once by SIGKILL, and run again each time. After every SIGINT nothing is
// under a real name that is not complete and identical, and nothing
// temporary is left; after the SIGKILL nothing is left either (the file
// being written had no name yet: O_TMPFILE) or, on a file system without
// nameless files, the next run removes what the killed one left. The last run finishes the job: the tree is identical to
// the source in content and metadata, and the files finished earlier were
// kept, not written again.
func TestRestoreInterrupt(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	mtime := time.Date(2023, 3, 4, 5, 6, 7, 800, time.UTC)
	for d := range 4 {
		for f := range 25 {
			p := filepath.Join(src, fmt.Sprintf("d%d", d), fmt.Sprintf("f%02d", f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			writeRandom(t, p, 1000+d*f*37)
			if err := os.Chmod(p, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	const bigSize = 192 << 20
	big := filepath.Join(src, "big")
	writeRandom(t, big, bigSize)
	if err := os.Symlink("d0/f00", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "d1", "f01"), filepath.Join(src, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "d2"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	}); err != nil {
		t.Fatal(err)
	}
	e.ok("init")
	e.ok("backup", src)

	target := filepath.Join(t.TempDir(), "target")
	restored := filepath.Join(target, src)
	want := contentHashes(t, src)

	// bigTemp is the file big is being written to by the restore pid and
	// how much of it is written: a file with no name yet (O_TMPFILE,
	// found among pid's descriptors) or, where the file system has none,
	// one under a temporary name.
	bigTemp := func(pid int) (string, int64) {
		var st syscall.Stat_t
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, d := range fds {
			fd := fmt.Sprintf("/proc/%d/fd/%s", pid, d.Name())
			if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, restored+"/#") &&
				syscall.Stat(fd, &st) == nil && st.Size == bigSize {
				return l, st.Blocks * 512
			}
		}
		ents, _ := os.ReadDir(restored)
		for _, d := range ents {
			if strings.HasPrefix(d.Name(), ".big.cairn-") {
				if syscall.Stat(filepath.Join(restored, d.Name()), &st) == nil {
					return d.Name(), st.Blocks * 512
				}
			}
		}
		return "", 0
	}
	// leftTemp is a temporary file under a name in the restored tree.
	leftTemp := func() string {
		n, _ := bigTemp(-1)
		return n
	}
	// Each stop point waits for the restore to get there, polling the
	// target: the temporary file's allocated blocks show its progress.
	points := []struct {
		name    string
		sig     syscall.Signal
		reached func(pid int) bool
	}{
		{"big started", syscall.SIGINT, func(pid int) bool { n, _ := bigTemp(pid); return n != "" }},
		{"big 25%", syscall.SIGINT, func(pid int) bool { _, b := bigTemp(pid); return b >= bigSize/4 }},
		{"big 60%", syscall.SIGINT, func(pid int) bool { _, b := bigTemp(pid); return b >= bigSize*6/10 }},
		{"big 40%, killed", syscall.SIGKILL, func(pid int) bool { _, b := bigTemp(pid); return b >= bigSize*4/10 }},
	}
	interrupted, killed, leftByKill := 0, false, false
	for _, p := range points {
		cmd := e.command(nil, "restore", "latest", "--target", target)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var err error
		there, done := false, false
		deadline := time.Now().Add(2 * time.Minute)
		for !done && time.Now().Before(deadline) {
			select {
			case err = <-exited:
				done = true
				continue
			default:
			}
			if p.reached(cmd.Process.Pid) {
				there, done = true, true
				cmd.Process.Signal(p.sig)
				err = <-exited
				continue
			}
			time.Sleep(2 * time.Millisecond) // polling the file system, not waiting for an event
		}
		if !done {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("%s: not reached within the deadline: %s", p.name, stderr.String())
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		switch {
		case !there && code == 0:
			t.Logf("%s: the restore finished before it got there", p.name)
		case !there:
			t.Fatalf("%s: exit %d before getting there: %s", p.name, code, stderr.String())
		case p.sig == syscall.SIGKILL:
			// A file without a name dies with the process; one under a
			// temporary name is left for the next run to remove.
			killed = true
			leftByKill = leftTemp() != ""
		case code == 130:
			interrupted++
			if !strings.HasPrefix(stderr.String(), "cairn: interrupted") {
				t.Errorf("%s: stderr %q", p.name, stderr.String())
			}
			if n := leftTemp(); n != "" {
				t.Errorf("%s: an interrupted restore left %s", p.name, n)
			}
		case code != 0:
			t.Fatalf("%s: exit %d: %s", p.name, code, stderr.String())
		}
		// Whatever is under a real name is complete and correct.
		err = filepath.WalkDir(target, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(restored, path)
			if strings.Contains(d.Name(), ".cairn-") {
				if p.sig != syscall.SIGKILL {
					t.Errorf("%s: temporary file %s left", p.name, rel)
				}
				return nil
			}
			if h, ok := want[rel]; !ok || fileHash(t, path) != h {
				t.Errorf("%s: %s is under its name but not the snapshot's file", p.name, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if interrupted == 0 || !killed {
		t.Fatalf("%d restores interrupted, killed %v: the test proved nothing", interrupted, killed)
	}

	r := e.ok("--json", "restore", "latest", "--target", target, "--verify")
	var sum struct {
		Files     uint64 `json:"files_restored"`
		Verified  uint64 `json:"files_verified"`
		Unchanged uint64 `json:"unchanged"`
		Removed   uint64 `json:"temporary_files_removed"`
	}
	lastJSON(t, r.stdout, &sum)
	if leftByKill != (sum.Removed > 0) {
		t.Errorf("the killed restore left a temporary file: %v; the last run removed %d: %s", leftByKill, sum.Removed, r.stdout)
	}
	if n := leftTemp(); n != "" {
		t.Errorf("temporary file %s left after the last run", n)
	}
	if sum.Unchanged < 50 || sum.Files == 0 || sum.Verified != uint64(len(want))-1 {
		// want counts hard as a file of its own; it is a link.
		t.Errorf("last run: %+v; want most small files unchanged, big written, every file verified", sum)
	}
	sameTree(t, src, restored)
}

// sameTree fails unless below got is what is below want: the same
// entries, types, modes, modification times, contents, link targets and
// hard links.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	inodes := map[uint64]uint64{} // want's inode → got's
	n := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		rel, _ := filepath.Rel(want, p)
		q := filepath.Join(got, rel)
		w, g := lstatT(t, p), lstatT(t, q)
		if w.Mode != g.Mode {
			t.Errorf("%s: mode %o, want %o", rel, g.Mode, w.Mode)
		}
		if w.Mtim != g.Mtim {
			t.Errorf("%s: mtime %v, want %v", rel, g.Mtim, w.Mtim)
		}
		switch {
		case d.Type().IsRegular():
			if fileHash(t, p) != fileHash(t, q) {
				t.Errorf("%s: content differs", rel)
			}
			if w.Nlink > 1 {
				if ino, ok := inodes[w.Ino]; ok && ino != g.Ino {
					t.Errorf("%s: not a hard link of its sibling", rel)
				}
				inodes[w.Ino] = g.Ino
			}
		case d.Type()&fs.ModeSymlink != 0:
			wl, _ := os.Readlink(p)
			gl, _ := os.Readlink(q)
			if wl != gl {
				t.Errorf("%s: link to %q, want %q", rel, gl, wl)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := 0
	filepath.WalkDir(got, func(string, fs.DirEntry, error) error { m++; return nil })
	if m != n {
		t.Errorf("%d entries restored, want %d", m, n)
	}
}

// TestRestoreOverwriteTypes: what restore does with objects of another
// type in the way, with the real binary. A directory where the snapshot
// has a file is never replaced (a warning, exit 3); a symlink there is
// replaced, not written through; --overwrite never keeps both and says
// how many it kept.
func TestRestoreOverwriteTypes(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		writeRandom(t, filepath.Join(src, n), 5000)
	}
	e.ok("init")
	e.ok("backup", src)
	outside := filepath.Join(t.TempDir(), "outside")
	writeRandom(t, outside, 10)
	before := fileHash(t, outside)
	target := filepath.Join(t.TempDir(), "target")
	restored := filepath.Join(target, src)
	if err := os.MkdirAll(filepath.Join(restored, "a", "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(restored, "b")); err != nil {
		t.Fatal(err)
	}

	r := e.run("restore", "latest", "--target", target, "--overwrite", "never")
	if r.code != 0 || !strings.Contains(r.stdout, "1 files") || !strings.Contains(r.stdout, "2 existing kept (--overwrite never)") {
		t.Fatalf("--overwrite never: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.run("restore", "latest", "--target", target)
	expectExit(t, r, 3, "a: exists and is a directory; not replaced by a file")
	if fi, err := os.Lstat(filepath.Join(restored, "a", "inside")); err != nil || !fi.IsDir() {
		t.Errorf("the directory in the way was touched: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(restored, "b")); err != nil || !fi.Mode().IsRegular() || fileHash(t, filepath.Join(restored, "b")) != fileHash(t, filepath.Join(src, "b")) {
		t.Errorf("the symlink in the way was not replaced by the file: %v", err)
	}
	if fileHash(t, outside) != before {
		t.Error("the restore wrote through a symlink")
	}
	r = e.run("restore", "latest", "--target", target, "--overwrite", "sometimes")
	expectExit(t, r, 1, `unknown --overwrite "sometimes"`)
}

// TestRestoreLostContent: a file whose pack is gone from the repository is
// reported and written as zeros of its size, every other file is restored,
// and the exit code is 3; a rerun does the same, not worse.
func TestRestoreLostContent(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "lost"), 300<<10)
	e.ok("init")
	e.ok("backup", src)
	packs := func() map[string]bool {
		m := map[string]bool{}
		filepath.WalkDir(filepath.Join(e.repo, "data"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				m[p] = true
			}
			return nil
		})
		return m
	}
	first := packs()
	writeRandom(t, filepath.Join(src, "kept"), 200<<10)
	e.ok("backup", src)
	for p := range first {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(t.TempDir(), "target")
	restored := filepath.Join(target, src)
	for range 2 {
		r := e.run("restore", "latest", "--target", target, "--verify")
		expectExit(t, r, 3, "lost: content lost: 307200 bytes from offset 0 are zeros (blob ")
		if fileHash(t, filepath.Join(restored, "kept")) != fileHash(t, filepath.Join(src, "kept")) {
			t.Fatal("the readable file was not restored")
		}
		if fileHash(t, filepath.Join(restored, "lost")) != sha256.Sum256(make([]byte, 300<<10)) {
			t.Fatal("the lost file is not zeros of its size")
		}
		if !strings.Contains(r.stdout, "1 verified") {
			t.Errorf("summary: %s", r.stdout)
		}
	}
}
