package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cairnbackup/cairn/internal/backend"
)

// createdMarker is the object that marks a repository as created before
// its config exists (a server's create); see Exists.
const createdMarker = "created"

// Connect returns a backend for cfg's bucket and prefix that needs no
// repository there: the root of a server's storage, whose repositories are
// Sub backends. With create a missing bucket is made, else it is an error.
func Connect(ctx context.Context, cfg Config, create bool) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	if !create {
		return b, b.checkBucket(ctx)
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
	return b, nil
}

// Sub returns the backend of the repository under b's prefix + "/" + sub,
// sharing b's client and connections (so b's connection limit bounds them
// all). sub is a slash-separated path of non-empty segments, none "." or
// "..".
func (b *Backend) Sub(sub string) (*Backend, error) {
	for seg := range strings.SplitSeq(sub, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return nil, fmt.Errorf("s3: invalid sub-prefix %q", sub)
		}
	}
	cfg := b.cfg
	cfg.Prefix = b.prefixed(sub)
	return &Backend{cfg: cfg, client: b.client, core: b.core, tr: b.tr, keyID: b.keyID, now: b.now}, nil
}

// MarkCreated records that a repository exists under the prefix although
// its config is not written yet: the REST protocol creates a repository
// first and fills it later, possibly through another server.
func (b *Backend) MarkCreated(ctx context.Context) error {
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, b.prefixed(createdMarker), bytes.NewReader(nil), 0, minio.PutObjectOptions{})
	return b.classify("mark repository created", err)
}

// Exists reports whether a repository is under the prefix: it has a config
// or was marked created.
func (b *Backend) Exists(ctx context.Context) (bool, error) {
	for _, k := range []string{b.key(backend.Handle{Type: backend.Config, Name: "config"}), b.prefixed(createdMarker)} {
		_, err := b.client.StatObject(ctx, b.cfg.Bucket, k, minio.StatObjectOptions{})
		if err == nil {
			return true, nil
		}
		if err := b.classify("stat "+k, err); !errors.Is(err, backend.ErrNotFound) {
			return false, err
		}
	}
	return false, nil
}

// Usage sums the sizes of every object under the prefix + "/" + sub (the
// whole prefix if sub is empty).
func (b *Backend) Usage(ctx context.Context, sub string) (int64, error) {
	p := b.cfg.Prefix
	if sub != "" {
		p = b.prefixed(sub)
	}
	if p != "" {
		p += "/"
	}
	var n int64
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
		if obj.Err != nil {
			return 0, b.classify("list "+p, obj.Err)
		}
		n += obj.Size
	}
	return n, nil
}

// RemoveAll deletes every object under prefix + "/" + sub, a whole
// subtree (a server's client). sub must not be empty: the backend's own
// prefix is never removed this way.
func (b *Backend) RemoveAll(ctx context.Context, sub string) error {
	if sub == "" || strings.Contains(sub, "..") || strings.HasPrefix(sub, "/") {
		return fmt.Errorf("s3: remove all under %q: not a subtree", sub)
	}
	p := b.prefixed(sub) + "/"
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
		if obj.Err != nil {
			return b.classify("list "+p, obj.Err)
		}
		if err := b.client.RemoveObject(ctx, b.cfg.Bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
			return b.classify("remove "+obj.Key, err)
		}
	}
	return nil
}

// WithClock returns b with another clock for its leases (a server passes
// its own, so tests can move time).
func (b *Backend) WithClock(now func() time.Time) *Backend {
	return &Backend{cfg: b.cfg, client: b.client, core: b.core, tr: b.tr, keyID: b.keyID, now: now}
}

// Repositories lists the repositories under prefix + "/" + sub, sorted:
// the prefixes holding a config or a created marker, relative to the
// backend's prefix. It lists every object under sub, so it is for rare
// requests (creating a repository, a daily audit that reads them all
// anyway).
func (b *Backend) Repositories(ctx context.Context, sub string) ([]string, error) {
	p := b.prefixed(sub) + "/"
	root := b.prefixed("")
	repos := map[string]bool{}
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
		if obj.Err != nil {
			return nil, b.classify("list "+p, obj.Err)
		}
		for _, leaf := range []string{"/config", "/" + createdMarker} {
			if dir, ok := strings.CutSuffix(obj.Key, leaf); ok {
				repos[strings.TrimPrefix(dir, root)] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(repos)), nil
}
