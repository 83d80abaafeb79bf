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

// TestKillMidBackup SIGKILLs a backup of ~200 MiB after a second; the next
// backup completes, check is clean and the restore matches.
func TestKillMidBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MiB")
	}
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	for i := range 20 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), 10<<20)
	}
	e.ok("init")
	cmd := e.command(nil, "backup", src)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil {
		t.Log("backup finished within a second; the kill tested nothing this time")
	}
	if n := len(e.snapshots()); n != 0 && err != nil {
		t.Fatalf("a killed backup left %d snapshots", n)
	}
	var packs int
	filepath.Walk(filepath.Join(e.repo, "data"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			packs++
		}
		return nil
	})
	t.Logf("the killed backup left %d packs", packs)
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

// TestInterrupt: SIGINT cancels a backup cleanly with exit 130 and no snapshot.
func TestInterrupt(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	for i := range 8 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d", i)), 16<<20)
	}
	e.ok("init")
	cmd := e.command(nil, "backup", src)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Skipf("backup finished before the signal (%v)", err)
	}
	if ee.ExitCode() != 130 || !strings.HasPrefix(stderr.String(), "cairn: interrupted") {
		t.Fatalf("exit %d, stderr %q; want 130 and \"cairn: interrupted\"", ee.ExitCode(), stderr.String())
	}
	if n := len(e.snapshots()); n != 0 {
		t.Errorf("an interrupted backup left %d snapshots", n)
	}
	e.ok("check")
}
