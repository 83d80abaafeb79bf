package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Load implements backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("local: load %v: %w", h, err)
	}
	if err := b.load(ctx, h, length, offset, fn); err != nil {
		return fmt.Errorf("local: load %v: %w", h, err)
	}
	return nil
}

func (b *Backend) load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if length < 0 || offset < 0 {
		return fmt.Errorf("invalid range: length %d, offset %d", length, offset)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return backend.ErrNotFound
	}
	if err != nil {
		return classify(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return classify(err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	size := fi.Size()
	end := size
	if length > 0 {
		end = offset + int64(length)
	}
	if offset > size || end > size {
		return fmt.Errorf("range %d+%d runs past the file's %d bytes: %w", offset, length, size, io.ErrUnexpectedEOF)
	}
	// A file that shrank under us reads as io.ErrUnexpectedEOF, never as a
	// short clean one.
	return fn(&fileRange{Reader: backend.ExactReader(io.NewSectionReader(f, offset, end-offset), end-offset),
		f: f, off: offset, n: end - offset})
}

// fileRange is a range of an open file, read exactly (backend.ExactReader).
// Copied whole into a writer that takes readers (an HTTP response, a
// network connection: io.ReaderFrom), it hands over the file itself, so
// the kernel may send it without copying it through the process
// (sendfile); a file that turns out short is io.ErrUnexpectedEOF there
// too.
type fileRange struct {
	io.Reader // the range, exactly
	f         *os.File
	off, n    int64
}

// Remaining is how many bytes are left to read (see backend.LoadAll).
func (r *fileRange) Remaining() int64 {
	if rr, ok := r.Reader.(interface{ Remaining() int64 }); ok {
		return rr.Remaining()
	}
	return -1
}

func (r *fileRange) WriteTo(w io.Writer) (int64, error) {
	rf, ok := w.(io.ReaderFrom)
	if !ok || r.Remaining() != r.n {
		return io.Copy(struct{ io.Writer }{w}, r.Reader) // part read already, or no ReadFrom: copy
	}
	r.Reader = backend.ExactReader(eof{}, 0) // whatever happens, read once
	if _, err := r.f.Seek(r.off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := rf.ReadFrom(&io.LimitedReader{R: r.f, N: r.n})
	if err == nil && n < r.n {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := backend.ValidName(h); err != nil {
		return backend.FileInfo{}, fmt.Errorf("local: stat %v: %w", h, err)
	}
	if err := ctx.Err(); err != nil {
		return backend.FileInfo{}, fmt.Errorf("local: stat %v: %w", h, err)
	}
	fi, err := b.stat(h)
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("local: stat %v: %w", h, err)
	}
	return fi, nil
}

func (b *Backend) stat(h backend.Handle) (backend.FileInfo, error) {
	fi, err := os.Lstat(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return backend.FileInfo{}, backend.ErrNotFound
	}
	if err != nil {
		return backend.FileInfo{}, classify(err)
	}
	if !fi.Mode().IsRegular() {
		return backend.FileInfo{}, fmt.Errorf("%s is not a regular file", b.path(h))
	}
	return backend.FileInfo{Handle: h, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List implements backend.Backend. It reports only regular files whose
// names are valid for t (so never a temporary file or a stray), and for data
// only files in the shard their name belongs to; missing directories are
// empty. fn may remove the file it is given.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if !backend.ValidType(t) {
		return fmt.Errorf("local: list %q: %w: unknown type", t, backend.ErrInvalidName)
	}
	if err := b.list(ctx, t, fn); err != nil {
		return fmt.Errorf("local: list %s: %w", t, err)
	}
	return nil
}

func (b *Backend) list(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch t {
	case backend.Config:
		fi, err := b.stat(backend.Handle{Type: backend.Config, Name: "config"})
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	case backend.Data:
		for i := range 256 {
			s := shard(i)
			if err := listDir(ctx, filepath.Join(b.dir, string(t), s), t, s, fn); err != nil {
				return err
			}
		}
		return nil
	}
	return listDir(ctx, filepath.Join(b.dir, string(t)), t, "", fn)
}

// listDir calls fn for the valid files of type t in dir whose names start
// with prefix, reading the directory in batches so huge ones stay cheap.
func listDir(ctx context.Context, dir string, t backend.FileType, prefix string, fn func(backend.FileInfo) error) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return classify(err)
	}
	defer d.Close()
	for {
		entries, rerr := d.ReadDir(1024)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			h := backend.Handle{Type: t, Name: e.Name()}
			if backend.ValidName(h) != nil || !strings.HasPrefix(h.Name, prefix) || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since the directory was read
			}
			if err != nil {
				return classify(err)
			}
			if !info.Mode().IsRegular() {
				continue
			}
			if err := fn(backend.FileInfo{Handle: h, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return classify(rerr)
		}
	}
}

// Remove implements backend.Backend. The removal is made durable.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("local: remove %v: %w", h, err)
	}
	if err := b.remove(ctx, h); err != nil {
		return fmt.Errorf("local: remove %v: %w", h, err)
	}
	return nil
}

func (b *Backend) remove(ctx context.Context, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := b.stat(h); err != nil {
		return err // not found, or not a regular file: never remove a directory
	}
	err := os.Remove(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return backend.ErrNotFound
	}
	if err != nil {
		return classify(err)
	}
	return syncDir(b.dirOf(h))
}
