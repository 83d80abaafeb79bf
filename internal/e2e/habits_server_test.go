//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHabitsServerRefusals: what a client of a cairn server is told, and
// the exit code, when the server refuses: over quota (13), a snapshot
// sooner than --min-interval (14), a disabled client, and an owner key
// file that is not where cairn keeps it.
func TestHabitsServerRefusals(t *testing.T) {
	s := startCairnServer(t)
	fp := s.fingerprint(t)
	s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	for name, flags := range map[string][]string{"carol": {"--quota", "3MiB"}, "dave": {"--min-interval", "1h"}} {
		pw := filepath.Join(s.dir, name+".pass")
		os.WriteFile(pw, []byte(name+"-secret-pw\n"), 0o600)
		s.ok(append([]string{"server", "client", "add", name, "--password-file", pw}, flags...)...)
	}
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "small"), 1000)
	big := filepath.Join(s.dir, "big")
	os.MkdirAll(big, 0o755)
	writeRandom(t, filepath.Join(big, "f"), 6<<20)

	carol := s.url("carol", "main")
	s.ok("-r", carol, "init", "--server-fingerprint", fp)
	r := s.run("-r", carol, "backup", big)
	expectExit(t, r, 13, "quota")

	dave := s.url("dave", "main")
	s.ok("-r", dave, "init", "--server-fingerprint", fp)
	s.ok("-r", dave, "backup", src)
	r = s.run("-r", dave, "backup", src)
	expectExit(t, r, 14, "--min-interval")

	alice := s.url("alice", "main")
	s.ok("-r", alice, "init", "--server-fingerprint", fp)
	s.ok("-r", alice, "backup", src)
	r = s.runWith(map[string]string{"XDG_CONFIG_HOME": filepath.Join(s.dir, "elsewhere")}, "-r", alice, "snapshots")
	expectExit(t, r, 12, "--key-file")
	if !strings.Contains(r.stderr, "keeps no key files") {
		t.Errorf("missing owner key: %s", r.stderr)
	}
	s.ok("server", "client", "disable", "alice")
	r = s.run("-r", alice, "snapshots")
	if r.code == 0 || !strings.Contains(r.stderr, "client alice is disabled") {
		t.Fatalf("disabled client: exit %d\n%s", r.code, r.stderr)
	}
}
