//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerAuditReplicaConfig: a directory replica that lost its config
// and kept its files is reported by `cairn server audit --replicas` as
// missing its config and healed from the primary (nothing stores a config
// there before the audit looks). With the primary's config also forged in
// place (none of the repository's config versions), both configs are
// reported, neither is healed, the audit exits 1, and the forged config is
// not written to the replica. A primary directory that lost its config
// and kept its files is audited too (not "cannot audit a copy"): its
// config is reported missing and healed from the replica, or, with the
// replica's forged, reported and not healed. (docs/server.md, Audit;
// threat model R3.)
func TestServerAuditReplicaConfig(t *testing.T) {
	e, s, replicas := auditedServer(t)
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 200<<10)
	repo := s.url("bob", "laptop")
	e.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t), "--owner-key-file", filepath.Join(e.dir, "owner.key"))
	e.vars["CAIRN_KEY_FILE"] = filepath.Join(e.dir, "owner.key")
	e.ok("-r", repo, "backup", src)
	primary := filepath.Join(s.data, "repos", "bob", "laptop")
	s.waitReplicated(t, "disk", "bob", "laptop", newSnapshot(t, primary, nil), 30*time.Second)
	replicaConfig := filepath.Join(replicas, "bob", "laptop", "config")
	good, err := os.ReadFile(filepath.Join(primary, "config"))
	if err != nil {
		t.Fatal(err)
	}

	// The replica lost its config: missing, healed from the primary.
	if err := os.Remove(replicaConfig); err != nil {
		t.Fatal(err)
	}
	r := e.ok("server", "audit", "--replicas", "--fraction", "1", "bob")
	if !strings.Contains(r.stdout, "Bad:     bob/laptop config/config on disk: missing; healed from primary") ||
		!strings.Contains(r.stdout, "Damage:  1 bad or missing, 1 healed, 0 not healed") {
		t.Fatalf("audit of a replica without its config:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(replicaConfig); err != nil || !bytes.Equal(b, good) {
		t.Fatalf("the replica's config after the audit: %v", err)
	}

	// And the primary's config forged in place: both reported, neither
	// healed, nothing written to the replica.
	if err := os.Remove(replicaConfig); err != nil {
		t.Fatal(err)
	}
	corruptFile(t, filepath.Join(primary, "config"))
	r = e.run("server", "audit", "--replicas", "--fraction", "1", "--json", "bob")
	var aj auditJSON
	if err := json.Unmarshal([]byte(r.stdout), &aj); err != nil || r.code != 1 || !strings.Contains(r.stderr, "could not heal") {
		t.Fatalf("audit: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	problems := map[string]string{}
	for _, f := range aj.Findings {
		if f.Type != "config" || f.Healed {
			t.Fatalf("finding %+v: want a config not healed", f)
		}
		problems[f.Copy] = f.Problem
	}
	if problems["primary"] != "not a config version" || problems["disk"] != "missing" || len(problems) != 2 {
		t.Fatalf("findings %+v", aj.Findings)
	}
	if _, err := os.Stat(replicaConfig); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the forged config was written to the replica: %v", err)
	}

	// The primary lost its config and kept its files (the replica's is
	// back): opened for the audit as it is, missing, healed from the
	// replica, whose config is one of the primary's config versions.
	primaryConfig := filepath.Join(primary, "config")
	if err := os.WriteFile(replicaConfig, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(primaryConfig); err != nil {
		t.Fatal(err)
	}
	r = e.ok("server", "audit", "--replicas", "--fraction", "1", "bob")
	if !strings.Contains(r.stdout, "Bad:     bob/laptop config/config on primary: missing; healed from disk") ||
		!strings.Contains(r.stdout, "Damage:  1 bad or missing, 1 healed, 0 not healed") || strings.Contains(r.stdout, "Error:") {
		t.Fatalf("audit of a primary without its config:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(primaryConfig); err != nil || !bytes.Equal(b, good) {
		t.Fatalf("the primary's config after the audit: %v", err)
	}

	// Lost again, with the replica's config forged in place: no sound
	// copy, both reported, exit 1, no config written to the primary.
	if err := os.Remove(primaryConfig); err != nil {
		t.Fatal(err)
	}
	corruptFile(t, replicaConfig)
	r = e.run("server", "audit", "--replicas", "--fraction", "1", "--json", "bob")
	aj = auditJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &aj); err != nil || r.code != 1 || !strings.Contains(r.stderr, "could not heal") {
		t.Fatalf("audit: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	problems = map[string]string{}
	for _, f := range aj.Findings {
		if f.Type != "config" || f.Healed {
			t.Fatalf("finding %+v: want a config not healed", f)
		}
		problems[f.Copy] = f.Problem
	}
	if problems["primary"] != "missing" || problems["disk"] != "not a config version" || len(problems) != 2 {
		t.Fatalf("findings %+v", aj.Findings)
	}
	if _, err := os.Stat(primaryConfig); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the primary got a config: %v", err)
	}
}
