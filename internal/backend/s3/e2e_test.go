package s3_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairnbackup/cairn/internal/minioserver"
)

var (
	buildOnce sync.Once
	cairnBin  string
	buildErr  error
)

// cairn builds the real binary once per test run.
func cairn(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-s3-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		cairnBin = filepath.Join(dir, "cairn")
		out, err := exec.Command("go", "build", "-o", cairnBin, "github.com/cairnbackup/cairn/cmd/cairn").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, out}
		}
	})
	if buildErr != nil {
		t.Fatalf("build cairn: %v", buildErr)
	}
	return cairnBin
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// TestEndToEnd runs init, backup, restore and check of the real binary
// against a repository in MinIO.
func TestEndToEnd(t *testing.T) {
	srv := minioserver.Start(t)
	bin := cairn(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	repo := "s3:" + srv.Endpoint() + "/e2e-bucket/repos/laptop"
	env := append(srv.Env(),
		"CAIRN_REPOSITORY="+repo,
		"CAIRN_PASSWORD_FILE="+pw,
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HOME="+dir,
		"PATH="+os.Getenv("PATH"),
	)
	run := func(extra []string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append([]string(nil), env...), extra...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(nil, args...)
		if err != nil {
			t.Fatalf("cairn %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	// Before init: the bucket is missing, and the error says so.
	_, errOut, err := run(nil, "snapshots")
	if err == nil || !strings.Contains(errOut, `bucket "e2e-bucket" does not exist`) {
		t.Fatalf("snapshots before init: %v, stderr %q", err, errOut)
	}

	src := filepath.Join(dir, "src")
	files := map[string][]byte{"a/big": make([]byte, 9<<20), "a/small": []byte("hello\n"), "b/empty": nil}
	for name, data := range files {
		if len(data) > 100 {
			rand.Read(data)
		}
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := ok("init")
	if !strings.Contains(out, repo) {
		t.Errorf("init output does not name the repository: %s", out)
	}
	if _, _, err := run(nil, "init"); err == nil {
		t.Fatal("a second init succeeded")
	}
	ok("backup", src)
	ok("backup", src) // unchanged: dedups against what is in S3
	target := filepath.Join(dir, "restore")
	ok("restore", "latest", "--target", target)
	for name, data := range files {
		matches, _ := filepath.Glob(filepath.Join(target, "*", name))
		if p := filepath.Join(target, src, name); len(matches) == 0 {
			matches = []string{p}
		}
		got, err := os.ReadFile(matches[0])
		if err != nil || !bytes.Equal(got, data) {
			found := []string{}
			filepath.Walk(target, func(p string, _ os.FileInfo, _ error) error { found = append(found, p); return nil })
			t.Fatalf("restored %s: %d bytes, %v (restored tree: %v)", name, len(got), err, found)
		}
	}
	ok("check")

	// Wrong credentials: refused, naming the key but not the secret.
	_, errOut, err = run([]string{"AWS_SECRET_ACCESS_KEY=not-the-secret-at-all"}, "snapshots")
	if err == nil || !strings.Contains(errOut, minioserver.AccessKey) || strings.Contains(errOut, "not-the-secret-at-all") {
		t.Fatalf("snapshots with a wrong secret: %v, stderr %q", err, errOut)
	}
}
