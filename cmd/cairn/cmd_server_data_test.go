package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serverCommands are the server subcommands that open the data
// directory, each with arguments that pass its own flag checks.
func serverCommands(dir string) [][]string {
	pw := filepath.Join(dir, "pw")
	return [][]string{
		{"fingerprint"},
		{"run", "--listen", "127.0.0.1:0"},
		{"status"},
		{"client", "list"},
		{"client", "show", "alice"},
		{"client", "add", "alice", "--password-file", pw},
		{"client", "set", "alice", "--quota", "1GiB"},
		{"client", "disable", "alice"},
		{"client", "enable", "alice"},
		{"client", "passwd", "alice", "--password-file", pw},
		{"client", "run-now", "alice"},
		{"client", "policy", "alice", "--keep-last", "1"},
		{"client", "remove", "alice"},
		{"notify", "list"},
		{"notify", "add", "ops", "--webhook", "http://127.0.0.1:1/hook"},
		{"notify", "test", "ops"},
		{"notify", "remove", "ops"},
		{"destination", "list"},
		{"destination", "add", "usb", "--location", filepath.Join(dir, "usb"), "--all"},
		{"destination", "set", "usb", "--keep-all"},
		{"destination", "show", "usb"},
		{"destination", "remove", "usb"},
		{"replication", "status"},
		{"admin", "list"},
		{"admin", "add", "ops", "--password-file", pw},
		{"admin", "remove", "ops"},
		{"audit"},
	}
}

