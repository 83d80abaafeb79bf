//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
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

// agentPoll asks the server as alice whether a run is asked of her agent.
func (s *serverEnv) agentPoll(t *testing.T) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/alice/?agent-poll", nil)
	req.SetBasicAuth("alice", "alice-secret-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var a struct {
		RunNow bool `json:"run_now"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil {
		t.Fatalf("agent poll: %s %s", resp.Status, body)
	}
	return a.RunNow
}

// TestAgentRunNow: a daemon agent whose next slot is hours away runs its
// job when `cairn server client run-now` asks, reports the run, and the
// report clears the request; the schedule goes on.
func TestAgentRunNow(t *testing.T) {
	s := startCairnServer(t)
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 10000)
	cfg, _ := setupClient(t, s, src)
	before := s.status(t).client(t, "alice")
	if before.Snapshots != 1 || before.AgentRun == nil {
		t.Fatalf("after setup-client: %+v", before)
	}
	// The next slot is 12 hours away, on the machine's clock.
	at := time.Now().UTC().Add(12 * time.Hour).Format("15:04")
	b, _ := os.ReadFile(cfg)
	conf := regexp.MustCompile(`(?m)^schedule:\n(  .*\n)*`).ReplaceAllString(string(b), fmt.Sprintf("schedule:\n  at: daily %s\n  time_zone: UTC\n  jitter: 0s\n", at))
	if !strings.Contains(conf, "daily "+at) {
		t.Fatalf("config not rewritten:\n%s", conf)
	}
	os.WriteFile(cfg, []byte(conf), 0o600)

	r := s.run("server", "client", "run-now", "nobody")
	expectExit(t, r, 1, "nobody")

	cmd := s.command(nil, "agent", "run", "--config", cfg, "--poll", "200ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	waitFor := func(what string) {
		t.Helper()
		timeout := time.After(2 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("agent exited before %q:\n%s", what, strings.Join(log, "\n"))
				}
				log = append(log, l)
				if strings.Contains(l, what) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q from the agent:\n%s", what, strings.Join(log, "\n"))
			}
		}
	}
	waitFor("next run at " + time.Now().UTC().Add(12*time.Hour).Format("2006-01-02T15:04"))
	if s.agentPoll(t) {
		t.Fatal("a run is asked for before anyone asked")
	}

	out := s.ok("server", "client", "run-now", "alice").stdout
	if !strings.Contains(out, "asked alice's agent to run now") {
		t.Errorf("run-now output: %s", out)
	}
	if !s.agentPoll(t) {
		t.Fatal("the poll does not show the request")
	}
	showRunNow := func() (text, asked string) {
		t.Helper()
		var m struct {
			RunNow string `json:"run_now_requested"`
		}
		lastJSON(t, s.ok("server", "client", "show", "alice", "--json").stdout, &m)
		return s.ok("server", "client", "show", "alice").stdout, m.RunNow
	}
	if text, asked := showRunNow(); !strings.Contains(text, "run now:") || !strings.Contains(text, "asked at "+time.Now().Format("2006-01-02")) ||
		!strings.Contains(text, "pending until the agent's next run report") || asked == "" {
		t.Errorf("client show does not show the pending request (json %q):\n%s", asked, text)
	} else if at, err := time.Parse(time.RFC3339, asked); err != nil || time.Since(at) > time.Hour || time.Since(at) < -time.Minute {
		t.Errorf("client show --json run_now_requested %q: %v", asked, err)
	}
	waitFor("the server asks for a run now")
	waitFor("run succeeded")
	waitFor("next run at") // the schedule goes on, a run later
	after := s.status(t).client(t, "alice")
	if after.Snapshots != 2 || after.AgentRun == nil || after.AgentRun.Result != "ok" || after.AgentRun.RunID == before.AgentRun.RunID {
		t.Fatalf("after run-now: %d snapshots, last run %+v (before %+v)", after.Snapshots, after.AgentRun, before.AgentRun)
	}
	if s.agentPoll(t) {
		t.Error("the run report did not clear the request")
	}
	if text, asked := showRunNow(); !strings.Contains(text, "run now:") || !strings.Contains(text, "none asked") || asked != "" {
		t.Errorf("client show after the run report (json %q):\n%s", asked, text)
	}
	for _, l := range log {
		if strings.Contains(l, "run started (attempt 2") {
			t.Errorf("a second attempt ran: %s", l)
		}
	}
}
