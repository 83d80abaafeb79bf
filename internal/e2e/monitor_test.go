//go:build linux

package e2e

import (
	"github.com/cairnbackup/cairn/internal/testutil/smtptest"

	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// statusJSON is `cairn server status --json` as docs/commands.md
// documents it; decoding refuses any other field.
type statusJSON struct {
	MessageType string           `json:"message_type"`
	At          time.Time        `json:"at"`
	Clients     []clientStatus   `json:"clients"`
	Notifiers   []notifierStatus `json:"notifiers"`
	Alerts      []alertEventJSON `json:"alerts"`
	Backups     *backupsStatus   `json:"backups"` // fleet_pacing_test.go
}

type clientStatus struct {
	Name        string           `json:"name"`
	Level       string           `json:"level"`
	State       string           `json:"state"`
	Reason      string           `json:"reason"`
	LastBackup  *time.Time       `json:"last_backup"`
	AgeSeconds  int64            `json:"age_seconds"`
	Never       bool             `json:"never_backed_up"`
	Enrolled    time.Time        `json:"enrolled"`
	Disabled    bool             `json:"disabled"`
	WarnAfter   int64            `json:"warn_after_seconds"`
	AlertAfter  int64            `json:"alert_after_seconds"`
	Snapshots   int64            `json:"snapshots"`
	StoredBytes int64            `json:"stored_bytes"`
	QuotaBytes  int64            `json:"quota_bytes"`
	QuotaUsed   float64          `json:"quota_used"`
	Alerts      []alertEventJSON `json:"alerts"`
	DrillLevel  string           `json:"drill_level"`
	DrillState  string           `json:"drill_state"`
	DrillReason string           `json:"drill_reason"`
	LastDrill   *time.Time       `json:"last_drill"`
	DrillAfter  int64            `json:"drill_after_seconds"`
	Drills      []repoDrillJSON  `json:"drills"`
	Audit       *auditSummary    `json:"audit"`
	AgentRun    *agentRunJSON    `json:"last_agent_run"` // agent_report_test.go
}

// repoDrillJSON is one repository's last restore drill in status --json.
type repoDrillJSON struct {
	Repo     string     `json:"repo"`
	Snapshot string     `json:"snapshot"`
	At       *time.Time `json:"at"`
	Files    int64      `json:"files"`
	Bytes    int64      `json:"bytes"`
	Result   string     `json:"result"`
}

// auditSummary is a client's last audit in status --json.
type auditSummary struct {
	At       time.Time `json:"at"`
	Coverage float64   `json:"coverage"`
	Files    int64     `json:"files"`
	Bad      int64     `json:"bad"`
	Healed   int64     `json:"healed"`
	Unhealed int64     `json:"unhealed"`
	Note     string    `json:"note"`
}

type notifierStatus struct {
	Name          string     `json:"name"`
	Kind          string     `json:"kind"`
	Target        string     `json:"target"`
	RepeatSeconds int64      `json:"repeat_seconds"`
	LastOK        *time.Time `json:"last_ok"`
	LastError     string     `json:"last_error"`
	ErrorAt       *time.Time `json:"error_at"`
	Failing       bool       `json:"failing"`
	Sent          int        `json:"sent"`
	Failed        int        `json:"failed"`
}

// alertEventJSON is the webhook body (docs/server.md, "Monitoring").
type alertEventJSON struct {
	Version int       `json:"version"`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	Level   string    `json:"level"`
	Was     string    `json:"was"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	At      time.Time `json:"at"`
	Server  string    `json:"server"`
}

func (s *serverEnv) status(t *testing.T, args ...string) statusJSON {
	t.Helper()
	out := s.ok(append([]string{"server", "status", "--json"}, args...)...).stdout
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var st statusJSON
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("server status --json: %v\n%s", err, out)
	}
	if st.MessageType != "server_status" || st.At.IsZero() || dec.More() {
		t.Fatalf("server status --json: not one server_status document:\n%s", out)
	}
	return st
}

func (st statusJSON) client(t *testing.T, name string) clientStatus {
	t.Helper()
	for _, c := range st.Clients {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("status has no client %s: %+v", name, st.Clients)
	return clientStatus{}
}

// hookReceiver is a webhook endpoint that checks each body's signature.
type hookReceiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	events []alertEventJSON
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := hmac.New(sha256.New, h.secret)
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if got := r.Header.Get("X-Cairn-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		h.t.Errorf("webhook signature %q, want %q", got, want)
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var ev alertEventJSON
	if err := dec.Decode(&ev); err != nil || ev.Version != 1 || r.Header.Get("Content-Type") != "application/json" {
		h.t.Errorf("webhook body %s: %v", body, err)
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

// of lists the kinds and levels of the events about subject so far.
func (h *hookReceiver) of(subject string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		if ev.Subject == subject {
			out = append(out, ev.Kind+" "+ev.Level)
		}
	}
	return out
}

func anyHas(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// metricsText is the server's /metrics page.
func (s *serverEnv) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestMonitorAlerts: a client that stops backing up goes WARNING, then
// ALERT, on an injected clock; a real webhook receiver gets each once
// (signed), a repeat at its interval, and the recovery when the client
// backs up again; a small SMTP server gets the mails; a notifier that
// cannot deliver shows as failing in status and /metrics; status --json
// has exactly the documented fields.
func TestMonitorAlerts(t *testing.T) {
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.vars["XDG_CONFIG_HOME"] = filepath.Join(e.dir, "config")
	clock := useMonitorClock(t, e) // absent until set: the real clock
	setClock := clock.set
	e.ok("server", "init")
	for _, c := range []string{"alice", "bob"} {
		pw := filepath.Join(e.dir, c+".pass")
		os.WriteFile(pw, []byte(c+"-secret-pw\n"), 0o600)
		e.ok("server", "client", "add", c, "--password-file", pw)
	}

	hook := &hookReceiver{t: t, secret: []byte("e2e-webhook-secret-0123")}
	hsrv := httptest.NewServer(hook)
	t.Cleanup(hsrv.Close)
	secretFile := filepath.Join(e.dir, "hook.secret")
	os.WriteFile(secretFile, append(hook.secret, '\n'), 0o600)
	mail := smtptest.Start(t, smtptest.Options{})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String() + "/hook?token=hidden"
	dead.Close()

	e.ok("server", "notify", "add", "hook", "--webhook", hsrv.URL+"/cairn", "--secret-file", secretFile, "--repeat", "1h")
	e.ok("server", "notify", "add", "mail", "--smtp", mail.Addr(), "--from", "cairn@e2e.test", "--to", "ops@e2e.test", "--repeat", "1h")
	r := e.run("server", "notify", "add", "hook", "--webhook", hsrv.URL)
	expectExit(t, r, 1, "already exists")
	r = e.run("server", "notify", "add", "x", "--smtp", "nohostport", "--from", "a@b", "--to", "c@d")
	expectExit(t, r, 1, "HOST:PORT")
	e.ok("server", "notify", "test", "hook")
	if got := hook.of("notifier hook"); len(got) != 1 || got[0] != "test OK" {
		t.Fatalf("notify test: the receiver got %v", got)
	}
	e.ok("server", "notify", "add", "broken", "--webhook", deadURL, "--secret-file", secretFile)
	if r := e.run("server", "notify", "test", "broken"); r.code == 0 || strings.Contains(r.stderr, "hidden") {
		t.Fatalf("notify test of a dead webhook: exit %d, stderr %q (and the URL's query must not show)", r.code, r.stderr)
	}
	list := e.ok("server", "notify", "list").stdout
	if !strings.Contains(list, "FAILING") || strings.Contains(list, "hidden") || !strings.Contains(list, "ops@e2e.test") {
		t.Fatalf("notify list:\n%s", list)
	}

	s.start(t, "--check-every", "100ms")
	fp := s.fingerprint(t)
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "f"), 10000)
	alice := s.url("alice", "main")
	e.ok("-r", alice, "init", "--server-fingerprint", fp)
	e.ok("-r", alice, "backup", src)

	st := s.status(t)
	a, b := st.client(t, "alice"), st.client(t, "bob")
	if a.Level != "OK" || a.State != "OK" || a.LastBackup == nil || a.Snapshots != 1 || a.StoredBytes == 0 || a.WarnAfter != 24*3600 || a.AlertAfter != 28*3600 {
		t.Fatalf("alice after a backup: %+v", a)
	}
	if !b.Never || b.State != "never backed up" || b.Level != "OK" || b.LastBackup != nil {
		t.Fatalf("bob, enrolled, never backed up: %+v", b)
	}
	t0 := *a.LastBackup
	const subj = "client alice"
	waitEvents := func(what string, want ...string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() bool { return len(hook.of(subj)) >= len(want) })
		if got := hook.of(subj); strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Fatalf("%s: the webhook got %v, want %v", what, got, want)
		}
	}

	setClock(t0.Add(25 * time.Hour))
	waitEvents("WARNING after 25 hours", "raised WARNING")
	st = s.status(t, "alice")
	if a := st.client(t, "alice"); len(st.Clients) != 1 || a.Level != "WARNING" || a.AgeSeconds < 25*3600 || len(a.Alerts) != 1 || a.Alerts[0].Level != "WARNING" {
		t.Fatalf("status alice at +25h: %+v", st)
	}

	setClock(t0.Add(29 * time.Hour))
	waitEvents("ALERT after 29 hours", "raised WARNING", "raised ALERT")
	waitFor(t, 30*time.Second, "backup state 2 in /metrics", func() bool {
		return strings.Contains(s.metricsText(t), `cairn_server_client_backup_state{client="alice"} 2`)
	})
	setClock(t0.Add(30*time.Hour + time.Minute))
	waitEvents("a repeat an hour later", "raised WARNING", "raised ALERT", "repeated ALERT")

	// bob never backed up: he is aged from his enrolment.
	st = s.status(t)
	if b := st.client(t, "bob"); b.Level != "ALERT" || b.State != "never backed up" || !strings.Contains(b.Reason, "never backed up") {
		t.Fatalf("bob at +30h: %+v", b)
	}
	var broken notifierStatus
	for _, n := range st.Notifiers {
		if n.Name == "broken" {
			broken = n
		}
		if n.Name == "hook" && (n.Failing || n.Sent < 4 || n.Kind != "webhook" || n.RepeatSeconds != 3600) {
			t.Fatalf("hook notifier: %+v", n)
		}
	}
	if !broken.Failing || broken.Failed < 2 || broken.LastError == "" || strings.Contains(broken.Target, "hidden") {
		t.Fatalf("a dead notifier must show as failing: %+v", broken)
	}
	m := s.metricsText(t)
	if !strings.Contains(m, `cairn_server_notifier_failing{notifier="broken"} 1`) || !strings.Contains(m, `cairn_server_notifier_failing{notifier="hook"} 0`) {
		t.Fatalf("notifier health in /metrics:\n%s", grepLines(m, "notifier"))
	}
	text := e.ok("server", "status").stdout
	if !strings.Contains(text, "alice") || !strings.Contains(text, "ALERT") || !strings.Contains(text, "FAILING") || strings.Contains(text, "\x1b[") {
		t.Fatalf("server status (piped: no colour):\n%s", text)
	}

	// alice backs up again: one recovery notice.
	e.ok("-r", alice, "backup", src)
	a = s.status(t, "alice").client(t, "alice")
	setClock(a.LastBackup.Add(time.Minute))
	waitEvents("recovery", "raised WARNING", "raised ALERT", "repeated ALERT", "cleared OK")
	if a := s.status(t, "alice").client(t, "alice"); a.Level != "OK" || len(a.Alerts) != 0 || a.Snapshots != 2 {
		t.Fatalf("alice after the recovery: %+v", a)
	}

	waitFor(t, 30*time.Second, "the recovery mail", func() bool { return anyHas(mail.Subjects(), "OK again: client alice") })
	subjects := mail.Subjects()
	for _, want := range []string{"[cairn] WARNING: client alice", "[cairn] ALERT: client alice", "[cairn] still ALERT: client alice"} {
		if !anyHas(subjects, want) {
			t.Errorf("no mail %q among %q", want, subjects)
		}
	}
	e.ok("server", "notify", "remove", "broken")
	r = e.run("server", "notify", "remove", "broken")
	expectExit(t, r, 1, "no such notifier")
	r = e.run("server", "status", "carol")
	expectExit(t, r, 1, "no such client")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestClientSet: `server client set` changes a client in place on a
// running server: a smaller quota refuses the next backup at once, the
// quota lifted lets it through, and the client's history stays.
func TestClientSet(t *testing.T) {
	s := startCairnServer(t)
	fp := s.fingerprint(t)
	s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "small"), 1000)
	alice := s.url("alice", "main")
	s.ok("-r", alice, "init", "--server-fingerprint", fp)
	s.ok("-r", alice, "backup", src)

	s.ok("server", "client", "set", "alice", "--quota", "64KiB", "--min-interval", "0s", "--warn-after", "2h", "--alert-after", "3h")
	writeRandom(t, filepath.Join(src, "big"), 1<<20)
	r := s.run("-r", alice, "backup", src)
	expectExit(t, r, 13, "quota")

	out := s.ok("server", "client", "set", "alice", "--quota", "unlimited", "--json").stdout
	var upd struct {
		MessageType string `json:"message_type"`
		Quota       int64  `json:"quota"`
		AppendOnly  bool   `json:"append_only"`
		WarnAfter   string `json:"warn_after"`
		AlertAfter  string `json:"alert_after"`
	}
	lastJSON(t, out, &upd)
	if upd.MessageType != "client_updated" || upd.Quota != 0 || !upd.AppendOnly || upd.WarnAfter != "2h0m0s" || upd.AlertAfter != "3h0m0s" {
		t.Fatalf("client set --json: %s", out)
	}
	s.ok("-r", alice, "backup", src)
	a := s.status(t, "alice").client(t, "alice")
	if a.Snapshots != 2 || a.QuotaBytes != 0 || a.WarnAfter != 2*3600 || a.AlertAfter != 3*3600 {
		t.Fatalf("alice after client set: %+v", a)
	}
	if n := len(s.snapshotsOf(alice)); n != 2 {
		t.Fatalf("%d snapshots, want both", n)
	}

	r = s.run("server", "client", "set", "carol", "--quota", "1GiB")
	expectExit(t, r, 1, `client "carol": no such client`)
	r = s.run("server", "client", "set", "alice", "--warn-after", "4h")
	expectExit(t, r, 1, "the warning must come first")
	r = s.run("server", "client", "set", "alice")
	expectExit(t, r, 1, "nothing to change")
	r = s.run("server", "client", "set", "alice", "--quota", "lots")
	expectExit(t, r, 1, "--quota")
	if a := s.status(t, "alice").client(t, "alice"); a.WarnAfter != 2*3600 || a.QuotaBytes != 0 {
		t.Fatalf("a refused client set changed alice: %+v", a)
	}
}

// monitorClock is the server's injected clock, CAIRN_TEST_MONITOR_CLOCK:
// a file holding the time, absent for the real clock.
type monitorClock struct {
	t    *testing.T
	path string
}

// useMonitorClock points e's commands at a monitor clock, absent (the
// real clock) until set.
func useMonitorClock(t *testing.T, e *env) *monitorClock {
	c := &monitorClock{t: t, path: filepath.Join(e.dir, "clock")}
	e.vars["CAIRN_TEST_MONITOR_CLOCK"] = c.path
	return c
}

// set makes the clock read at, replacing the file atomically so that a
// running server never reads half a time.
func (c *monitorClock) set(at time.Time) {
	c.t.Helper()
	if err := os.WriteFile(c.path+".new", []byte(at.Format(time.RFC3339Nano)), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(c.path+".new", c.path); err != nil {
		c.t.Fatal(err)
	}
}

// unset goes back to the real clock.
func (c *monitorClock) unset() { os.Remove(c.path) }
