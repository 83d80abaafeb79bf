//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentValidate: `cairn agent validate` summarises a valid file with
// its next run, and lists every problem of a bad one by line and key.
func TestAgentValidate(t *testing.T) {
	e := newEnv(t)
	good := filepath.Join(e.dir, "agent.yaml")
	if err := os.WriteFile(good, []byte(`repository: rest:https://backup.example:8443/web1/main
server_fingerprint: SHA256:1afb-b5df-1fde-2c19-60a5-a189-6b98-d71a
client_password_file: /etc/cairn/client.password
key_file: /etc/cairn/writer.key
password_file: /etc/cairn/writer.password
paths: [/etc, /home]
schedule: {at: "weekly sun 03:30", time_zone: America/New_York, jitter: 5m}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.ok("agent", "validate", "--config", good)
	for _, want := range []string{"is valid", "paths:       /etc, /home", "weekly sun 03:30 (America/New_York); next run ", " 03:30 E", "plus up to 5m0s", "5 attempts, 10m0s apart"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	bad := filepath.Join(e.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("repository: relative/dir\nkey_file: /k\npassword_file: /p\nschedule:\n  at: daily 4pm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("agent", "validate", "--config", bad)
	expectExit(t, r, 1, "bad.yaml line 1: repository: want rest:URL")
	if !strings.Contains(r.stderr, "bad.yaml line 5: schedule.at:") {
		t.Errorf("the second problem is not reported:\n%s", r.stderr)
	}
	r = e.run("agent", "validate", "--config", filepath.Join(e.dir, "missing.yaml"))
	expectExit(t, r, 1, "no such file")
}

// TestAgentInstall: `cairn agent install` writes the timer and service
// (or the daemon's service) for this executable and configuration, and
// says plainly when it enables nothing.
func TestAgentInstall(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(e.dir, "agent.yaml")
	os.WriteFile(cfg, []byte("repository: /srv/repo\nkey_file: /k\npassword_file: /p\nschedule: {at: weekly sun 03:30, time_zone: UTC, jitter: 10m}\n"), 0o600)
	units := filepath.Join(e.dir, "units")
	r := e.ok("agent", "install", "--config", cfg, "--unit-dir", units, "--no-enable")
	if !strings.Contains(r.stdout, "not enabled (--no-enable)") || !strings.Contains(r.stdout, "wrote "+filepath.Join(units, "cairn-agent.timer")) {
		t.Fatalf("install output:\n%s", r.stdout)
	}
	svc, _ := os.ReadFile(filepath.Join(units, "cairn-agent.service"))
	timer, _ := os.ReadFile(filepath.Join(units, "cairn-agent.timer"))
	exe, _ := filepath.EvalSymlinks(cairnBin)
	for _, want := range []string{"ExecStart=" + exe + " agent once --config " + cfg + "\n", "AmbientCapabilities=CAP_DAC_READ_SEARCH\n", "DynamicUser=yes\n"} {
		if !strings.Contains(string(svc), want) {
			t.Errorf("service lacks %q:\n%s", want, svc)
		}
	}
	if !strings.Contains(string(timer), "OnCalendar=Sun *-*-* 03:30:00 UTC\n") || !strings.Contains(string(timer), "RandomizedDelaySec=600\n") {
		t.Errorf("timer:\n%s", timer)
	}

	daemon := filepath.Join(e.dir, "daemon-units")
	r = e.ok("agent", "install", "--config", cfg, "--unit-dir", daemon, "--daemon", "--user", "backup")
	if _, err := os.Stat("/run/systemd/system"); err != nil && !strings.Contains(r.stdout, "not enabled: this machine was not booted with systemd") {
		t.Errorf("no word that nothing was enabled:\n%s", r.stdout)
	}
	svc, _ = os.ReadFile(filepath.Join(daemon, "cairn-agent.service"))
	if !strings.Contains(string(svc), " agent run --config ") || !strings.Contains(string(svc), "User=backup\n") {
		t.Errorf("daemon service:\n%s", svc)
	}
	if _, err := os.Stat(filepath.Join(daemon, "cairn-agent.timer")); err == nil {
		t.Error("a timer for the daemon")
	}

	os.WriteFile(cfg, []byte("repository: /srv/repo\nkey_file: /k\npassword_file: /p\nschedule: {at: every 6h}\n"), 0o600)
	r = e.run("agent", "install", "--config", cfg, "--unit-dir", filepath.Join(e.dir, "u3"), "--no-enable")
	expectExit(t, r, 1, "--daemon")
}
