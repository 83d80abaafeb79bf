package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Load implements backend.Backend with a ranged GET.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("s3: load %v: %w", h, err)
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("s3: load %v: negative range %d+%d", h, offset, length)
	}
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
			return b.loadPastEnd(ctx, h, length, offset, fn)
		}
		return b.classify("load "+h.String(), err)
	}
	defer body.Close()
	want := info.Size // the length of this response's body
	if length > 0 && want < int64(length) {
		return fmt.Errorf("s3: load %v: %d bytes at %d run past the end: %w", h, length, offset, io.ErrUnexpectedEOF)
	}
	if err := fn(&exactReader{r: body, left: want}); err != nil {
		return err
	}
	return nil
}

// loadPastEnd handles a range the server refused as starting at or past the
// end: reading the empty tail of a file is fine, anything else is short.
func (b *Backend) loadPastEnd(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	fi, err := b.Stat(ctx, h)
	if err != nil {
		return err
	}
	if length == 0 && offset == fi.Size {
		return fn(strings.NewReader(""))
	}
	return fmt.Errorf("s3: load %v: range %d+%d of %d bytes: %w", h, offset, length, fi.Size, io.ErrUnexpectedEOF)
}

// exactReader fails with io.ErrUnexpectedEOF if the body ends early, as a
// connection dropped mid-response would.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
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
		fi, err := b.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"})
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
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
