package checker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/s3"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/minioserver"
	"github.com/cairnbackup/cairn/internal/repository"
)

// loadCounter counts whole-file loads of packs.
type loadCounter struct {
	backend.Backend
	mu    sync.Mutex
	whole map[string]int
}

func (l *loadCounter) Load(ctx context.Context, h backend.Handle, length int, off int64, fn func(io.Reader) error) error {
	if h.Type == backend.Data && length == 0 && off == 0 {
		l.mu.Lock()
		l.whole[h.Name]++
		l.mu.Unlock()
	}
	return l.Backend.Load(ctx, h, length, off, fn)
}

// TestReadDataOnS3Multipart: packs uploaded to MinIO by multipart upload
// (their ETags are not SHA-256, nor even MD5 of the object) are verified by
// hashing them as they stream, once each, and a pack whose bytes were
// replaced is caught by its hash.
func TestReadDataOnS3Multipart(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	cfg := s3.Config{Endpoint: srv.Addr(), Bucket: "audit", Prefix: "repo", Region: "us-east-1",
		KeyID: minioserver.AccessKey, Secret: minioserver.SecretKey,
		// S3's smallest part size, so cairn's 16 MiB packs go in parts; a
		// pack above the default 64 MiB part size would the same way.
		PartSize: 5 << 20}
	be, err := s3.Create(ctx, cfg)
	must(t, err)
	opts := repository.Options{KDF: &cheapKDF}
	repo, err := repository.Init(ctx, be, []byte("pw"), opts)
	must(t, err)
	src := t.TempDir()
	big := make([]byte, 40<<20)
	rand.Read(big)
	must(t, os.WriteFile(filepath.Join(src, "big"), big, 0o644))
	_, err = archiver.Backup(ctx, repo, []string{src}, archiver.Options{})
	must(t, err)

	raw, err := minio.New(srv.Addr(), &minio.Options{Creds: credentials.NewStaticV4(minioserver.AccessKey, minioserver.SecretKey, "")})
	must(t, err)
	packs := list(t, be, backend.Data)
	var multipart []backend.FileInfo
	for _, p := range packs {
		info, err := raw.StatObject(ctx, "audit", "repo/data/"+p.Name, minio.StatObjectOptions{})
		must(t, err)
		if strings.Contains(info.ETag, "-") { // "<md5 of part md5s>-<parts>"
			multipart = append(multipart, p)
		}
	}
	if len(multipart) == 0 {
		t.Fatalf("no pack went by multipart upload: %v", packs)
	}

	check := func() (*checker.Report, *loadCounter) {
		lc := &loadCounter{Backend: be, whole: map[string]int{}}
		r, err := repository.Open(ctx, lc, []byte("pw"), opts)
		must(t, err)
		rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
		must(t, err)
		return rep, lc
	}
	rep, lc := check()
	if !rep.OK() {
		t.Fatalf("problems in a sound repository: %v", rep.Problems)
	}
	for _, p := range packs {
		if lc.whole[p.Name] != 1 {
			t.Fatalf("pack %s read whole %d times, want once", p.Name[:12], lc.whole[p.Name])
		}
	}
	if rep.BytesRead < uint64(len(big)) {
		t.Fatalf("read %d bytes, less than the data", rep.BytesRead)
	}

	// Replace a multipart pack's bytes behind cairn's back (one byte
	// flipped near its end, past every blob's first part).
	victim := multipart[0]
	var buf bytes.Buffer
	must(t, be.Load(ctx, victim.Handle, 0, 0, func(rd io.Reader) error { _, err := io.Copy(&buf, rd); return err }))
	b := buf.Bytes()
	b[len(b)/2] ^= 1
	_, err = raw.PutObject(ctx, "audit", "repo/data/"+victim.Name, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{PartSize: 5 << 20})
	must(t, err)
	rep, _ = check()
	if rep.OK() {
		t.Fatal("a replaced pack verified")
	}
	var found bool
	for _, p := range rep.Problems {
		if strings.Contains(p.String(), "hashes to") && strings.Contains(p.String(), victim.Name[:12]) {
			found = true
		}
	}
	if !found {
		t.Fatalf("problems lack the pack's hash mismatch: %v", rep.Problems)
	}
}
