package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIHandler(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(newCLIHandler(&b, slog.LevelWarn)).With("repo", "/srv/b")
	l.Info("hidden")
	l.Warn("skipping a key file", "file", "keys/ab\x1b[2J")
	if got, want := b.String(), "cairn: warning: skipping a key file (repo=/srv/b, file=keys/ab\\x1b[2J)\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestWarningsNotDuplicated: a path that cannot be backed up is reported
// once, as a "cairn: warning:" line, with no structured log line
// (time=… level=WARN) beside it.
func TestWarningsNotDuplicated(t *testing.T) {
	c := newCLI(t)
	src := filepath.Join(c.dir, "src")
	tree(t, src, map[string]string{"ok": "1"})
	c.ok("init")
	missing := filepath.Join(c.dir, "no-such-dir")
	for _, v := range []string{"-q", "-v"} {
		r := c.run("backup", v, src, missing)
		if r.code != exitPartial || strings.Count(r.stderr, "no-such-dir") != 1 || strings.Contains(r.stderr, "level=") {
			t.Fatalf("backup %s: exit %d, stderr:\n%s", v, r.code, r.stderr)
		}
	}
}
