package s3

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/blockcache"
)

// Backend is a repository under a prefix of an S3 bucket.
type Backend struct {
	cfg    Config
	client *minio.Client
	core   *minio.Core
	tr     *http.Transport
	keyID  string // for error messages; never the secret
	now    func() time.Time

	// noConditional is set once the server refused If-None-Match; Saves
	// then fall back to Stat followed by PUT (see doc.go).
	noConditional atomic.Bool

	// blocks serves small reads of packs (Load): a client's reads of a
	// snapshot's trees. Nil in the backends Sub and WithClock make for a
	// server, which answers each client's read as it is asked.
	blocks *blockcache.Cache
}

var _ backend.Backend = (*Backend)(nil)

const (
	defaultConnections = 5
	defaultPartSize    = 64 << 20
)

func newBackend(cfg Config) (*Backend, error) {
	if cfg.Connections <= 0 {
		cfg.Connections = defaultConnections
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = defaultPartSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	creds := credentials.NewStaticV4(cfg.KeyID, cfg.Secret, cfg.SessionToken)
	if cfg.KeyID == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
		})
	}
	v, err := creds.GetWithContext(&credentials.CredContext{Client: &http.Client{Timeout: 10 * time.Second}})
	if err != nil || v.AccessKeyID == "" {
		return nil, fmt.Errorf("s3 %s: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them to ~/.aws/credentials", cfg.Location())
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, err
	}
	tr.MaxConnsPerHost = cfg.Connections
	tr.MaxIdleConnsPerHost = cfg.Connections
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3: read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	lookup := minio.BucketLookupAuto
	switch cfg.BucketLookup {
	case "path":
		lookup = minio.BucketLookupPath
	case "dns":
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       cfg.Secure,
		Transport:    cfg.Limits.Transport(tr),
		Region:       cfg.Region,
		BucketLookup: lookup,
		// One retry policy, not two stacked: package retry decides.
		MaxRetries: 1,
		// Lets a PUT carry x-amz-checksum-sha256, which the server checks.
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", cfg.Location(), err)
	}
	b := &Backend{cfg: cfg, client: client, core: &minio.Core{Client: client}, tr: tr, keyID: v.AccessKeyID, now: cfg.Now}
	b.blocks = blockcache.New(b.fetchBlock)
	return b, nil
}

// Open opens the repository described by cfg; its bucket must exist and
// hold a config under the prefix.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.checkBucket(ctx); err != nil {
		return nil, err
	}
	if _, err := b.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"}); err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("s3: no repository at %s (it has no config): %w", cfg.Location(), backend.ErrNotFound)
		}
		return nil, err
	}
	return b, nil
}

// Create returns a backend for a new repository, making the bucket if it
// is missing. It fails with backend.ErrExists if a repository is already
// there; the caller then saves the config.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	ok, err := b.client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, b.classify("check bucket "+cfg.Bucket, err)
	}
	if !ok {
		err := b.client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err != nil && !isCode(err, "BucketAlreadyOwnedByYou") {
			return nil, b.classify("create bucket "+cfg.Bucket, err)
		}
	}
	_, err = b.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"})
	switch {
	case err == nil:
		return nil, fmt.Errorf("s3: a repository already exists at %s: %w", cfg.Location(), backend.ErrExists)
	case !errors.Is(err, backend.ErrNotFound):
		return nil, err
	}
	return b, nil
}

func (b *Backend) checkBucket(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.cfg.Bucket)
	if err != nil {
		return b.classify("check bucket "+b.cfg.Bucket, err)
	}
	if !ok {
		return fmt.Errorf("s3: bucket %q does not exist at %s (cairn init creates it): %w", b.cfg.Bucket, b.cfg.Endpoint, backend.ErrNotFound)
	}
	return nil
}

// Properties implements backend.Backend.
func (b *Backend) Properties() backend.Properties {
	return backend.Properties{Connections: b.cfg.Connections, Location: b.cfg.Location()}
}

// Close implements backend.Backend.
func (b *Backend) Close() error {
	b.tr.CloseIdleConnections()
	return nil
}

// key is the object key of h; h must be valid. Data is not sharded: S3
// has no directories to keep small.
func (b *Backend) key(h backend.Handle) string {
	if h.Type == backend.Config {
		return b.prefixed("config")
	}
	return b.prefixed(string(h.Type) + "/" + h.Name)
}

func (b *Backend) prefixed(k string) string {
	if b.cfg.Prefix == "" {
		return k
	}
	return b.cfg.Prefix + "/" + k
}

func isCode(err error, codes ...string) bool {
	code := minio.ToErrorResponse(err).Code
	for _, c := range codes {
		if code == c {
			return true
		}
	}
	return false
}

// classify maps S3 errors to backend sentinels, adding what and keeping the
// provider's error in the chain.
func (b *Backend) classify(what string, err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey":
		return fmt.Errorf("s3: %s: %w", what, backend.ErrNotFound)
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("s3: %s: bucket %q does not exist: %w", what, b.cfg.Bucket, backend.ErrNotFound)
	case resp.Code == "InvalidAccessKeyId":
		return fmt.Errorf("s3: %s: the server does not know access key %q; check AWS_ACCESS_KEY_ID: %w", what, b.keyID, backend.ErrPermission)
	case resp.Code == "SignatureDoesNotMatch":
		return fmt.Errorf("s3: %s: wrong secret for access key %q; check AWS_SECRET_ACCESS_KEY: %w", what, b.keyID, backend.ErrPermission)
	case resp.Code == "AccessDenied" || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("s3: %s: access key %q may not do this (%s): %w", what, b.keyID, resp.Message, backend.ErrPermission)
	case resp.Code == "PreconditionFailed":
		return fmt.Errorf("s3: %s: %w", what, backend.ErrExists)
	case resp.Code == "BadDigest" || resp.Code == "XAmzContentChecksumMismatch" || resp.Code == "XAmzContentSHA256Mismatch":
		return fmt.Errorf("s3: %s: %w (%s)", what, backend.ErrHashMismatch, resp.Message)
	case resp.Code == "XMinioStorageFull" || resp.Code == "QuotaExceeded" || resp.Code == "XMinioAdminBucketQuotaExceeded":
		return fmt.Errorf("s3: %s: %w: %w", what, backend.ErrNoSpace, err)
	case resp.StatusCode == http.StatusNotFound && resp.Code == "":
		return fmt.Errorf("s3: %s: %w", what, backend.ErrNotFound)
	}
	return fmt.Errorf("s3: %s: %w", what, err)
}
