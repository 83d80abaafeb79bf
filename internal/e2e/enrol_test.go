//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fingerprint is what `cairn server fingerprint` prints.
func (s *serverEnv) fingerprint(t *testing.T) string {
	t.Helper()
	out := strings.TrimSpace(s.ok("server", "fingerprint").stdout)
	if f, ok := strings.CutPrefix(out, "server fingerprint: "); ok {
		out = f
	}
	if !strings.HasPrefix(out, "SHA256:") {
		t.Fatalf("fingerprint output %q", out)
	}
	return out
}

// TestEnrolment: `cairn init` against a server checks the fingerprint
// before storing anything (R21), keeps the owner key off the server (R4),
// and the owner backs up and restores with just the password.
func TestEnrolment(t *testing.T) {
	s := startCairnServer(t)
	fp := s.fingerprint(t)
	cfgHome := filepath.Join(s.dir, "config")
	s.vars["XDG_CONFIG_HOME"] = cfgHome
	repo := s.url("bob", "main")
	repoDir := filepath.Join(s.data, "repos", "bob", "main")
	noConfig := func(when string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(repoDir, "config")); err == nil {
			t.Fatalf("%s: a config was stored", when)
		}
	}

	r := s.run("-r", repo, "init")
	expectExit(t, r, 1, "--server-fingerprint")
	noConfig("no fingerprint, no terminal")

	wrong := "SHA256:0000-0000-0000-0000-0000-0000-0000-0000"
	r = s.run("-r", repo, "init", "--server-fingerprint", wrong)
	if r.code == 0 || !strings.Contains(r.stderr, "fingerprint mismatch") {
		t.Fatalf("wrong fingerprint accepted: %d %s", r.code, r.stderr)
	}
	noConfig("wrong fingerprint")

	out := s.ok("-r", repo, "init", "--server-fingerprint", strings.ToLower(fp)).stdout
	if !strings.Contains(out, "owner key: "+filepath.Join(cfgHome, "cairn", "keys")) || !strings.Contains(out, "Copy the owner key file") {
		t.Fatalf("init output:\n%s", out)
	}
	// R4: no key file of any kind on the server.
	keys, _ := os.ReadDir(filepath.Join(repoDir, "keys"))
	if len(keys) != 0 {
		t.Fatalf("%d key files stored on the server", len(keys))
	}
	held, _ := filepath.Glob(filepath.Join(cfgHome, "cairn", "keys", "*.key"))
	if len(held) != 1 {
		t.Fatalf("owner key files on the client: %v", held)
	}

	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "f"), 2<<20)
	s.ok("-r", repo, "backup", src)
	s.ok("-r", repo, "check", "--read-data")
	target := filepath.Join(s.dir, "restore")
	s.ok("-r", repo, "restore", "latest", "--target", target)
	if fileHash(t, filepath.Join(target, src, "f")) != fileHash(t, filepath.Join(src, "f")) {
		t.Fatal("restored file differs")
	}

	// Another machine, with only a copy of the owner key file.
	other := map[string]string{"XDG_CONFIG_HOME": filepath.Join(s.dir, "other-config"), "XDG_CACHE_HOME": filepath.Join(s.dir, "other-cache")}
	r = s.runWith(other, "-r", repo, "snapshots")
	if r.code == 0 {
		t.Fatal("a machine without the owner key opened the repository")
	}
	target2 := filepath.Join(s.dir, "restore2")
	r = s.runWith(other, "-r", repo, "--key-file", held[0], "restore", "latest", "--target", target2)
	if r.code != 0 {
		t.Fatalf("restore with a copied key file: %s", r.stderr)
	}
	if fileHash(t, filepath.Join(target2, src, "f")) != fileHash(t, filepath.Join(src, "f")) {
		t.Fatal("restored file differs on the other machine")
	}
}
