package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs cairn commands in-process: the cobra root command with the
// arguments, standard input and output buffers a test gives, under an
// environment of its own (a repository, a password, a cache below
// t.TempDir). Variables are set with t.Setenv, so such tests are not
// parallel.
type cli struct {
	t    *testing.T
	dir  string
	repo string
}

type cliResult struct {
	stdout, stderr string
	code           int
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	c := &cli{t: t, dir: dir, repo: filepath.Join(dir, "repo")}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "CAIRN_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	t.Setenv("CAIRN_REPOSITORY", c.repo)
	t.Setenv("CAIRN_PASSWORD", "correct horse")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	t.Setenv("HOME", dir)
	return c
}

// runIn runs cairn with stdin as its standard input.
func (c *cli) runIn(stdin io.Reader, args ...string) cliResult {
	c.t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	code := runIO(args, stdin, &out, &errb)
	return cliResult{out.String(), errb.String(), code}
}

func (c *cli) run(args ...string) cliResult {
	c.t.Helper()
	return c.runIn(nil, args...)
}

// ok runs cairn and fails the test unless it exits 0.
func (c *cli) ok(args ...string) cliResult {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("cairn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs cairn and fails the test unless it exits code with a
// "cairn: " message on stderr that contains want.
func (c *cli) fails(code int, want string, args ...string) cliResult {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code || !strings.Contains(r.stderr, "cairn: ") || !strings.Contains(r.stderr, want) {
		c.t.Fatalf("cairn %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, want, r.stdout, r.stderr)
	}
	return r
}

// jsonOf decodes the last line of out into v.
func jsonOf(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("decode %q: %v", lines[len(lines)-1], err)
	}
}

// tree writes files (path relative to root → content) below root.
func tree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type snapshotsJSON []struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Tags  []string `json:"tags"`
	Paths []string `json:"paths"`
}

func (c *cli) snapshots(args ...string) snapshotsJSON {
	c.t.Helper()
	var s snapshotsJSON
	jsonOf(c.t, c.ok(append([]string{"snapshots", "--json"}, args...)...).stdout, &s)
	return s
}

// lsPaths lists a snapshot's paths.
func (c *cli) lsPaths(snap string) []string {
	c.t.Helper()
	return strings.Split(strings.TrimSpace(c.ok("ls", snap).stdout), "\n")
}
