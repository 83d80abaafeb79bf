//go:build linux

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnbackup/cairn/internal/minioserver"
)

// startCairnServerOnS3 runs `cairn server init --storage LOC` and then
// `cairn server run` without --storage: the run finds the storage in the
// server's state.
func startCairnServerOnS3(t *testing.T, loc string) *serverEnv {
	t.Helper()
	return runCairnServer(t, "--storage", loc)
}

// bucketKeys lists the object keys under prefix.
func bucketKeys(t *testing.T, srv *minioserver.Server, bucket, prefix string) []string {
	t.Helper()
	c, err := minio.New(srv.Addr(), &minio.Options{Creds: credentials.NewStaticV4(minioserver.AccessKey, minioserver.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for o := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// TestServerOnS3: the core of the server tests (a cairn client and a
// restic 0.14 client backing up, checking and restoring over rest:) against
// a server whose storage is a real MinIO; every file lands in the bucket
// under <prefix>/<client>/<repo>/, none in the data directory.
func TestServerOnS3(t *testing.T) {
	minio := minioserver.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", minioserver.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", minioserver.SecretKey)
	s := startCairnServerOnS3(t, "s3:"+minio.Endpoint()+"/cairn-server/site1")

	// A cairn client.
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "f"), 3<<20)
	repo := s.url("bob", "laptop")
	s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t))
	s.ok("-r", repo, "backup", src)
	s.ok("-r", repo, "check", "--read-data")
	target := filepath.Join(s.dir, "restore")
	s.ok("-r", repo, "restore", "latest", "--target", target)
	if fileHash(t, filepath.Join(target, src, "f")) != fileHash(t, filepath.Join(src, "f")) {
		t.Fatal("restored file differs")
	}
	keys := bucketKeys(t, minio, "cairn-server", "site1/bob/laptop/")
	if !contains(keys, "site1/bob/laptop/config") || countPrefix(keys, "site1/bob/laptop/data/") == 0 || countPrefix(keys, "site1/bob/laptop/snapshots/") != 1 {
		t.Fatalf("bucket after a cairn backup: %v", keys)
	}

	// A restic client.
	if _, err := exec.LookPath("restic"); err == nil {
		ctx := context.Background()
		rsrc := filepath.Join(s.dir, "rsrc")
		os.MkdirAll(filepath.Join(rsrc, "sub"), 0o755)
		writeRandom(t, filepath.Join(rsrc, "big"), 5<<20)
		writeRandom(t, filepath.Join(rsrc, "sub", "small"), 1000)
		url := s.url("alice", "restic")
		for _, args := range [][]string{{"init"}, {"backup", rsrc}, {"check", "--read-data"}, {"restore", "latest", "--target", filepath.Join(s.dir, "rrestore")}} {
			if out, err := restic(t, ctx, "restic", s.dir, url, args...); err != nil {
				t.Fatalf("restic %s: %v\n%s", args[0], err, out)
			}
		}
		for _, f := range []string{"big", "sub/small"} {
			if fileHash(t, filepath.Join(s.dir, "rrestore", rsrc, f)) != fileHash(t, filepath.Join(rsrc, f)) {
				t.Fatalf("restic restored %s differently", f)
			}
		}
		// Append-only holds on S3 too.
		fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if out, err := restic(t, fctx, "restic", s.dir, url, "forget", "latest"); err == nil {
			t.Fatalf("forget in append-only mode succeeded:\n%s", out)
		}
		keys := bucketKeys(t, minio, "cairn-server", "site1/alice/restic/")
		if !contains(keys, "site1/alice/restic/config") || countPrefix(keys, "site1/alice/restic/snapshots/") != 1 {
			t.Fatalf("bucket after a restic backup: %v", keys)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("restic is not installed (.ci/run installs Debian's)")
	} else {
		t.Log("restic is not installed; the restic half is skipped")
	}

	// Nothing went to the data directory.
	if ents, _ := os.ReadDir(filepath.Join(s.data, "repos")); len(ents) != 0 {
		t.Fatalf("the data directory holds repositories: %v", ents)
	}
	// The client's usage is measured in the bucket.
	if show := s.ok("server", "client", "show", "bob").stdout; strings.Contains(show, " 0 B") {
		t.Fatalf("client show:\n%s", show)
	}
	// The recorded storage cannot be switched under the repositories.
	r := s.run("server", "run", "--storage", "s3:"+minio.Endpoint()+"/other")
	expectExit(t, r, 1, "cannot move them")
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func countPrefix(ss []string, p string) int {
	n := 0
	for _, x := range ss {
		if strings.HasPrefix(x, p) {
			n++
		}
	}
	return n
}
