package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/clock"
)

// Options tune the retries; the zero value is usable.
type Options struct {
	Attempts int           // tries in all, including the first; default 6
	Initial  time.Duration // first delay; default 500ms
	Max      time.Duration // longest delay; default 30s
	// Sleep waits d or until ctx ends; default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns the delay actually slept for a nominal d; default a
	// uniform pick in [d/2, d].
	Jitter func(d time.Duration) time.Duration
	Logger *slog.Logger // default discards
}

// Backend retries transient failures of the backend it wraps.
type Backend struct {
	be   backend.Backend
	opts Options
}

var _ backend.Backend = (*Backend)(nil)

// New wraps be.
func New(be backend.Backend, opts Options) *Backend {
	if opts.Attempts < 1 {
		opts.Attempts = 6
	}
	if opts.Initial <= 0 {
		opts.Initial = 500 * time.Millisecond
	}
	if opts.Max <= 0 {
		opts.Max = 30 * time.Second
	}
	if opts.Sleep == nil {
		opts.Sleep = clock.Sleep
	}
	if opts.Jitter == nil {
		opts.Jitter = func(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Backend{be: be, opts: opts}
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backend.Backend { return b.be }

// permanentErr marks an error that must not be retried.
type permanentErr struct{ err error }

func (p permanentErr) Error() string { return p.err.Error() }
func (p permanentErr) Unwrap() error { return p.err }

// Permanent reports whether err is one that no retry can cure.
func Permanent(err error) bool {
	var p permanentErr
	switch {
	case errors.As(err, &p),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, backend.ErrNotFound),
		errors.Is(err, backend.ErrExists),
		errors.Is(err, backend.ErrHashMismatch),
		errors.Is(err, backend.ErrInvalidName),
		errors.Is(err, backend.ErrPermission),
		errors.Is(err, backend.ErrNoSpace),
		errors.Is(err, backend.ErrSequence):
		return true
	}
	return false
}

// do runs op until it succeeds, fails permanently or runs out of attempts.
func (b *Backend) do(ctx context.Context, what string, op func() error) error {
	delay := b.opts.Initial
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || Permanent(err) || ctx.Err() != nil {
			// A permanentErr marker reads and unwraps as the error it
			// marks, with whatever context the backend added around it.
			return err
		}
		if attempt >= b.opts.Attempts {
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempt, err)
		}
		d := b.opts.Jitter(delay)
		b.opts.Logger.Warn("backend operation failed, retrying", "op", what, "attempt", attempt, "delay", d, "err", err)
		if serr := b.opts.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("%s: %w (while waiting to retry after: %v)", what, serr, err)
		}
		delay = min(2*delay, b.opts.Max)
	}
}

// Save implements backend.Backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
	first := true
	return b.do(ctx, "save "+h.String(), func() error {
		if !first {
			if err := rd.Rewind(); err != nil {
				return permanentErr{fmt.Errorf("rewind for retry: %w", err)}
			}
		}
		first = false
		return b.be.Save(ctx, h, &sourceReader{RewindReader: rd})
	})
}

// sourceReader marks the caller's reader errors permanent: a failing source,
// or one that ends before its Length, is not a failing backend.
type sourceReader struct {
	backend.RewindReader
	read int64
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.RewindReader.Read(p)
	s.read += int64(n)
	switch {
	case err == io.EOF && s.read < s.Length():
		err = permanentErr{fmt.Errorf("reader ended after %d of %d bytes: %w", s.read, s.Length(), io.ErrUnexpectedEOF)}
	case err != nil && err != io.EOF:
		err = permanentErr{err}
	}
	return n, err
}

// replacer is the optional config replacement of local, mem and s3.
type replacer interface {
	ReplaceConfig(ctx context.Context, rd backend.RewindReader) error
}

// ReplaceConfig replaces config through the wrapped backend, retrying.
func (b *Backend) ReplaceConfig(ctx context.Context, rd backend.RewindReader) error {
	r, ok := b.be.(replacer)
	if !ok {
		return fmt.Errorf("replace config: %T cannot replace files", b.be)
	}
	first := true
	return b.do(ctx, "replace config", func() error {
		if !first {
			if err := rd.Rewind(); err != nil {
				return permanentErr{fmt.Errorf("rewind for retry: %w", err)}
			}
		}
		first = false
		return r.ReplaceConfig(ctx, &sourceReader{RewindReader: rd})
	})
}

// Load implements backend.Backend. Only failures of the backend's reader are
// retried; an error fn makes up on its own is returned as it is.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if length < 0 || offset < 0 {
		return b.be.Load(ctx, h, length, offset, fn) // a caller's bug: no retry cures it
	}
	return b.do(ctx, "load "+h.String(), func() error {
		var tr *trackReader
		err := b.be.Load(ctx, h, length, offset, func(rd io.Reader) error {
			tr = &trackReader{r: rd}
			return fn(tr)
		})
		switch {
		case err != nil && tr != nil && tr.err == nil:
			// fn returned an error without the storage failing it.
			return permanentErr{err}
		case tr == nil && errors.Is(err, io.ErrUnexpectedEOF):
			// The range runs past the end of the file; a response cut
			// short is seen by fn's reader instead.
			return permanentErr{err}
		}
		return err
	})
}

type trackReader struct {
	r   io.Reader
	err error // the first non-EOF error from r
}

func (t *trackReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (fi backend.FileInfo, err error) {
	err = b.do(ctx, "stat "+h.String(), func() error {
		fi, err = b.be.Stat(ctx, h)
		return err
	})
	return fi, err
}

// List implements backend.Backend; a retry skips files already reported.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	seen := make(map[backend.Handle]bool)
	return b.do(ctx, "list "+string(t), func() error {
		return b.be.List(ctx, t, func(fi backend.FileInfo) error {
			if seen[fi.Handle] {
				return nil
			}
			seen[fi.Handle] = true
			if err := fn(fi); err != nil {
				return permanentErr{err}
			}
			return nil
		})
	})
}

// Remove implements backend.Backend. A retried Remove whose first attempt
// reached the server may report ErrNotFound; that is reported as success.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	attempts := 0
	return b.do(ctx, "remove "+h.String(), func() error {
		attempts++
		err := b.be.Remove(ctx, h)
		if attempts > 1 && errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		return err
	})
}

// Properties implements backend.Backend.
func (b *Backend) Properties() backend.Properties { return b.be.Properties() }

// Close implements backend.Backend.
func (b *Backend) Close() error { return b.be.Close() }