// Every server subcommand opens the data directory the same way: without
// one it says how to give it, and a directory never initialised gets the
// hint to create it, before anything else happens.
func TestServerCommandsOpenTheDataDirectoryAlike(t *testing.T) {
	c := newCLI(t)
	if err := os.WriteFile(filepath.Join(c.dir, "pw"), []byte("a-long-enough-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(c.dir, "never-initialised")
	for _, args := range serverCommands(c.dir) {
		t.Setenv("CAIRN_SERVER_DATA", "")
		c.fails(1, "no data directory given; pass --data DIR or set CAIRN_SERVER_DATA", append([]string{"server"}, args...)...)
		c.fails(1, "create it with `cairn server init --data "+missing+"`", append([]string{"server", "--data", missing}, args...)...)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("a subcommand created the data directory it was refused")
	}
}

// The admin, client, policy, destination, replication and audit
// subcommands, in-process, on one data directory.
func TestServerManagementCommands(t *testing.T) {
	c := newServerCLI(t)
	write := func(name, s string) string {
		p := filepath.Join(c.dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	fp := strings.TrimSpace(c.ok("server", "fingerprint").stdout)
	var fj fingerprintJSON
	if err := json.Unmarshal([]byte(c.ok("--json", "server", "fingerprint").stdout), &fj); err != nil || fj.Fingerprint != fp || !strings.HasPrefix(fp, "SHA256:") {
		t.Fatalf("fingerprint %q, --json %+v %v", fp, fj, err)
	}

	c.ok("server", "admin", "add", "ops", "--password-file", write("ops.pass", "ops-password-123\n"))
	c.fails(1, "already exists", "server", "admin", "add", "ops", "--password-file", filepath.Join(c.dir, "ops.pass"))
	if out := c.ok("server", "admin", "list").stdout; !strings.Contains(out, "ops") {
		t.Fatalf("admin list:\n%s", out)
	}
	c.ok("server", "admin", "remove", "ops")
	c.fails(1, "no such admin", "server", "admin", "remove", "ops")
	if out := c.ok("server", "admin", "list").stdout; strings.Contains(out, "ops") {
		t.Fatalf("removed admin listed:\n%s", out)
	}

	if out := c.ok("server", "client", "passwd", "alice", "--password-file", write("new.pass", "another-secret-pw\n")).stdout; !strings.Contains(out, "password of client alice changed") {
		t.Fatalf("client passwd: %s", out)
	}
	c.ok("server", "client", "disable", "alice")
	if out := c.ok("server", "client", "list").stdout; !strings.Contains(out, "DISABLED") {
		t.Fatalf("client list after disable:\n%s", out)
	}
	c.ok("server", "client", "enable", "alice")
	if out := c.ok("server", "client", "list").stdout; !strings.Contains(out, "alice") || strings.Contains(out, "DISABLED") {
		t.Fatalf("client list after enable:\n%s", out)
	}
	if out := c.ok("server", "client", "run-now", "alice").stdout; !strings.Contains(out, "asked alice's agent to run now") {
		t.Fatalf("client run-now: %s", out)
	}
	c.fails(1, "no such client", "server", "client", "run-now", "bob")
	c.ok("server", "client", "policy", "alice", "--keep-last", "3")
	if out := c.ok("server", "client", "policy", "alice", "--show").stdout; !strings.Contains(out, "keep last 3") {
		t.Fatalf("client policy --show:\n%s", out)
	}
	c.fails(1, "no such client", "server", "client", "policy", "bob", "--keep-last", "3")

	usb := filepath.Join(c.dir, "usb")
	if out := c.ok("server", "destination", "add", "usb", "--location", usb, "--all").stdout; !strings.Contains(out, "\nreplicas keep every snapshot\n") {
		t.Fatalf("destination add:\n%s", out)
	}
	c.fails(1, "already exists", "server", "destination", "add", "usb", "--location", usb, "--all")
	if out := c.ok("server", "destination", "list").stdout; !strings.Contains(out, usb) {
		t.Fatalf("destination list:\n%s", out)
	}
	if out := c.ok("server", "destination", "set", "usb", "--keep-daily", "7").stdout; !strings.HasPrefix(out, "destination usb: replicas keep daily 7;") {
		t.Fatalf("destination set: %s", out)
	}
	if out := c.ok("server", "destination", "show", "usb").stdout; !strings.Contains(out, "keep daily 7") {
		t.Fatalf("destination show after set:\n%s", out)
	}
	if out := c.ok("server", "replication", "status").stdout; !strings.Contains(out, "no replicas yet") {
		t.Fatalf("replication status:\n%s", out)
	}
	c.ok("server", "destination", "remove", "usb")
	c.fails(1, "no such destination", "server", "destination", "show", "usb")

	if out := c.ok("server", "audit", "--fraction", "1").stdout; !strings.Contains(out, "0 bad or missing") {
		t.Fatalf("audit:\n%s", out)
	}

	c.ok("server", "client", "remove", "alice")
	c.fails(1, "no such client", "server", "client", "show", "alice")
	if out := c.ok("server", "client", "list").stdout; strings.Contains(out, "alice") {
		t.Fatalf("removed client listed:\n%s", out)
	}
}

// --storage given to any subcommand is recorded in the data directory:
// the same location again is accepted, another is refused.
func TestServerStorageRecorded(t *testing.T) {
	c := newServerCLI(t)
	elsewhere := filepath.Join(c.dir, "elsewhere")
	c.ok("server", "--storage", elsewhere, "client", "list")
	c.ok("server", "--storage", elsewhere, "status")
	c.fails(1, "this server keeps its repositories at "+elsewhere, "server", "--storage", filepath.Join(c.dir, "other"), "fingerprint")
}

// client remove names, and with --purge deletes, the client's repositories
// where the server keeps them, not a default directory; a client cannot
// be named after the S3 storage's lease directory.
func TestServerClientRemoveStorage(t *testing.T) {
	c := newServerCLI(t)
	elsewhere := filepath.Join(c.dir, "elsewhere")
	c.ok("server", "--storage", elsewhere, "client", "list")
	pw := filepath.Join(c.dir, "alice.pass")
	for _, name := range []string{"bob", "bobby"} {
		c.ok("server", "client", "add", name, "--password-file", pw)
	}
	c.fails(1, "reserved", "server", "client", "add", "leases", "--password-file", pw)
	for _, repo := range []string{"bob/home", "bob/db/main", "bobby/home"} {
		if err := os.MkdirAll(filepath.Join(elsewhere, repo, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(elsewhere, repo, "config"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if out := c.ok("server", "client", "remove", "bobby").stdout; !strings.Contains(out, filepath.Join(elsewhere, "bobby")) {
		t.Fatalf("remove without --purge does not name where the data stays: %s", out)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "bobby", "home", "config")); err != nil {
		t.Fatalf("remove without --purge deleted data: %v", err)
	}

	if out := c.ok("server", "client", "remove", "bob", "--purge").stdout; !strings.Contains(out, "deleted its repositories in "+filepath.Join(elsewhere, "bob")) {
		t.Fatalf("remove --purge: %s", out)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "bob")); !os.IsNotExist(err) {
		t.Fatalf("bob's repositories survived --purge: %v", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "bobby", "home", "config")); err != nil {
		t.Fatalf("purging bob touched bobby: %v", err)
	}
	c.fails(1, "no such client", "server", "client", "show", "bob")
}
