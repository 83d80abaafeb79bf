package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

const (
	dirMode  = 0o700
	fileMode = 0o444 // stored files are immutable; the owner can still read them
	tmpGlob  = ".tmp-*"
)

// Backend is a repository in a local directory.
type Backend struct {
	dir string
	sys sysOps
}

var _ backend.Backend = (*Backend)(nil)

// sysOps are the system calls tests replace to reach fallbacks and failures
// that a healthy ext4 never shows.
type sysOps struct {
	renameNoReplace func(oldpath, newpath string) error
	link            func(oldpath, newpath string) error
	// wrapWriter, when set, wraps the temporary file's writer.
	wrapWriter func(io.Writer) io.Writer
	now        func() time.Time
}

func newBackend(dir string) *Backend {
	return &Backend{
		dir: filepath.Clean(dir),
		sys: sysOps{renameNoReplace: renameNoReplace, link: os.Link, now: time.Now},
	}
}

// Open opens the repository in dir, which must hold a config file.
func Open(dir string) (*Backend, error) {
	fi, err := os.Stat(filepath.Join(dir, "config"))
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil, fmt.Errorf("local: no repository at %s (it has no config file): %w", dir, backend.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("local: open repository at %s: %w", dir, classify(err))
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("local: no repository at %s (its config is not a regular file): %w", dir, backend.ErrNotFound)
	}
	return newBackend(dir), nil
}

// Create makes the directory layout of a new repository in dir and returns
// a backend for it; the caller then saves the config. dir may be missing or
// empty; it may also hold the bare layout of an earlier Create that was
// interrupted before a config was saved. Anything else is refused: an
// existing repository with backend.ErrExists, a directory holding other files
// with a plain error.
func Create(ctx context.Context, dir string) (*Backend, error) {
	b := newBackend(dir)
	if err := b.create(ctx); err != nil {
		return nil, fmt.Errorf("local: create repository at %s: %w", dir, err)
	}
	return b, nil
}

// Location returns the repository directory.
func (b *Backend) Location() string { return b.dir }

// Properties implements backend.Backend.
func (b *Backend) Properties() backend.Properties {
	return backend.Properties{Connections: 4, Location: b.dir}
}

// Close implements backend.Backend; a local backend holds no resources.
func (b *Backend) Close() error { return nil }

// dirOf is the directory holding h.
func (b *Backend) dirOf(h backend.Handle) string {
	switch h.Type {
	case backend.Config:
		return b.dir
	case backend.Data:
		return filepath.Join(b.dir, string(backend.Data), h.Name[:2])
	}
	return filepath.Join(b.dir, string(h.Type))
}

// path is where h lives; h must be valid.
func (b *Backend) path(h backend.Handle) string {
	if h.Type == backend.Config {
		return filepath.Join(b.dir, "config")
	}
	return filepath.Join(b.dirOf(h), h.Name)
}

// classify maps filesystem errors to backend sentinels, keeping the original
// (with its path) in the chain.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", backend.ErrNoSpace, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w: %w", backend.ErrPermission, err)
	}
	return err
}

// syncDir fsyncs a directory so that names created or removed in it are
// durable. Filesystems that cannot sync directories say EINVAL or ENOTSUP;
// there is nothing better to do on them.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return classify(err)
	}
	err = d.Sync()
	d.Close()
	if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return classify(err)
	}
	return nil
}
