package s3

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Load implements backend.Backend with a ranged GET; small reads of a pack
// are served from a block of it (package blockcache).
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("s3: load %v: %w", h, err)
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("s3: load %v: negative range %d+%d", h, offset, length)
	}
	return b.blocks.Load(ctx, h, length, offset, fn, func() error { return b.load(ctx, h, length, offset, fn) })
}

// fetchBlock reads up to n bytes of h from offset, fewer at its end
// (blockcache.FetchFunc).
func (b *Backend) fetchBlock(ctx context.Context, h backend.Handle, offset int64, n int) ([]byte, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(offset, offset+int64(n)-1); err != nil {
		return nil, err
	}
	body, info, _, err := b.core.GetObject(ctx, b.cfg.Bucket, b.key(h), opts)
	if err != nil {
		return nil, b.classify("load "+h.String(), err)
	}
	defer body.Close()
	if info.Size > int64(n) {
		return nil, fmt.Errorf("s3: load %v: %d bytes for a range of %d", h, info.Size, n)
	}
	buf := make([]byte, info.Size)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, fmt.Errorf("s3: load %v: %w", h, err)
	}
	return buf, nil
}

func (b *Backend) load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	var opts minio.GetObjectOptions
	if offset > 0 || length > 0 {
		end := int64(0)
		if length > 0 {
			end = offset + int64(length) - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return fmt.Errorf("s3: load %v: %w", h, err)
		}
	}
	body, info, _, err := b.core.GetObject(ctx, b.cfg.Bucket, b.key(h), opts)
	if err != nil {
		if isCode(err, "InvalidRange") {
			if err := backend.LoadPastEnd(ctx, b, h, length, offset, fn); err != nil {
				return fmt.Errorf("s3: load %v: %w", h, err)
			}
			return nil
		}
		return b.classify("load "+h.String(), err)
	}
	defer body.Close()
	want := info.Size // the length of this response's body
	if length > 0 && want < int64(length) {
		return fmt.Errorf("s3: load %v: %d bytes at %d run past the end: %w", h, length, offset, io.ErrUnexpectedEOF)
	}
	if err := fn(backend.ExactReader(body, want)); err != nil {
		return err
	}
	return nil
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := backend.ValidName(h); err != nil {
		return backend.FileInfo{}, fmt.Errorf("s3: stat %v: %w", h, err)
	}
	info, err := b.client.StatObject(ctx, b.cfg.Bucket, b.key(h), minio.StatObjectOptions{})
	if err != nil {
		return backend.FileInfo{}, b.classify("stat "+h.String(), err)
	}
	return backend.FileInfo{Handle: h, Size: info.Size, ModTime: info.LastModified}, nil
}

// List implements backend.Backend: a paginated listing of prefix/type/.
// Keys that are not valid names of the type (foreign objects, a lease) are
// skipped.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if !backend.ValidType(t) {
		return fmt.Errorf("s3: list %q: %w", t, backend.ErrInvalidName)
	}
	if t == backend.Config {
		return backend.ListConfig(ctx, b, fn)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir := b.prefixed(string(t) + "/")
	for obj := range b.client.ListObjectsIter(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: dir}) {
		if obj.Err != nil {
			return b.classify("list "+string(t), obj.Err)
		}
		h := backend.Handle{Type: t, Name: strings.TrimPrefix(obj.Key, dir)}
		if backend.ValidName(h) != nil {
			continue
		}
		if err := fn(backend.FileInfo{Handle: h, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Remove implements backend.Backend. S3's DELETE succeeds for a missing key,
// so a Stat first tells ErrNotFound apart.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("s3: remove %v: %w", h, err)
	}
	if _, err := b.Stat(ctx, h); err != nil {
		return err
	}
	if err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.key(h), minio.RemoveObjectOptions{}); err != nil {
		return b.classify("remove "+h.String(), err)
	}
	return nil
}
