//go:build linux

package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerAuditNeverCommitted: a repository that was created and never
// received a snapshot (so the replication ledger does not know it) is
// found on disk and audited: its stored files (config versions, keys,
// roster) are re-hashed, a corrupted one is reported, and no replica is
// made for it.
func TestServerAuditNeverCommitted(t *testing.T) {
	e, s, replicas := auditedServer(t)
	repo := s.url("bob", "laptop")
	e.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t), "--owner-key-file", filepath.Join(e.dir, "owner.key"))
	primary := filepath.Join(s.data, "repos", "bob", "laptop")

	audit := func(code int) auditJSON {
		t.Helper()
		r := e.run("server", "audit", "--replicas", "--fraction", "1", "--json", "bob")
		var aj auditJSON
		if err := json.Unmarshal([]byte(r.stdout), &aj); err != nil || r.code != code || len(aj.Clients) != 1 {
			t.Fatalf("audit: exit %d (want %d), %v\n%s\n%s", r.code, code, err, r.stdout, r.stderr)
		}
		return aj
	}
	aj := audit(0)
	// Every content-named file it stores (the config is checked apart).
	var stored []string
	filepath.WalkDir(primary, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(d.Name()) == 64 && hashesToName(t, p) {
			stored = append(stored, p)
		}
		return nil
	})
	if c := aj.Clients[0]; len(stored) < 2 || c.Checked != int64(len(stored)) || c.Files != c.Checked || c.Coverage != 1 || c.Bad != 0 {
		t.Fatalf("the never-committed repository's %d stored files were not all re-hashed: %+v", len(stored), c)
	}
	if _, err := os.Stat(filepath.Join(replicas, "bob", "laptop")); err == nil {
		t.Fatal("the audit made a replica of a repository that was never replicated")
	}

	bad := stored[0]
	rel, _ := filepath.Rel(primary, bad)
	kind, _, _ := strings.Cut(rel, "/")
	corruptFile(t, bad)
	aj = audit(1)
	if len(aj.Findings) != 1 {
		t.Fatalf("findings %+v, want the corrupted %s", aj.Findings, rel)
	}
	f := aj.Findings[0]
	if f.Repo != "bob/laptop" || f.Copy != "primary" || f.Type != kind || f.Name != filepath.Base(bad) || f.Problem != "corrupt" || f.Healed {
		t.Fatalf("finding %+v, want %s of bob/laptop corrupt on the primary, not healed", f, rel)
	}
}

// auditedServer starts a server (audits only when asked) with client bob
// and a directory destination "disk" for every client, at replicas.
func auditedServer(t *testing.T) (*env, *serverEnv, string) {
	t.Helper()
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.ok("server", "init")
	pw := filepath.Join(e.dir, "bob.pass")
	os.WriteFile(pw, []byte("bob-secret-pw\n"), 0o600)
	e.ok("server", "client", "add", "bob", "--password-file", pw)
	replicas := filepath.Join(e.dir, "replicas")
	e.ok("server", "destination", "add", "disk", "--location", replicas, "--all")
	s.start(t, "--audit-every", "0")
	return e, s, replicas
}
