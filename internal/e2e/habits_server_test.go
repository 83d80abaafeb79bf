//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

	// A restic client retries a 429 for up to 15 minutes; the server
	// answers a restic repository 403 instead, on which restic 0.17 and
	// later give up at once. (0.14 retries every error: it is stopped
	// after 10 s here, and the server's log must show the refusal.)
	for i, bin := range resticBins() {
		path, err := exec.LookPath(bin)
		if err != nil {
			missingTool(t, fmt.Sprintf("restic %q is not installed: %v", bin, err))
		}
		out, _ := exec.Command(path, "version").Output()
		var major, minor int
		f := strings.Fields(string(out)) // restic 0.14.0 compiled with …
		if len(f) < 2 {
			t.Fatalf("%s version: %q", path, out)
		}
		fmt.Sscanf(f[1], "%d.%d", &major, &minor)
		repo := s.url("dave", fmt.Sprintf("restic%d", i))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if out, err := restic(t, ctx, path, s.dir, repo, "init"); err != nil {
			cancel()
			t.Fatalf("%s init: %v\n%s", f[1], err, out)
		}
		bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
		rout, err := restic(t, bctx, path, s.dir, repo, "backup", src)
		quick := bctx.Err() == nil
		bcancel()
		cancel()
		if err == nil {
			t.Fatalf("restic %s stored a snapshot sooner than --min-interval:\n%s", f[1], rout)
		}
		if major > 0 || minor >= 17 {
			if !quick || !strings.Contains(rout, "403") {
				t.Fatalf("restic %s was not refused within 10 s on a 403: %v\n%s", f[1], err, rout)
			}
		}
	}
	if !strings.Contains(s.log(), "may store a snapshot every 1h0m0s") || !strings.Contains(s.log(), "status=403") {
		t.Errorf("the server log does not show the 403 and why:\n%s", s.log())
	}

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
