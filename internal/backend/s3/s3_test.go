package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/backendtest"
	"github.com/cairnbackup/cairn/internal/backend/retry"
	"github.com/cairnbackup/cairn/internal/backend/s3"
	"github.com/cairnbackup/cairn/internal/minioserver"
)

func config(srv *minioserver.Server, bucket, prefix string) s3.Config {
	return s3.Config{
		Endpoint: srv.Addr(),
		Bucket:   bucket,
		Prefix:   prefix,
		Region:   "us-east-1",
		KeyID:    minioserver.AccessKey,
		Secret:   minioserver.SecretKey,
	}
}

func create(t testing.TB, cfg s3.Config) *s3.Backend {
	t.Helper()
	be, err := s3.Create(context.Background(), cfg)
	if err != nil {
		t.Fatalf("create %s: %v", cfg.Location(), err)
	}
	return be
}

func TestSuite(t *testing.T) {
	srv := minioserver.Start(t)
	var n atomic.Int64
	backendtest.RunSuite(t, func(t *testing.T) backend.Backend {
		// A fresh prefix per backend; one bucket with a prefix and one
		// without, so both key layouts run.
		i := n.Add(1)
		if i%2 == 0 {
			return create(t, config(srv, fmt.Sprintf("bare%d", i), ""))
		}
		return create(t, config(srv, "suite", fmt.Sprintf("repos/r%d", i)))
	})
}

// TestSuiteWithRetry runs the suite on the backend as package location
// assembles it, behind the retry decorator with its real delays: a
// permanent error that were retried would make it slow or fail.
func TestSuiteWithRetry(t *testing.T) {
	srv := minioserver.Start(t)
	var n atomic.Int64
	backendtest.RunSuite(t, func(t *testing.T) backend.Backend {
		return retry.New(create(t, config(srv, "suite", fmt.Sprintf("r%d", n.Add(1)))), retry.Options{})
	})
}

// TestSuiteTLS runs the suite over https, where minio-go signs and
// checksums requests differently than over http.
func TestSuiteTLS(t *testing.T) {
	srv := minioserver.StartTLS(t)
	var n atomic.Int64
	backendtest.RunSuite(t, func(t *testing.T) backend.Backend {
		cfg := config(srv, "suite", fmt.Sprintf("r%d", n.Add(1)))
		cfg.Secure, cfg.CAFile = true, srv.CAFile()
		return create(t, cfg)
	})
}

func TestMultipart(t *testing.T) {
	srv := minioserver.Start(t)
	cfg := config(srv, "multi", "p")
	cfg.PartSize = 5 << 20 // S3's smallest part
	be := create(t, cfg)
	ctx := context.Background()
	data := make([]byte, 11<<20+17)
	rand.Read(data)
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}

	// A damaged byte in the last part: the upload is aborted before
	// completion and nothing is visible.
	bad := bytes.Clone(data)
	bad[len(bad)-3] ^= 1
	if err := be.Save(ctx, h, backend.NewByteReader(bad)); !errors.Is(err, backend.ErrHashMismatch) {
		t.Fatalf("multipart save of damaged bytes: got %v, want ErrHashMismatch", err)
	}
	if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("after refused multipart save: stat got %v, want ErrNotFound", err)
	}

	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatalf("multipart save: %v", err)
	}
	if etag, err := objectETag(srv, "multi", "p/data/"+h.Name); err != nil || !strings.HasSuffix(etag, "-3") {
		t.Fatalf("ETag %q, %v: want a 3-part multipart upload", etag, err)
	}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("second multipart save: got %v, want ErrExists", err)
	}
	var got []byte
	err := be.Load(ctx, h, 1000, 6<<20, func(rd io.Reader) error {
		var err error
		got, err = io.ReadAll(rd)
		return err
	})
	if err != nil || !bytes.Equal(got, data[6<<20:6<<20+1000]) {
		t.Fatalf("ranged load across parts: %v, %d bytes", err, len(got))
	}
}

// TestSinglePut: below PartSize a file is one PUT, whose ETag is a plain
// MD5, not the "-N" of a multipart upload.
func TestSinglePut(t *testing.T) {
	srv := minioserver.Start(t)
	be := create(t, config(srv, "single", ""))
	ctx := context.Background()
	data := make([]byte, 40<<20)
	rand.Read(data)
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	etag, err := objectETag(srv, "single", "data/"+h.Name)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(etag, "-") {
		t.Fatalf("a 40 MiB file went by multipart upload (ETag %s)", etag)
	}
}

