package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

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

// user runs the cairn binary with a repository in MinIO.
type user struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

func newUser(t *testing.T, srv *minioserver.Server, repo string) *user {
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	return &user{t: t, bin: cairn(t), dir: dir, env: append(srv.Env(),
		"CAIRN_REPOSITORY="+repo,
		"CAIRN_PASSWORD_FILE="+pw,
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HOME="+dir,
		"PATH="+os.Getenv("PATH"),
	)}
}

func (u *user) command(extra []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(u.bin, args...)
	cmd.Env = append(append([]string(nil), u.env...), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func (u *user) run(extra []string, args ...string) (string, string, error) {
	cmd, stdout, stderr := u.command(extra, args...)
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func (u *user) ok(args ...string) string {
	u.t.Helper()
	out, errOut, err := u.run(nil, args...)
	if err != nil {
		u.t.Fatalf("cairn %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// TestEndToEnd runs init, backup, restore and check of the real binary
// against a repository in MinIO.
func TestEndToEnd(t *testing.T) {
	srv := minioserver.Start(t)
	repo := "s3:" + srv.Endpoint() + "/e2e-bucket/repos/laptop"
	u := newUser(t, srv, repo)
	dir, run, ok := u.dir, u.run, u.ok

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

// TestBackupThroughRestart kills MinIO while the binary backs up and starts
// it again a second later: the backup retries through, or fails cleanly;
// either way check passes afterwards and a restore is exact.
func TestBackupThroughRestart(t *testing.T) {
	srv := minioserver.Start(t)
	repo := "s3:" + srv.Endpoint() + "/restart/repo"
	u := newUser(t, srv, repo)
	src := filepath.Join(u.dir, "src")
	files := map[string][]byte{}
	for i := range 24 {
		data := make([]byte, 4<<20)
		rand.Read(data)
		files[fmt.Sprintf("f%02d", i)] = data
	}
	os.MkdirAll(src, 0o755)
	for name, data := range files {
		os.WriteFile(filepath.Join(src, name), data, 0o644)
	}
	u.ok("init")

	cmd, stdout, stderr := u.command(nil, "backup", src)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait for the first packs to land, then take the server away.
	deadline := time.Now().Add(60 * time.Second)
	for countObjects(t, srv, "restart", "repo/data/") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no pack reached MinIO in 60s")
		}
		select {
		case err := <-done:
			t.Fatalf("backup finished before the outage (%v); make the source bigger\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	srv.Stop()
	time.Sleep(time.Second)
	srv.Start()
	err := <-done
	t.Logf("backup through a restart: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	if err != nil {
		// Failing is allowed, if cleanly: the next backup completes.
		u.ok("backup", src)
	}
	u.ok("check")
	target := filepath.Join(u.dir, "restore")
	u.ok("restore", "latest", "--target", target)
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(target, src, name))
		if err != nil {
			got, err = os.ReadFile(filepath.Join(target, "src", name))
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("restored %s: %d bytes, %v", name, len(got), err)
		}
	}
}

func countObjects(t *testing.T, srv *minioserver.Server, bucket, prefix string) int {
	c, err := minio.New(srv.Addr(), &minio.Options{Creds: credentials.NewStaticV4(minioserver.AccessKey, minioserver.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n := 0
	for obj := range c.ListObjectsIter(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err == nil {
			n++
		}
	}
	return n
}
