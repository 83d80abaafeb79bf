//go:build linux

package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// rulesDir is deploy/prometheus, where the shipped alerting rules live.
func rulesDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "prometheus")
}

// TestPrometheusRules has Prometheus's own rule engine (promtool, which
// .ci/run installs) evaluate the shipped rules on the made-up series of
// cairn-rules.test.yml, and checks that every cairn metric the rules name
// is one a real server exports.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed; .ci/run installs it")
		}
		t.Skip("promtool not installed (`go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0`)")
	}
	dir := rulesDir(t)
	cmd := exec.Command(promtool, "test", "rules", "cairn-rules.test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	cmd = exec.Command(promtool, "check", "rules", "cairn-rules.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	// A server with a client that has a quota, a space budget and an audit exports
	// every per-client series the rules use.
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.ok("server", "init")
	pw := filepath.Join(e.dir, "alice.pass")
	if err := os.WriteFile(pw, []byte("alice-secret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("server", "client", "add", "alice", "--password-file", pw, "--quota", "1GiB")
	e.ok("server", "client", "policy", "alice", "--max-size", "500MiB")
	e.ok("server", "notify", "add", "ops", "--webhook", "http://127.0.0.1:9/hook")
	e.ok("server", "audit") // the audit series exist once a client was audited
	s.start(t)
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	rules, err := os.ReadFile(filepath.Join(dir, "cairn-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`cairn_[a-z_]+`).FindAllString(string(rules), -1)
	if len(names) < 3 {
		t.Fatalf("the rules name only %v", names)
	}
	for _, n := range names {
		if !strings.Contains(string(body), "\n"+n+"{") {
			t.Errorf("the rules use %s, which the server does not export", n)
		}
	}
}
