//go:build linux

package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// setupClient runs `cairn setup-client` for alice against s with the
// agent's files under dir/etc, backing up src, and returns the
// configuration's and the owner key's paths.
func setupClient(t *testing.T, s *serverEnv, src string, extra ...string) (cfg, ownerKey string) {
	t.Helper()
	etc := filepath.Join(s.dir, "etc", "cairn")
	cfg = filepath.Join(etc, "agent.yaml")
	ownerKey = filepath.Join(s.dir, "owner.key")
	ownerPW := filepath.Join(s.dir, "owner.pass")
	os.WriteFile(ownerPW, []byte("owner passphrase words\n"), 0o600)
	args := append([]string{"setup-client", "--server", "http://" + s.addr, "--server-fingerprint", s.fingerprint(t),
		"--client", "alice", "--client-password-file", filepath.Join(s.dir, "alice.pass"), "--password-file", ownerPW,
		"--owner-key-file", ownerKey, "--paths", src, "--config", cfg, "--no-install"}, extra...)
	r := s.run(args...)
	if r.code != 0 {
		t.Fatalf("setup-client: exit %d\nstdout: %s\nstderr: %s\nserver log: %s", r.code, r.stdout, r.stderr, s.log())
	}
	for _, want := range []string{"owner key: " + ownerKey, "Copy it somewhere safe", "not installed (--no-install)", "Snapshot ", "saved"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("setup-client output lacks %q:\n%s", want, r.stdout)
		}
	}
	return cfg, ownerKey
}

// ownerRun runs cairn as the owner with the owner key file.
func ownerRun(s *serverEnv, ownerKey string, args ...string) result {
	pw := filepath.Join(s.dir, "owner.pass")
	return s.runWith(map[string]string{"CAIRN_PASSWORD_FILE": pw, "CAIRN_REPOSITORY": s.url("alice", "main"), "XDG_CACHE_HOME": filepath.Join(s.dir, "owner-cache")},
		append([]string{"--key-file", ownerKey}, args...)...)
}

// TestSetupClientToFirstSnapshot: from nothing to a first snapshot with
// one command against a real server; `agent once` then makes a second,
// and the owner key restores it.
func TestSetupClientToFirstSnapshot(t *testing.T) {
	s := startCairnServer(t)
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 1<<20)

	// A wrong fingerprint stores nothing and writes nothing.
	r := s.run("setup-client", "--server", "http://"+s.addr, "--server-fingerprint", "SHA256:0000-0000-0000-0000-0000-0000-0000-0000",
		"--client", "alice", "--client-password-file", filepath.Join(s.dir, "alice.pass"), "--password-file", filepath.Join(s.dir, "alice.pass"),
		"--config", filepath.Join(s.dir, "etc", "cairn", "agent.yaml"), "--no-install", "--owner-key-file", filepath.Join(s.dir, "owner.key"))
	if r.code == 0 || !strings.Contains(r.stderr, "fingerprint") {
		t.Fatalf("wrong fingerprint: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(s.data, "repos", "alice", "main", "config")); err == nil {
		t.Fatal("a wrong fingerprint created the repository")
	}

	cfg, ownerKey := setupClient(t, s, src)
	fi, err := os.Stat(cfg)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config: %v %v", fi.Mode(), err)
	}
	body, _ := os.ReadFile(cfg)
	if strings.Contains(string(body), "alice-secret-pw") {
		t.Error("the config holds the client password")
	}
	keys, _ := os.ReadDir(filepath.Join(s.data, "repos", "alice", "main", "keys"))
	if len(keys) != 0 {
		t.Errorf("%d key files on the server", len(keys))
	}
	s.ok("agent", "validate", "--config", cfg)

	writeRandom(t, filepath.Join(src, "b"), 300000)
	r = s.run("agent", "once", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stderr, "run succeeded") {
		t.Fatalf("agent once: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = ownerRun(s, ownerKey, "snapshots", "--json")
	if r.code != 0 || strings.Count(r.stdout, `"id"`) != 2 {
		t.Fatalf("owner snapshots: %d %s %s", r.code, r.stdout, r.stderr)
	}
	target := filepath.Join(s.dir, "restore")
	if r := ownerRun(s, ownerKey, "restore", "latest", "--target", target); r.code != 0 {
		t.Fatalf("restore: %s", r.stderr)
	}
	for _, f := range []string{"a", "b"} {
		if fileHash(t, filepath.Join(src, f)) != fileHash(t, filepath.Join(target, src, f)) {
			t.Errorf("restored %s differs", f)
		}
	}

	// Another server (or one whose key changed) behind the address: the
	// agent backs nothing up.
	body, _ = os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(body), s.fingerprint(t), "SHA256:0000-0000-0000-0000-0000-0000-0000-0000", 1)), 0o600)
	r = s.run("agent", "once", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "fingerprint mismatch") || !strings.Contains(r.stderr, "nothing was backed up") {
		t.Fatalf("agent once with a wrong fingerprint: exit %d\n%s", r.code, r.stderr)
	}
	if r := ownerRun(s, ownerKey, "snapshots", "--json"); strings.Count(r.stdout, `"id"`) != 2 {
		t.Fatalf("a snapshot was made despite the wrong fingerprint: %s", r.stdout)
	}
	os.WriteFile(cfg, body, 0o600)

	// Run again on the same directory: refused, nothing overwritten.
	r = s.run("setup-client", "--server", "http://"+s.addr, "--server-fingerprint", s.fingerprint(t), "--client", "alice",
		"--client-password-file", filepath.Join(s.dir, "alice.pass"), "--password-file", filepath.Join(s.dir, "owner.pass"), "--config", cfg, "--no-install")
	expectExit(t, r, 1, "exists; nothing was done")
}

