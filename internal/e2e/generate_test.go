//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerateManPages: `cairn generate --man DIR` writes a page for every
// command, each of which groff reads without a warning.
func TestGenerateManPages(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.dir, "man1")
	r := e.ok("generate", "--man", dir)
	if !strings.Contains(r.stdout, "man pages to") {
		t.Fatalf("stdout: %q", r.stdout)
	}
	for _, page := range []string{"cairn.1", "cairn-backup.1", "cairn-restore.1", "cairn-server-client-add.1", "cairn-agent-validate.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), ".SH SYNOPSIS") || !strings.Contains(string(b), ".SH OPTIONS") && page != "cairn.1" {
			t.Errorf("%s lacks its sections:\n%s", page, b)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cairn-backup.1"))
	if !strings.Contains(string(b), `\-\-exclude`) || !strings.Contains(string(b), "GLOBAL OPTIONS") {
		t.Errorf("cairn-backup.1 lacks its flags:\n%s", b)
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Log("groff not installed: pages not rendered")
		return
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	for _, p := range pages {
		out, err := exec.Command(groff, "-k", "-man", "-Tutf8", "-ww", "-z", p).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff on %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
	if r := e.run("generate"); r.code != 1 || !strings.Contains(r.stderr, "pass --man DIR") {
		t.Errorf("generate without a flag: %d %q", r.code, r.stderr)
	}
}
