//go:build linux

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var cairnBin string

// TestMain builds the cairn binary the tests run, or takes the one
// $CAIRN_E2E_BIN names. `make cover` passes a `go build -cover` binary and
// $CAIRN_E2E_GOCOVERDIR, where it is to write its coverage: go test sets
// GOCOVERDIR for the test binary to a directory of its own, so the
// binary's is set here.
func TestMain(m *testing.M) {
	if dir := os.Getenv("CAIRN_E2E_GOCOVERDIR"); dir != "" {
		os.Setenv("GOCOVERDIR", dir)
	}
	if bin := os.Getenv("CAIRN_E2E_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cairnBin = abs
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "cairn-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cairnBin = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", cairnBin, "github.com/cairnbackup/cairn/cmd/cairn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cairn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one user's setup: a repository, a password file and a cache.
type env struct {
	t    *testing.T
	dir  string
	repo string
	vars map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, repo: filepath.Join(dir, "repo")}
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars = map[string]string{
		"CAIRN_REPOSITORY":    e.repo,
		"CAIRN_PASSWORD_FILE": pw,
		"XDG_CACHE_HOME":      filepath.Join(dir, "cache"),
		"HOME":                dir,
	}
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) command(extra map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(cairnBin, args...)
	var vars []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			vars = append(vars, kv)
		}
	}
	for k, v := range e.vars {
		vars = append(vars, k+"="+v)
	}
	for k, v := range extra {
		vars = append(vars, k+"="+v)
	}
	cmd.Env = vars
	return cmd
}

// runWith runs cairn with extra environment variables.
func (e *env) runWith(extra map[string]string, args ...string) result {
	e.t.Helper()
	cmd := e.command(extra, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return exitResult(e.t, cmd.Run(), out.String(), errb.String())
}

// exitResult is the result of a finished cairn whose run or wait returned
// err: a non-zero exit is its code; an error that is no exit (it did not
// start) fails the test.
func exitResult(t testing.TB, err error, stdout, stderr string) result {
	t.Helper()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cairn: %v", err)
	}
	return result{stdout, stderr, code}
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runWith(nil, args...)
}

// ok runs cairn and fails the test unless it exits 0.
func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("cairn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func expectExit(t *testing.T, r result, code int, stderrHas string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "cairn: ") || !strings.Contains(r.stderr, stderrHas) {
		t.Fatalf("stderr %q: want a \"cairn: \" message containing %q", r.stderr, stderrHas)
	}
}

// lastJSON decodes the last line of out.
func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("decode %q: %v", lines[len(lines)-1], err)
	}
}

type snapJSON struct {
	ID      string   `json:"id"`
	ShortID string   `json:"short_id"`
	Time    string   `json:"time"`
	Host    string   `json:"host"`
	Paths   []string `json:"paths"`
	Tags    []string `json:"tags"`
	Tree    string   `json:"tree"`
	Seq     uint64   `json:"seq"`
}

func (e *env) snapshots() []snapJSON {
	e.t.Helper()
	var s []snapJSON
	lastJSON(e.t, e.ok("snapshots", "--json").stdout, &s)
	return s
}

// listing returns every file below dir with its size: a repository's
// state, to show that a command wrote nothing.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %v", p, fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func writeRandom(t *testing.T, path string, size int) {
	t.Helper()
	buf := make([]byte, size)
	rand.Read(buf)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(buf)
}

// contentHashes maps every regular file below root (relative path) to its
// SHA-256.
func contentHashes(t *testing.T, root string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out[rel] = fileHash(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