// TestAgentDaemonOnInjectedClock: `cairn agent run` on the virtual clock
// of the test hook runs a "daily 04:00" schedule with 30m jitter: each
// run starts inside 04:00-04:30 of a new day, each makes a snapshot, and
// SIGTERM stops it cleanly.
func TestAgentDaemonOnInjectedClock(t *testing.T) {
	s := startCairnServer(t)
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 100000)
	cfg, ownerKey := setupClient(t, s, src)
	body, _ := os.ReadFile(cfg)
	body = []byte(strings.NewReplacer(`at: "daily 03:00"`, `at: "daily 04:00"`, "jitter: 30m0s", "jitter: 30m\n  time_zone: UTC").Replace(string(body)))
	os.WriteFile(cfg, body, 0o600)

	cmd := s.command(map[string]string{"CAIRN_AGENT_TEST_CLOCK": "2026-05-01T12:00:00Z"}, "agent", "run", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var runs []time.Time
	var log []string
	succeeded := 0
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		log = append(log, line)
		if strings.Contains(line, "cairn agent: run started") {
			at, err := time.Parse(time.RFC3339, strings.Fields(line)[0])
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, at)
		}
		if strings.Contains(line, "run succeeded") {
			// The virtual clock does not wait: the next run may start
			// before the signal lands, and is then stopped.
			if succeeded++; succeeded == 3 {
				cmd.Process.Signal(syscall.SIGTERM)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent run after SIGTERM: %v\n%s", err, strings.Join(log, "\n"))
	}
	if succeeded != 3 || len(runs) > 4 {
		t.Fatalf("%d runs:\n%s", len(runs), strings.Join(log, "\n"))
	}
	for i, at := range runs {
		day := time.Date(2026, 5, 2+i, 4, 0, 0, 0, time.UTC)
		if off := at.Sub(day); off < 0 || off >= 30*time.Minute {
			t.Errorf("run %d at %s: not inside 04:00-04:30 of %s", i, at, day.Format("2006-01-02"))
		}
	}
	r := ownerRun(s, ownerKey, "snapshots", "--json")
	if n := strings.Count(r.stdout, `"id"`); n != 1+succeeded {
		t.Errorf("%d snapshots, want 4 (setup's and three runs)", n)
	}
}
