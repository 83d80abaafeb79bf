package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// A Spool takes a content-named file's bytes as they are produced and
// stores them in one pass: it hashes what it is given as it goes, so the
// bytes are neither held twice nor hashed twice. A backup spools each pack
// while it fills it.
type Spool interface {
	// Write appends to the file. Writes are not safe for concurrent use.
	Write(p []byte) (int, error)
	// Size is the number of bytes written so far.
	Size() int64
	// Save stores the bytes under their SHA-256 and returns that name.
	// Like Backend.Save it fails with ErrExists if a file of that name is
	// stored already (the same bytes: callers may treat it as success).
	// The spool is finished after Save, whatever it returns.
	Save(ctx context.Context) (name string, err error)
	// Discard drops the bytes; safe after Save and more than once.
	Discard()
}

// Spooler is a backend with its own spools: the local backend writes a
// spool straight into a temporary file beside the final name, so a pack
// never sits whole in memory.
type Spooler interface {
	Spool(t FileType) (Spool, error)
}

// NewSpool returns a spool for a file of type t on be: be's own if it is
// a Spooler; otherwise one that keeps the bytes in an unlinked temporary
// file in dir, so a backup to S3 or a REST server holds no whole pack in
// memory, as one to a local repository does not; and when dir is empty or
// no file can be made there, one that gathers them in memory (sizeHint is
// their expected size). The last two save with be.Save.
func NewSpool(be Backend, t FileType, sizeHint int, dir string) (Spool, error) {
	if !ContentNamed(t) {
		return nil, errors.New("backend: only content-named files can be spooled")
	}
	if sp, ok := be.(Spooler); ok {
		return sp.Spool(t)
	}
	if dir != "" {
		if sp, err := NewFileSpool(be, t, dir); err == nil {
			return sp, nil
		}
	}
	return &spool{be: be, t: t, buf: make([]byte, 0, sizeHint), hash: sha256.New()}, nil
}

// NewFileSpool returns a spool for a file of type t on be that keeps the
// bytes in a temporary file in dir and saves them with be.Save reading
// that file. The file is unlinked as soon as it is made, so nothing is
// left behind whatever happens to the process.
func NewFileSpool(be Backend, t FileType, dir string) (Spool, error) {
	if !ContentNamed(t) {
		return nil, errors.New("backend: only content-named files can be spooled")
	}
	f, err := os.CreateTemp(dir, "spool-")
	if err != nil {
		return nil, fmt.Errorf("backend: spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("backend: spool: %w", err)
	}
	return &spool{be: be, t: t, f: f, hash: sha256.New()}, nil
}

// spool hashes what it is given and keeps it in f, or in buf when f is nil.
type spool struct {
	be   Backend
	t    FileType
	f    *os.File
	buf  []byte
	n    int64
	hash hash.Hash
	err  error // sticky: the first write error
	done bool
}

func (s *spool) Write(p []byte) (int, error) {
	if s.done {
		return 0, errors.New("backend: write to a finished spool")
	}
	if s.err != nil {
		return 0, s.err
	}
	n := len(p)
	if s.f != nil {
		var err error
		if n, err = s.f.Write(p); err != nil {
			s.err = fmt.Errorf("backend: spool: %w", err)
		}
	} else {
		s.buf = append(s.buf, p...)
	}
	s.hash.Write(p[:n])
	s.n += int64(n)
	return n, s.err
}

func (s *spool) Size() int64 { return s.n }

func (s *spool) Save(ctx context.Context) (string, error) {
	if s.done {
		return "", errors.New("backend: save of a finished spool")
	}
	defer s.Discard()
	if s.err != nil {
		return "", s.err
	}
	var rd RewindReader = NewByteReader(s.buf)
	if s.f != nil {
		rd = &sectionRewinder{sr: io.NewSectionReader(s.f, 0, s.n)}
	}
	name := hex.EncodeToString(s.hash.Sum(nil))
	return name, s.be.Save(ctx, Handle{Type: s.t, Name: name}, rd)
}

func (s *spool) Discard() {
	if s.done {
		return
	}
	s.done, s.buf = true, nil
	if s.f != nil {
		s.f.Close()
	}
}

// sectionRewinder is a RewindReader over a section of a file.
type sectionRewinder struct{ sr *io.SectionReader }

func (r *sectionRewinder) Read(p []byte) (int, error) { return r.sr.Read(p) }
func (r *sectionRewinder) Length() int64              { return r.sr.Size() }
func (r *sectionRewinder) Rewind() error {
	_, err := r.sr.Seek(0, io.SeekStart)
	return err
}
