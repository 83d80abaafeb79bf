package fsmeta

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Content is a regular file opened to read its content during a backup.
// It works on the raw descriptor, not an *os.File: a backup opens every
// changed file once, and the runtime's poller registration and the extra
// fstat calls of the os package cost more than the reads of a small file.
// Per file the system calls are open, fstat, listxattr, reads, fstat,
// close.
type Content struct {
	fd     int
	path   string
	before snapshot.Node
	blocks int64
}

// OpenContent opens path for reading without following a final symlink,
// without updating its access time where permitted, and without blocking
// if it was swapped for a FIFO; anything but a regular file is refused.
func OpenContent(path string) (*Content, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := openRetry(path, flags|unix.O_NOATIME)
	if err == unix.EPERM {
		fd, err = openRetry(path, flags)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: not a regular file", path)
	}
	return &Content{fd: fd, path: path, before: nodeFromStat(filepath.Base(path), &st), blocks: st.Blocks}, nil
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// Xattrs reads the file's extended attributes as ListXattrs does, through
// the open descriptor: no second path lookup, and certainly this file's.
func (c *Content) Xattrs() ([]snapshot.Xattr, error) {
	return readXattrs(xattrSource{
		path: c.path,
		list: func(b []byte) (int, error) { return unix.Flistxattr(c.fd, b) },
		get:  func(name string, b []byte) (int, error) { return unix.Fgetxattr(c.fd, name, b) },
	})
}

// Before is the file as it was when opened (from fstat).
func (c *Content) Before() snapshot.Node { return c.before }

// Read implements io.Reader.
func (c *Content) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(c.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: c.path, Err: err}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// ReadAt implements io.ReaderAt.
func (c *Content) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for total < len(p) {
		n, err := unix.Pread(c.fd, p[total:], off+int64(total))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, &os.PathError{Op: "read", Path: c.path, Err: err}
		}
		if n == 0 {
			return total, io.EOF
		}
		total += n
	}
	return total, nil
}

// Extents returns the data runs of a sparse file (nil for a dense one), as
// DataExtents does, using the block count from the open.
func (c *Content) Extents() ([]snapshot.Extent, error) {
	ext, err := dataExtentsBlocks(c.fd, int64(c.before.Size), c.blocks)
	if err != nil {
		return nil, fmt.Errorf("data extents of %s: %w", c.path, err)
	}
	return ext, nil
}

// After stats the open file again, for Changed(c.Before(), after).
func (c *Content) After() (snapshot.Node, error) {
	var st unix.Stat_t
	if err := unix.Fstat(c.fd, &st); err != nil {
		return snapshot.Node{}, &os.PathError{Op: "fstat", Path: c.path, Err: err}
	}
	return nodeFromStat(filepath.Base(c.path), &st), nil
}

// Close closes the descriptor.
func (c *Content) Close() error { return unix.Close(c.fd) }
