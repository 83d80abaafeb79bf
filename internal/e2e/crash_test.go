//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillMidBackup SIGKILLs a backup of 64 MiB once its first packs are
// stored (at least two more are still to come); the next backup
// completes, check is clean and the restore matches.
func TestKillMidBackup(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	for i := range 8 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), 8<<20)
	}
	e.ok("init")
	cmd := e.command(nil, "backup", src)
	signalWhen(t, cmd, syscall.SIGKILL, "a pack is stored", func() bool { return packCount(t, e.repo) > 0 })
	if n := len(e.snapshots()); n != 0 {
		t.Fatalf("a killed backup left %d snapshots", n)
	}
	t.Logf("the killed backup left %d packs", packCount(t, e.repo))
	e.ok("backup", src)
	if out := e.ok("check", "--read-data").stdout; !strings.Contains(out, "no problems found") {
		t.Fatalf("check after a killed backup: %s", out)
	}
	target := filepath.Join(e.dir, "restore")
	e.ok("restore", "latest", "--target", target)
	want, got := contentHashes(t, src), contentHashes(t, filepath.Join(target, src))
	if len(got) != len(want) {
		t.Fatalf("restored %d files, want %d", len(got), len(want))
	}
	for k, h := range want {
		if got[k] != h {
			t.Errorf("%s differs after restore", k)
		}
	}
}

// signalWhen starts cmd, sends it sig as soon as cond holds and waits for
// it to die of the signal. It fails the test if cmd exits first: a
// test whose signal came too late tested nothing. cond is polled every
// few milliseconds, so it should be cheap (a directory listing).
func signalWhen(t *testing.T, cmd *exec.Cmd, sig syscall.Signal, what string, cond func() bool) *exec.ExitError {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(2 * time.Minute)
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("%v exited (%v) before %s: the signal would have come too late", cmd.Args[1:], err, what)
		case <-timeout:
			cmd.Process.Kill()
			<-done
			t.Fatalf("%v: not %s within 2 minutes", cmd.Args[1:], what)
		case <-tick.C:
		}
	}
	cmd.Process.Signal(sig)
	err := <-done
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("%v finished (%v) before %s reached it", cmd.Args[1:], err, sig)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); sig == syscall.SIGKILL && !(ok && ws.Signaled() && ws.Signal() == sig) {
		t.Fatalf("%v ended with %v, not by %v", cmd.Args[1:], err, sig)
	}
	return ee
}

// TestInterrupt: SIGINT, sent once a pack is stored, cancels a backup
// cleanly with exit 130 and no snapshot.
func TestInterrupt(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	for i := range 8 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d", i)), 8<<20)
	}
	e.ok("init")
	cmd := e.command(nil, "backup", src)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	ee := signalWhen(t, cmd, syscall.SIGINT, "a pack is stored", func() bool { return packCount(t, e.repo) > 0 })
	if ee.ExitCode() != 130 || !strings.HasPrefix(stderr.String(), "cairn: interrupted") {
		t.Fatalf("exit %d, stderr %q; want 130 and \"cairn: interrupted\"", ee.ExitCode(), stderr.String())
	}
	if n := len(e.snapshots()); n != 0 {
		t.Errorf("an interrupted backup left %d snapshots", n)
	}
	e.ok("check")
}