func TestReplaceConfig(t *testing.T) {
	srv := minioserver.Start(t)
	be := create(t, config(srv, "replace", ""))
	ctx := context.Background()
	h := backend.Handle{Type: backend.Config, Name: "config"}
	for _, v := range []string{"v1", "v2"} {
		if err := be.ReplaceConfig(ctx, backend.NewByteReader([]byte(v))); err != nil {
			t.Fatal(err)
		}
		if got, err := backend.LoadAll(ctx, be, h); err != nil || string(got) != v {
			t.Fatalf("after replace with %s: %q, %v", v, got, err)
		}
	}
}

func TestOpen(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	cfg := config(srv, "open", "repo")

	// No bucket: a clear not-found naming the bucket.
	_, err := s3.Open(ctx, cfg)
	if !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), `bucket "open" does not exist`) {
		t.Fatalf("open without bucket: %v", err)
	}
	// Bucket without a repository.
	be := create(t, cfg)
	if _, err := s3.Open(ctx, cfg); !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), "no repository") {
		t.Fatalf("open without config: %v", err)
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, backend.NewByteReader([]byte("c"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.Open(ctx, cfg); err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := s3.Create(ctx, cfg); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("create over a repository: got %v, want ErrExists", err)
	}
	// Another prefix in the same bucket is another repository.
	other := cfg
	other.Prefix = "repo2"
	if _, err := s3.Create(ctx, other); err != nil {
		t.Fatalf("create beside a repository: %v", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	create(t, config(srv, "creds", ""))
	for _, c := range []struct{ name, key, secret, want string }{
		{"unknown key", "nosuchkey", "whatever-secret", `access key "nosuchkey"`},
		{"wrong secret", minioserver.AccessKey, "not-the-secret", "wrong secret for access key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(srv, "creds", "")
			cfg.KeyID, cfg.Secret = c.key, c.secret
			for _, op := range []func() error{
				func() error { _, err := s3.Open(ctx, cfg); return err },
				func() error { _, err := s3.Create(ctx, cfg); return err },
			} {
				err := op()
				if !errors.Is(err, backend.ErrPermission) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want ErrPermission mentioning %s", err, c.want)
				}
				if strings.Contains(err.Error(), c.secret) {
					t.Fatalf("error %q reveals the secret", err)
				}
			}
		})
	}
}

func TestMissingCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	_, err := s3.Open(context.Background(), s3.Config{Endpoint: "127.0.0.1:1", Bucket: "b"})
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("got %v, want a hint at AWS_ACCESS_KEY_ID", err)
	}
}

func TestBucketRemoved(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	be := create(t, config(srv, "gone", ""))
	data := []byte("x")
	h := backend.Handle{Type: backend.Keys, Name: backend.NameOf(data)}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := removeBucket(srv, "gone"); err != nil {
		t.Fatal(err)
	}
	err := be.Save(ctx, h, backend.NewByteReader(data))
	if !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), `bucket "gone" does not exist`) {
		t.Fatalf("save into removed bucket: %v", err)
	}
}

// TestCustomCA: https to a server with a private CA works with Config.CAFile
// and fails without it.
func TestCustomCA(t *testing.T) {
	srv := minioserver.StartTLS(t)
	ctx := context.Background()
	cfg := config(srv, "tls", "")
	cfg.Secure = true
	if _, err := s3.Create(ctx, cfg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("create without the CA: got %v, want a certificate error", err)
	}
	cfg.CAFile = srv.CAFile()
	be := create(t, cfg)
	data := []byte("over tls")
	h := backend.Handle{Type: backend.Keys, Name: backend.NameOf(data)}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatalf("save over https: %v", err)
	}
	if got, err := backend.LoadAll(ctx, be, h); err != nil || string(got) != string(data) {
		t.Fatalf("load over https: %q, %v", got, err)
	}
	// A content-named PUT over https carries the checksum header, and a
	// config PUT gets minio-go's own trailing checksum: both accepted.
	if err := be.Save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, backend.NewByteReader([]byte("cfg"))); err != nil {
		t.Fatalf("save config over https: %v", err)
	}
}
