//go:build linux

package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestoreConcurrentRefused: a restore holds a lock on its target for
// its whole run, so a second restore into the same target is refused
// (exit 1, naming the target) instead of removing the first one's
// temporary files as an interrupted run's. The first restore is held
// mid-run on a pack that is a FIFO: the test knows it is running once it
// holds the lock (it cannot finish before the test writes to the FIFO).
func TestRestoreConcurrentRefused(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "big"), 3<<20)
	writeRandom(t, filepath.Join(src, "small"), 1000)
	e.ok("init")
	e.ok("backup", src)

	// The largest pack holds big's content: a FIFO takes its place.
	var pack string
	var size int64
	filepath.WalkDir(filepath.Join(e.repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil && fi.Size() > size {
				pack, size = p, fi.Size()
			}
		}
		return nil
	})
	if size < 3<<20 {
		t.Fatalf("no data pack of big's size: %s %d", pack, size)
	}
	if err := os.Rename(pack, pack+".aside"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(pack, 0o600); err != nil {
		t.Fatal(err)
	}

	target := filepath.Join(t.TempDir(), "target")
	first := e.command(nil, "restore", "latest", "--target", target)
	var stderr strings.Builder
	first.Stderr = &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	// The restore blocks opening the FIFO until a writer opens it, so
	// once it holds the lock on the target it keeps it. Wait for that
	// (/proc/locks lists it; trying a lock of our own could refuse the
	// restore).
	deadline := time.Now().Add(2 * time.Minute)
	for locked := false; !locked; {
		select {
		case err := <-exited:
			t.Fatalf("the first restore ended before reading the pack: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the first restore did not lock its target")
		}
		locked = holdsFlock(t, first.Process.Pid, target)
	}

	r := e.run("restore", "latest", "--target", target)
	expectExit(t, r, 1, "another restore is writing into this directory")
	if !strings.Contains(r.stderr, target) || !strings.Contains(r.stderr, "another --target") {
		t.Fatalf("the refusal does not name the target and what to do: %s", r.stderr)
	}

	// The first restore finds no pack in the FIFO and ends; the pack back
	// in place, a restore into the target finishes the job.
	w, err := os.OpenFile(pack, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	<-exited
	if err := os.Remove(pack); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pack+".aside", pack); err != nil {
		t.Fatal(err)
	}
	e.ok("restore", "latest", "--target", target)
	want, got := contentHashes(t, src), contentHashes(t, filepath.Join(target, src))
	if len(got) != len(want) || got["big"] != want["big"] || got["small"] != want["small"] {
		t.Fatalf("restored %v, want %v", got, want)
	}
}

// holdsFlock reports whether process pid holds a flock on path, as
// /proc/locks lists it: "1: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF".
func holdsFlock(t *testing.T, pid int, path string) bool {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return false
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(locks), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[1] == "FLOCK" && f[4] == strconv.Itoa(pid) && strings.HasSuffix(f[5], ":"+strconv.FormatUint(st.Ino, 10)) {
			return true
		}
	}
	return false
}
