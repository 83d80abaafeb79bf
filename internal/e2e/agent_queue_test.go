//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgentQueuesBeforeHooks: against a server run with --max-backups 1
// whose one slot bob's backup holds, alice's agent waits in the queue
// before its before hook runs (the hook's file is not there while the
// server shows alice queued), runs the hook once it has the slot, and its
// backup uses that slot (backup --session) instead of queueing again: it
// finishes although the slot is still the agent's.
func TestAgentQueuesBeforeHooks(t *testing.T) {
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.ok("server", "init")
	for _, c := range []string{"alice", "bob"} {
		pw := filepath.Join(e.dir, c+".pass")
		os.WriteFile(pw, []byte(c+"-secret-pw\n"), 0o600)
		e.ok("server", "client", "add", c, "--password-file", pw)
	}
	s.start(t, "--max-backups", "1")
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 100000)
	cfg, _ := setupClient(t, s, src)
	hookRan := filepath.Join(e.dir, "hook-ran")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hooks:\n  before:\n    - run: touch " + hookRan + "\n")
	f.Close()

	// bob's backup holds the one slot until the test writes its data.
	bob := s.url("bob", "main")
	bobEnv := map[string]string{"CAIRN_PASSWORD_FILE": filepath.Join(e.dir, "bob.pass")}
	if r := s.runWith(bobEnv, "-r", bob, "init", "--server-fingerprint", s.fingerprint(t)); r.code != 0 {
		t.Fatalf("init bob: exit %d\n%s", r.code, r.stderr)
	}
	fifo := filepath.Join(e.dir, "bob.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	bobDone := make(chan struct{})
	var bobResult result
	go func() {
		defer close(bobDone)
		bobResult = s.runWith(bobEnv, "-r", bob, "backup", "--stdin-from-command", "--stdin-filename", "data", "--", "cat", fifo)
	}()
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for bob's cat
		if err != nil {
			t.Error(err)
			return
		}
		w.WriteString("bob's data\n")
		w.Close()
	}
	defer func() { release(); <-bobDone }()
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s never came; server log:\n%s", what, s.log())
			}
			time.Sleep(50 * time.Millisecond) // polling the server's state, not synchronising
		}
	}
	waitUntil("bob's backup running", func() bool { return s.gauge(t, "cairn_server_backups_running") == 1 })

	agentDone := make(chan result, 1)
	go func() { agentDone <- s.run("agent", "once", "--config", cfg) }()
	waitUntil("alice queued", func() bool {
		st := s.status(t).Backups
		return st != nil && slices.Contains(st.Queued, "alice")
	})
	if _, err := os.Stat(hookRan); err == nil {
		t.Fatal("the before hook ran while the agent waited in the server's queue")
	}
	select {
	case r := <-agentDone:
		t.Fatalf("the agent ended while queued: exit %d\n%s", r.code, r.stderr)
	default:
	}

	release()
	<-bobDone
	if bobResult.code != 0 {
		t.Fatalf("bob's backup: exit %d\n%s", bobResult.code, bobResult.stderr)
	}
	var r result
	select {
	case r = <-agentDone:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the agent's run did not finish: its backup queued behind the agent's own slot?\nserver log:\n%s", s.log())
	}
	if r.code != 0 {
		t.Fatalf("agent once: exit %d\n%s\n%s\nserver log:\n%s", r.code, r.stdout, r.stderr, s.log())
	}
	if _, err := os.Stat(hookRan); err != nil {
		t.Fatalf("the before hook did not run: %v", err)
	}
	if !strings.Contains(r.stderr, "waiting for a backup slot on the server before any hook") {
		t.Errorf("the agent does not say it waited for a slot:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "waiting for the server:") {
		t.Errorf("the agent's backup queued again:\n%s", r.stderr)
	}
	if n := s.status(t).client(t, "alice").Snapshots; n != 2 {
		t.Errorf("alice has %d snapshots, want 2", n)
	}
	if got := s.gauge(t, "cairn_server_backups_running"); got != 0 {
		t.Errorf("%d backup sessions still live after the run: the agent did not end its slot", got)
	}
}
