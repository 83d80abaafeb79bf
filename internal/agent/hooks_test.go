package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func hook(run string, timeout time.Duration) Hook { return Hook{Run: run, TimeoutDur: timeout} }

func TestHooksRunInOrderWithEnvironment(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	var log bytes.Buffer
	err := RunHooks(context.Background(), Before, []Hook{
		hook(`echo "one $CAIRN_HOOK $CAIRN_REPO" >> `+out, time.Minute),
		hook(`echo two >> `+out+`; echo to-the-log`, time.Minute),
	}, []string{"CAIRN_REPO=/r"}, &log, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "one before /r\ntwo\n" {
		t.Fatalf("hooks wrote %q", b)
	}
	if log.String() != "before hook 2: to-the-log\n" {
		t.Fatalf("log: %q", log.String())
	}
}

func TestFailingHookStopsBeforePhaseAndQuotesOutput(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	err := RunHooks(context.Background(), Before, []Hook{
		hook(`echo "database is locked" >&2; exit 7`, time.Minute),
		hook(`touch `+marker, time.Minute),
	}, nil, nil, true)
	var he *HookError
	if !errors.As(err, &he) || he.ExitCode != 7 || he.Index != 0 || !strings.Contains(err.Error(), "database is locked") {
		t.Fatalf("error: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a before hook ran after one failed")
	}
	// After hooks all run, and all failures are reported.
	err = RunHooks(context.Background(), After, []Hook{
		hook(`exit 1`, time.Minute),
		hook(`touch `+marker, time.Minute),
		hook(`exit 2`, time.Minute),
	}, nil, nil, false)
	if err == nil || !strings.Contains(err.Error(), "after hook 1") || !strings.Contains(err.Error(), "after hook 3 (exit 2) exited with status 2") {
		t.Fatalf("after errors: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("an after hook was skipped because an earlier one failed")
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// A hook over its timeout is stopped with its whole process group: a
// child it started in the background does not outlive it.
func TestHookTimeoutKillsTheGroup(t *testing.T) {
	defer func(g time.Duration) { hookGrace = g }(hookGrace)
	hookGrace = 200 * time.Millisecond
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pid")
	// The shell ignores SIGTERM, so only the group kill ends it.
	err := RunHooks(context.Background(), Before, []Hook{
		hook(`trap '' TERM; sleep 300 & echo $! > `+pidfile+`; wait`, 300*time.Millisecond),
	}, nil, nil, true)
	var he *HookError
	if !errors.As(err, &he) || !he.TimedOut || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error: %v", err)
	}
	b, rerr := os.ReadFile(pidfile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// SIGKILL is delivered asynchronously: give the kernel a moment.
	for deadline := time.Now().Add(10 * time.Second); pid != 0 && alive(pid) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 || alive(pid) {
		t.Fatalf("the hook's background child %d outlived it", pid)
	}
}

func TestCancelledHookReportsCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := RunHooks(ctx, Before, []Hook{hook(`sleep 300`, time.Hour)}, nil, nil, true)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error: %v", err)
	}
}

func TestHookOutputKeepsTheTail(t *testing.T) {
	var log bytes.Buffer
	err := RunHooks(context.Background(), OnError, []Hook{
		hook(`i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; exit 1`, time.Minute),
	}, nil, &log, true)
	var he *HookError
	if !errors.As(err, &he) || len(he.Tail) > outputTail || !strings.HasSuffix(strings.TrimSpace(he.Tail), "line 2999") {
		t.Fatalf("tail (%d bytes): %q…", len(he.Tail), he.Tail[:min(40, len(he.Tail))])
	}
	if n := strings.Count(log.String(), "\n"); n != 3000 {
		t.Fatalf("log has %d lines, want 3000", n)
	}
}
