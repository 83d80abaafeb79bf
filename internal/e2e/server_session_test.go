//go:build linux

package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// openSessions scrapes the server's gauge of bob's live backup sessions.
func (s *serverEnv) openSessions(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^cairn_server_client_open_sessions\{client="bob"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// TestBackupSessionThroughServer (R12): `cairn backup` to a rest:
// repository holds a backup session on the server while it runs, and its
// commit ends it.
func TestBackupSessionThroughServer(t *testing.T) {
	s := startCairnServer(t)
	repo := s.url("bob", "laptop")
	s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t))
	if got := s.openSessions(t); got != "0" {
		t.Fatalf("open sessions before the backup: %q", got)
	}

	// The backup reads its data from a FIFO, so it runs until we write.
	fifo := filepath.Join(s.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() {
		done <- s.run("-r", repo, "backup", "--stdin-from-command", "--stdin-filename", "data", "--", "cat", fifo)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for s.openSessions(t) != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("no open session while the backup runs; server log:\n%s", s.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(strings.Repeat("backup session data\n", 1000))
	f.Close()
	if r := <-done; r.code != 0 {
		t.Fatalf("backup: exit %d\n%s", r.code, r.stderr)
	}
	if got := s.openSessions(t); got != "0" {
		t.Fatalf("open sessions after the backup: %q", got)
	}
	log := s.log()
	opened := regexp.MustCompile(`backup session opened".*session=([0-9a-f]{32})`).FindStringSubmatch(log)
	if opened == nil {
		t.Fatalf("no session opened in the server log:\n%s", log)
	}
	if !regexp.MustCompile(`backup session ended".*session=` + opened[1] + ` note=committed`).MatchString(log) {
		t.Fatalf("session %s not ended by the commit; server log:\n%s", opened[1], log)
	}
}
