package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// What remote stores (REST, S3) share in serving Load and List: they read
// a range with one request, and keep the config as one plain file.

// ExactReader reads r, which should hold n more bytes, and turns an early
// end into io.ErrUnexpectedEOF, as a connection dropped mid-response
// gives; it reads nothing past n. n < 0: the length is not known, and r
// is read as it is.
func ExactReader(r io.Reader, n int64) io.Reader { return &exactReader{r: r, left: n} }

type exactReader struct {
	r    io.Reader
	left int64 // -1: unknown
}

// Remaining is how many bytes are left to read, -1 if unknown.
func (e *exactReader) Remaining() int64 { return e.left }

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	if e.left > 0 && int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	if e.left > 0 {
		e.left -= int64(n)
		if err == io.EOF && e.left > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// LoadPastEnd finishes a ranged Load that the store refused as starting at
// or past the end of the file (HTTP 416): the empty range at the very end
// of the file is read as empty; any other is short (io.ErrUnexpectedEOF).
// be is the store itself, asked for the file's size.
func LoadPastEnd(ctx context.Context, be Backend, h Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	fi, err := be.Stat(ctx, h)
	if err != nil {
		return err
	}
	if length == 0 && offset == fi.Size {
		return fn(strings.NewReader(""))
	}
	return fmt.Errorf("range %d+%d runs past the file's %d bytes: %w", offset, length, fi.Size, io.ErrUnexpectedEOF)
}

// ListConfig lists the config type of a store that keeps the config as
// the one file named "config": it is there or not.
func ListConfig(ctx context.Context, be Backend, fn func(FileInfo) error) error {
	fi, err := be.Stat(ctx, Handle{Type: Config, Name: "config"})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return fn(fi)
}
