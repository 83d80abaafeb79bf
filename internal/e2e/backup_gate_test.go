//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// gatedBackup runs `cairn backup --commit-gate 3 PATH` with one end of a
// socket pair as descriptor 3, as a parent script would, and answers the
// gate's question with answer ("" closes the socket instead: the parent
// gone). It returns the question and the result.
func gatedBackup(t *testing.T, e *env, answer, path string) (map[string]any, result) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
	defer parent.Close()
	cmd := e.command(nil, "backup", "--commit-gate", "3", path)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.ExtraFiles = []*os.File{child}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	line, err := bufio.NewReader(parent).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no question from the gate: %v", err)
	}
	var q map[string]any
	if err := json.Unmarshal(line, &q); err != nil {
		t.Fatalf("question %q: %v", line, err)
	}
	if answer == "" {
		parent.Close()
	} else if _, err := parent.Write([]byte(answer + "\n")); err != nil {
		t.Fatal(err)
	}
	return q, exitResult(t, cmd.Wait(), out.String(), errb.String())
}

// TestBackupCommitGate: backup --commit-gate asks once everything is
// uploaded and commits only on "commit"; "abort", or the parent closing
// the socket (dying), commits nothing and exits 1 saying why. A run after
// an abort reuses what the aborted one uploaded.
func TestBackupCommitGate(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "data"), 3<<20)

	q, r := gatedBackup(t, e, "abort", src)
	if q["message_type"] != "commit_pending" || q["bytes_added"].(float64) < 3<<20 {
		t.Errorf("the gate's question: %v", q)
	}
	expectExit(t, r, 1, "not committed: the gate answered abort")
	if s := e.snapshots(); len(s) != 0 {
		t.Fatalf("an aborted backup committed %d snapshots", len(s))
	}

	_, r = gatedBackup(t, e, "", src)
	expectExit(t, r, 1, "the gate closed without an answer")
	if s := e.snapshots(); len(s) != 0 {
		t.Fatalf("a backup whose parent went away committed %d snapshots", len(s))
	}

	q, r = gatedBackup(t, e, "commit", src)
	if r.code != 0 {
		t.Fatalf("commit: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if q["bytes_added"].(float64) >= 1<<20 {
		t.Errorf("the backup after the aborted ones uploaded the data again: %v", q)
	}
	if s := e.snapshots(); len(s) != 1 || s[0].Paths[0] != src {
		t.Fatalf("snapshots after commit: %+v", s)
	}

	r = e.run("backup", "--commit-gate", "1", src)
	expectExit(t, r, 1, "--commit-gate 1: give a descriptor above 2")
	r = e.run("backup", "--commit-gate", "9", src)
	expectExit(t, r, 1, "--commit-gate 9: not an open descriptor")
}
