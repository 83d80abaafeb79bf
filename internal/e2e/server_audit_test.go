//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corruptFile flips one byte in the middle of a stored file.
func corruptFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x5a
	os.Chmod(path, 0o600)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// hashesToName reports whether a stored file's bytes hash to its name.
func hashesToName(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]) == filepath.Base(path)
}

// auditJSON is `cairn server audit --json`.
type auditJSON struct {
	MessageType string `json:"message_type"`
	Clients     []struct {
		Client   string  `json:"client"`
		Files    int64   `json:"files"`
		Checked  int64   `json:"checked"`
		Coverage float64 `json:"coverage"`
		Bad      int64   `json:"bad"`
		Healed   int64   `json:"healed"`
		Unhealed int64   `json:"unhealed"`
	} `json:"clients"`
	Findings []struct {
		Repo    string `json:"repo"`
		Copy    string `json:"copy"`
		Type    string `json:"type"`
		Name    string `json:"name"`
		Problem string `json:"problem"`
		Healed  bool   `json:"healed"`
		From    string `json:"healed_from"`
		Error   string `json:"error"`
	} `json:"findings"`
}

// TestServerAudit: the rolling audit of `cairn server run` (1/3 of the
// files a day, on an injected clock) finds a pack corrupted on the
// primary within 3 days and heals it from the directory replica, and
// bob's snapshot then restores byte-identically; `cairn server audit
// --replicas` reports a corrupted and a deleted replica file and copies
// them again; a pack bad on every copy is reported, exits 1, and the
// running server raises an audit alert through a real webhook.
func TestServerAudit(t *testing.T) {
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	clock := useMonitorClock(t, e) // absent until set: the real clock
	t0 := time.Now().UTC().Truncate(time.Second)
	setClock := clock.set
	setClock(t0)
	e.ok("server", "init")
	pw := filepath.Join(e.dir, "bob.pass")
	os.WriteFile(pw, []byte("bob-secret-pw\n"), 0o600)
	e.ok("server", "client", "add", "bob", "--password-file", pw)
	replicas := filepath.Join(e.dir, "replicas")
	e.ok("server", "destination", "add", "disk", "--location", replicas, "--all")
	hook := &hookReceiver{t: t, secret: []byte("e2e-webhook-secret-0123")}
	hsrv := httptest.NewServer(hook)
	t.Cleanup(hsrv.Close)
	secretFile := filepath.Join(e.dir, "hook.secret")
	os.WriteFile(secretFile, append(hook.secret, '\n'), 0o600)
	e.ok("server", "notify", "add", "hook", "--webhook", hsrv.URL+"/cairn", "--secret-file", secretFile)

	expectExit(t, e.run("server", "audit", "--fraction", "3/2"), 1, "--fraction")
	expectExit(t, e.run("server", "audit", "nobody"), 1, "nobody")

	s.start(t, "--check-every", "100ms", "--audit-fraction", "1/3")
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	for i, n := range []int{2 << 20, 700 << 10, 90 << 10} {
		writeRandom(t, filepath.Join(src, string(rune('a'+i))), n)
	}
	want := contentHashes(t, src)
	ownerKey := filepath.Join(e.dir, "bob-owner.key")
	repo := s.url("bob", "laptop")
	e.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t), "--owner-key-file", ownerKey)
	e.vars["CAIRN_KEY_FILE"] = ownerKey
	primary := filepath.Join(s.data, "repos", "bob", "laptop")
	replica := filepath.Join(replicas, "bob", "laptop")
	e.ok("-r", repo, "backup", src)
	s.waitReplicated(t, "disk", "bob", "laptop", newSnapshot(t, primary, nil), 30*time.Second)

	packs := packFiles(t, primary)
	if len(packs) < 2 {
		t.Fatalf("want at least 2 packs, have %d", len(packs))
	}
	bad := packs[0]
	corruptFile(t, bad)
	// The snapshot file too: its kind sorts last, so its turn comes on a
	// later day than the packs'.
	snapFile := filepath.Join(primary, "snapshots", snapshotFiles(t, primary)[0])
	corruptFile(t, snapFile)

	// Day by day, until the rolling audit has healed the pack: at most 3.
	audited := func(day int) clientStatus {
		t.Helper()
		at := t0.Add(time.Duration(day) * 24 * time.Hour)
		setClock(at)
		var c clientStatus
		waitFor(t, 30*time.Second, "the audit of day "+string(rune('0'+day)), func() bool {
			c = s.status(t, "bob").client(t, "bob")
			return c.Audit != nil && c.Audit.At.Equal(at)
		})
		return c
	}
	healedOn, healed := 0, int64(0)
	var c clientStatus
	for day := 1; day <= 3 && healed < 2; day++ {
		c = audited(day)
		if c.Audit.Unhealed != 0 {
			t.Fatalf("day %d: unhealed damage %+v\n%s", day, c.Audit, s.log())
		}
		if c.Audit.Healed > 0 {
			t.Logf("day %d: healed %d (%s)", day, c.Audit.Healed, c.Audit.Note)
			healed += c.Audit.Healed
			healedOn = day
		}
	}
	if healed != 2 {
		t.Fatalf("the corrupted pack and snapshot were not both healed within 3 days of 1/3 (%d healed); last audit %+v\nlog:\n%s", healed, c.Audit, s.log())
	}
	if !hashesToName(t, bad) || !hashesToName(t, snapFile) {
		t.Fatalf("the pack or snapshot on the primary still does not hash to its name")
	}
	if !strings.Contains(s.log(), "audit: healed a bad file") {
		t.Fatalf("no log line for the heal:\n%s", s.log())
	}
	// Three days cover everything, on both copies.
	if healedOn < 3 {
		for day := healedOn + 1; day <= 3; day++ {
			c = audited(day)
		}
	}
	if c.Audit.Coverage != 1 {
		t.Fatalf("coverage after 3 days of 1/3: %v, want 1", c.Audit.Coverage)
	}
	restored := filepath.Join(e.dir, "restored")
	e.ok("-r", repo, "restore", "latest", "--target", restored)
	got := contentHashes(t, filepath.Join(restored, src))
	for p, h := range want {
		if got[p] != h {
			t.Fatalf("restore after the heal: %s differs", p)
		}
	}
	metrics := s.metricsText(t)
	for _, m := range []string{`cairn_server_audit_coverage_ratio{client="bob"} 1`, `cairn_server_audit_last_timestamp_seconds{client="bob"}`, `cairn_server_audit_unhealed_files{client="bob"} 0`} {
		if !strings.Contains(metrics, m) {
			t.Fatalf("/metrics lacks %s:\n%s", m, grepLines(metrics, "cairn_server_audit"))
		}
	}

	// A replica file corrupted and another deleted: audit --replicas
	// reports both and copies them again from the primary.
	rpacks := packFiles(t, replica)
	corruptFile(t, rpacks[0])
	if err := os.Remove(rpacks[1]); err != nil {
		t.Fatal(err)
	}
	var aj auditJSON
	r := e.ok("server", "audit", "--replicas", "--fraction", "1", "--json", "bob")
	if err := json.Unmarshal([]byte(r.stdout), &aj); err != nil || aj.MessageType != "server_audit" {
		t.Fatalf("audit --json: %v\n%s", err, r.stdout)
	}
	problems := map[string]string{}
	for _, f := range aj.Findings {
		if f.Copy != "disk" || !f.Healed || f.From != "primary" {
			t.Fatalf("finding %+v: want healed on disk from the primary", f)
		}
		problems[f.Name] = f.Problem
	}
	if problems[filepath.Base(rpacks[0])] != "corrupt" || problems[filepath.Base(rpacks[1])] != "missing" || len(problems) != 2 {
		t.Fatalf("audit --replicas findings %v, want the corrupted and the deleted pack", problems)
	}
	if !hashesToName(t, rpacks[0]) || !hashesToName(t, rpacks[1]) {
		t.Fatalf("the replica's packs were not copied again")
	}
	restoreMatches(t, s, replica, ownerKey, "latest", src, want, nil)

	// A pack bad on every copy: reported, not healed, exit 1, and the
	// running server raises the audit alert.
	p := packs[1]
	corruptFile(t, p)
	corruptFile(t, filepath.Join(replica, "data", filepath.Base(filepath.Dir(p)), filepath.Base(p)))
	r = e.run("server", "audit", "--replicas", "--fraction", "1")
	if r.code != 1 || !strings.Contains(r.stdout, "NOT HEALED") || !strings.Contains(r.stdout, filepath.Base(p)) || !strings.Contains(r.stderr, "could not heal") {
		t.Fatalf("audit of a pack bad everywhere: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The heals above raised a WARNING (found and healed), cleared by
	// the next whole audit; damage left standing is an ALERT.
	waitFor(t, 30*time.Second, "the audit alert", func() bool {
		got := hook.of("audit bob")
		return len(got) > 0 && got[len(got)-1] == "raised ALERT"
	})
	if got := hook.of("audit bob"); got[0] != "raised WARNING" {
		t.Fatalf("webhook events about the audit: %v", got)
	}
	st := s.status(t, "bob")
	if c := st.client(t, "bob"); c.Audit == nil || c.Audit.Unhealed == 0 || len(c.Alerts) == 0 {
		t.Fatalf("status after unhealed damage: %+v", c)
	}
	if out := e.ok("server", "status").stdout; !strings.Contains(out, "BAD") {
		t.Fatalf("server status does not show the damage:\n%s", out)
	}
}
