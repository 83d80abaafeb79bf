//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// agentRunJSON is a client's last reported agent run in status --json.
type agentRunJSON struct {
	RunID      string    `json:"run_id"`
	Attempt    int       `json:"attempt"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Result     string    `json:"result"`
	BytesAdded int64     `json:"bytes_added"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error"`
}

// TestAgentReportsFailedRun: an `agent once` whose before hook fails
// reports the run to its server; `server status` then shows the client
// as WARNING with the error, and a later successful run clears it.
func TestAgentReportsFailedRun(t *testing.T) {
	s := startCairnServer(t)
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 10000)
	cfg, _ := setupClient(t, s, src)
	good, _ := os.ReadFile(cfg)
	// setup-client's first snapshot is an agent run, reported too.
	if c := s.status(t).client(t, "alice"); c.Level != "OK" || c.AgentRun == nil || c.AgentRun.Result != "ok" {
		t.Fatalf("after setup-client: %+v", c)
	}

	bad := strings.Replace(string(good), "attempts: 5", "attempts: 1", 1) + "hooks:\n  before:\n    - run: 'echo disk not mounted >&2; exit 3'\n"
	os.WriteFile(cfg, []byte(bad), 0o600)
	r := s.run("agent", "once", "--config", cfg)
	if r.code != 1 || strings.Contains(r.stderr, "could not report") {
		t.Fatalf("failing agent once: exit %d\n%s\nserver log: %s", r.code, r.stderr, s.log())
	}
	c := s.status(t).client(t, "alice")
	if c.Level != "WARNING" || c.State != "WARNING" || !strings.Contains(c.Reason, "last agent run failed:") || c.AgentRun == nil {
		t.Fatalf("after a failed run: %+v", c)
	}
	if a := c.AgentRun; a.Result != "gave-up" || a.Attempt != 1 || !strings.Contains(a.Error, "before") || a.End.Before(a.Start) || a.RunID == "" {
		t.Errorf("last agent run: %+v", *a)
	}
	if text := s.ok("server", "status").stdout; !strings.Contains(text, "GAVE-UP") || !strings.Contains(text, "alice: last agent run gave-up") {
		t.Errorf("server status text lacks the failed run:\n%s", text)
	}

	os.WriteFile(cfg, good, 0o600)
	s.ok("agent", "once", "--config", cfg)
	c = s.status(t).client(t, "alice")
	if c.Level != "OK" || c.AgentRun == nil || c.AgentRun.Result != "ok" || c.AgentRun.Error != "" {
		t.Fatalf("after a successful run: %+v %+v", c, c.AgentRun)
	}
}
