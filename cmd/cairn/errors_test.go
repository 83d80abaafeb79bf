package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestBackupWithServerKeyExits11(t *testing.T) {
	c := newCLI(t)
	c.ok("init")
	pw := filepath.Join(c.dir, "spw")
	os.WriteFile(pw, []byte("server secret\n"), 0o600)
	key := filepath.Join(c.dir, "server.key")
	c.ok("key", "add", "--role", "server", "--export", key, "--new-password-file", pw)
	c.fails(exitNeedsKey, "backing up needs the owner key or a writer key; this is a server key", "--key-file", key, "-p", pw, "backup", pw)
}

func TestResticRepositoryIsNamed(t *testing.T) {
	if _, err := exec.LookPath("restic"); err != nil {
		t.Skip("no restic on PATH")
	}
	c := newCLI(t)
	cmd := exec.Command("restic", "init", "-r", c.repo)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=correct horse", "HOME="+c.dir, "RESTIC_CACHE_DIR="+filepath.Join(c.dir, "rcache"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restic init: %v\n%s", err, out)
	}
	c.fails(exitNoRepository, "it is a restic repository; use restic with it", "snapshots")
}
