package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// newServerCLI is a cli with an initialised server data directory and a
// client alice.
func newServerCLI(t *testing.T) *cli {
	t.Helper()
	c := newCLI(t)
	t.Setenv("CAIRN_SERVER_DATA", filepath.Join(c.dir, "server"))
	c.ok("server", "init")
	pw := filepath.Join(c.dir, "alice.pass")
	if err := os.WriteFile(pw, []byte("alice-secret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("server", "client", "add", "alice", "--password-file", pw, "--quota", "1GiB", "--min-interval", "1h")
	return c
}

func TestServerClientSetFlags(t *testing.T) {
	c := newServerCLI(t)
	show := func() map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(c.ok("--json", "server", "client", "show", "alice").stdout), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	out := c.ok("server", "client", "set", "alice", "--append-only=false").stdout
	if !strings.Contains(out, "client alice updated") || !strings.Contains(out, "append-only false") || !strings.Contains(out, "quota 1.00 GiB") {
		t.Fatalf("set --append-only=false: %s", out)
	}
	if m := show(); m["append_only"] != false || m["quota"] != float64(1<<30) || m["min_interval"] != "1h0m0s" {
		t.Fatalf("only append-only was to change: %v", m)
	}
	c.ok("server", "client", "set", "alice", "--min-interval", "0", "--quota", "2GiB")
	if m := show(); m["min_interval"] != "0s" || m["quota"] != float64(2<<30) || m["append_only"] != false {
		t.Fatalf("after --min-interval 0 --quota 2GiB: %v", m)
	}
	c.ok("server", "client", "set", "alice", "--warn-after", "1h", "--alert-after", "2h")
	var st struct {
		Clients []struct {
			Warn  int64 `json:"warn_after_seconds"`
			Alert int64 `json:"alert_after_seconds"`
		} `json:"clients"`
	}
	if err := json.Unmarshal([]byte(c.ok("--json", "server", "status", "alice").stdout), &st); err != nil || len(st.Clients) != 1 || st.Clients[0].Warn != 3600 || st.Clients[0].Alert != 7200 {
		t.Fatalf("thresholds: %+v %v", st, err)
	}
	c.fails(1, "must not be negative", "server", "client", "set", "alice", "--alert-after", "-1h")
	c.fails(1, "the warning must come first", "server", "client", "set", "alice", "--warn-after", "0")
	// The ages take days, as --drill-after does.
	if out := c.ok("--json", "server", "client", "set", "alice", "--warn-after", "8d", "--alert-after", "9d").stdout; !strings.Contains(out, `"warn_after":"192h0m0s"`) || !strings.Contains(out, `"alert_after":"216h0m0s"`) {
		t.Fatalf("--warn-after 8d --alert-after 9d: %s", out)
	}
	c.fails(1, "not a number of days", "server", "client", "set", "alice", "--warn-after", "xd")
	c.fails(1, "--quota", "server", "client", "set", "alice", "--quota", "-5")
	c.fails(1, "nothing to change", "server", "client", "set", "alice")
	c.fails(1, "no such client", "server", "client", "set", "bob", "--quota", "1")
	c.fails(1, "accepts 1 arg", "server", "client", "set")
}

func TestServerNotifyCommands(t *testing.T) {
	c := newServerCLI(t)
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer hook.Close()

	var added struct {
		MessageType                        string `json:"message_type"`
		Name, Kind, Target, Repeat, Secret string
	}
	if err := json.Unmarshal([]byte(c.ok("--json", "server", "notify", "add", "ops", "--webhook", hook.URL+"/x?token=t", "--repeat", "2h").stdout), &added); err != nil {
		t.Fatal(err)
	}
	if added.MessageType != "notifier_added" || added.Kind != "webhook" || len(added.Secret) != 48 || added.Target != hook.URL+"/x" || added.Repeat != "2h0m0s" {
		t.Fatalf("notify add --json: %+v", added)
	}
	secret := filepath.Join(c.dir, "short")
	os.WriteFile(secret, []byte("short\n"), 0o600)
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"already exists", []string{"ops", "--webhook", hook.URL}},
		{"not both", []string{"x", "--webhook", hook.URL, "--smtp", "m:25"}},
		{"give --webhook URL", []string{"x"}},
		{"at least 1m", []string{"x", "--webhook", hook.URL, "--repeat", "10s"}},
		{"notifier name", []string{"../x", "--webhook", hook.URL}},
		{"too short", []string{"x", "--webhook", hook.URL, "--secret-file", secret}},
		{"http:// or https://", []string{"x", "--webhook", "file:///etc/passwd"}},
		{"go with --smtp", []string{"x", "--webhook", hook.URL, "--to", "a@b"}},
		{"at least one recipient", []string{"x", "--smtp", "m:25", "--from", "a@b"}},
		{"sender", []string{"x", "--smtp", "m:25", "--to", "a@b"}},
		{"both a user and a password file", []string{"x", "--smtp", "m:25", "--from", "a@b", "--to", "c@d", "--smtp-user", "u"}},
		{"--smtp-password-file", []string{"x", "--smtp", "m:25", "--from", "a@b", "--to", "c@d", "--smtp-user", "u", "--smtp-password-file", filepath.Join(c.dir, "none")}},
	} {
		c.fails(1, tc.want, append([]string{"server", "notify", "add"}, tc.args...)...)
	}
	c.ok("server", "notify", "add", "mail", "--smtp", "127.0.0.1:1", "--from", "cairn@x.test", "--to", "a@x.test", "--to", "b@x.test")

	out := c.ok("server", "notify", "test", "ops").stdout
	if !strings.Contains(out, "delivered a test notice to ops") || len(bodies) != 1 || !strings.Contains(bodies[0], `"kind":"test"`) {
		t.Fatalf("notify test: %s, bodies %q", out, bodies)
	}
	c.fails(1, "connection refused", "server", "notify", "test", "mail")
	c.fails(1, "no such notifier", "server", "notify", "test", "nobody")
	list := c.ok("server", "notify", "list").stdout
	if !strings.Contains(list, "ok, 1 sent") || !strings.Contains(list, "FAILING since") || !strings.Contains(list, "a@x.test, b@x.test via 127.0.0.1:1") || strings.Contains(list, "token") {
		t.Fatalf("notify list:\n%s", list)
	}
	var ns []struct {
		Name    string `json:"name"`
		Failing bool   `json:"failing"`
		Sent    int    `json:"sent"`
	}
	if err := json.Unmarshal([]byte(c.ok("--json", "server", "notify", "list").stdout), &ns); err != nil || len(ns) != 2 || ns[0].Name != "mail" || !ns[0].Failing || ns[1].Sent != 1 {
		t.Fatalf("notify list --json: %+v %v", ns, err)
	}
	status := c.ok("server", "status").stdout
	if !strings.Contains(status, "never backed up") || !strings.Contains(status, "1.00 GiB (0% used)") || !strings.Contains(status, "FAILING") {
		t.Fatalf("status:\n%s", status)
	}
	c.ok("server", "notify", "remove", "mail")
	c.fails(1, "no such notifier", "server", "notify", "remove", "mail")
	if list := c.ok("server", "notify", "list").stdout; strings.Contains(list, "mail") {
		t.Fatalf("removed notifier listed:\n%s", list)
	}
	c.fails(1, "no such client", "server", "status", "bob")
}
