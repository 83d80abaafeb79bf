//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/minioserver"
)

// TestAgentBandwidthReachesBackup: the configuration's bandwidth becomes
// the backup child's --limit-upload and --limit-download. The dump
// command of a postgres recipe is a script that writes its parent's
// command line, and its parent is the child `cairn backup`: the snapshot
// holds what the child was started with.
func TestAgentBandwidthReachesBackup(t *testing.T) {
	e := newEnv(t)
	bin := filepath.Join(e.dir, "bin")
	os.MkdirAll(bin, 0o755)
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte("#!/bin/sh\ntr '\\0' ' ' < /proc/$PPID/cmdline\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := agentForLocalRepo(t, e, "bandwidth: 5MiB/s\ndatabases:\n  - type: postgres\n    databases: [app]\n")
	r := e.runWith(map[string]string{"PATH": bin + ":" + os.Getenv("PATH")}, "agent", "once", "--config", cfg)
	if r.code != 0 || strings.Contains(r.stderr, "not applied") {
		t.Fatalf("agent once: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	cmdline := string(dumpOf(t, e, "postgres", "postgres-app.sql"))
	if !strings.Contains(cmdline, " --limit-upload 5MiB/s --limit-download 5MiB/s backup ") || !strings.Contains(cmdline, "--stdin-from-command") {
		t.Fatalf("the backup child's command line: %q", cmdline)
	}
}

// TestLimitFlags: --limit-upload and --limit-download pace a backup to
// and a restore from a real server without changing what is stored; a
// rate without a unit is refused before anything is read.
func TestLimitFlags(t *testing.T) {
	s := startCairnServer(t)
	s.vars["CAIRN_REPOSITORY"] = s.url("alice", "main")
	s.ok("init", "--server-fingerprint", s.fingerprint(t))
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 3<<20)
	writeRandom(t, filepath.Join(src, "b"), 1000)
	s.ok("--limit-upload", "200MiB/s", "--limit-download", "200MiB/s", "backup", src)
	target := filepath.Join(s.dir, "target")
	s.ok("--limit-download", "200MiB/s", "restore", "latest", "--target", target)
	for _, f := range []string{"a", "b"} {
		want, _ := os.ReadFile(filepath.Join(src, f))
		got, err := os.ReadFile(filepath.Join(target, src, f))
		if err != nil || string(got) != string(want) {
			t.Fatalf("restored %s: %d bytes, %v; want %d bytes", f, len(got), err, len(want))
		}
	}
	r := s.run("--limit-upload", "1024", "backup", src)
	expectExit(t, r, 1, "--limit-upload: invalid rate \"1024\": give a unit")
}

// TestLimitFlagsS3: the limits wrap an s3: repository's transport as
// well: init, backup and restore through them against a real MinIO.
func TestLimitFlagsS3(t *testing.T) {
	minio := minioserver.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", minioserver.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", minioserver.SecretKey)
	e := newEnv(t)
	e.vars["CAIRN_REPOSITORY"] = "s3:" + minio.Endpoint() + "/limits/repo"
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 3<<20)
	lim := []string{"--limit-upload", "200MiB/s", "--limit-download", "200MiB/s"}
	e.ok(append(lim, "init")...)
	e.ok(append(lim, "backup", src)...)
	target := filepath.Join(e.dir, "target")
	e.ok(append(lim, "restore", "latest", "--target", target)...)
	if fileHash(t, filepath.Join(target, src, "a")) != fileHash(t, filepath.Join(src, "a")) {
		t.Fatal("restored file differs")
	}
}

// TestAgentReportsBytesAdded: the run report an agent sends carries what
// its backup stored, the figure of the backup's own summary.
func TestAgentReportsBytesAdded(t *testing.T) {
	s := startCairnServer(t)
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 10000)
	cfg, _ := setupClient(t, s, src)
	writeRandom(t, filepath.Join(src, "new"), 300000)
	r := s.ok("--json", "agent", "once", "--config", cfg)
	var sum struct {
		MessageType string `json:"message_type"`
		BytesAdded  int64  `json:"bytes_added"`
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m struct {
			MessageType string `json:"message_type"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.MessageType == "summary" {
			json.Unmarshal([]byte(line), &sum)
		}
	}
	if sum.MessageType != "summary" || sum.BytesAdded < 300000 {
		t.Fatalf("no summary of a backup adding 300000 bytes in the agent's output:\n%s", r.stdout)
	}
	c := s.status(t).client(t, "alice")
	if c.AgentRun == nil || c.AgentRun.Result != "ok" || c.AgentRun.BytesAdded != sum.BytesAdded {
		t.Fatalf("last agent run %+v; want bytes_added %d", c.AgentRun, sum.BytesAdded)
	}
}
