package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Spool implements backend.Spooler: the bytes go straight into a
// temporary file in the type's directory and are hashed as they are
// written; Save then does what Save does after its copy (read-only, fsync,
// move without replacing, directory fsync). A pack is written and hashed
// once and never held whole in memory.
func (b *Backend) Spool(t backend.FileType) (backend.Spool, error) {
	if !backend.ValidType(t) || !backend.ContentNamed(t) {
		return nil, fmt.Errorf("local: spool for %q: %w", t, backend.ErrInvalidName)
	}
	f, err := b.createTemp(filepath.Join(b.dir, string(t)), true)
	if err != nil {
		return nil, fmt.Errorf("local: spool %s: %w", t, err)
	}
	sp := &spool{b: b, t: t, f: f, hash: sha256.New()}
	sp.w = io.Writer(f)
	if b.sys.wrapWriter != nil {
		sp.w = b.sys.wrapWriter(sp.w)
	}
	return sp, nil
}

type spool struct {
	b     *Backend
	t     backend.FileType
	f     *os.File
	w     io.Writer
	hash  hash.Hash
	n     int64
	err   error // sticky: the first write error
	done  bool
	moved bool // the temporary file is in place under its name
}

func (s *spool) Write(p []byte) (int, error) {
	if s.done {
		return 0, errors.New("local: write to a finished spool")
	}
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.hash.Write(p[:n])
	s.n += int64(n)
	if err != nil {
		s.err = fmt.Errorf("local: spool %s: %w", s.t, classify(err))
		return n, s.err
	}
	return n, nil
}

func (s *spool) Size() int64 { return s.n }

func (s *spool) Save(ctx context.Context) (name string, err error) {
	if s.done {
		return "", errors.New("local: save of a finished spool")
	}
	defer s.Discard()
	if s.err != nil {
		return "", s.err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	name = hex.EncodeToString(s.hash.Sum(nil))
	h := backend.Handle{Type: s.t, Name: name}
	wrap := func(err error) error { return fmt.Errorf("local: save %v: %w", h, err) }
	if err := s.f.Chmod(fileMode); err != nil {
		return "", wrap(classify(err))
	}
	if err := s.f.Sync(); err != nil {
		return "", wrap(classify(err))
	}
	if err := s.f.Close(); err != nil {
		return "", wrap(classify(err))
	}
	target := s.b.path(h)
	err = s.b.moveNoReplace(s.f.Name(), target, h)
	if errors.Is(err, fs.ErrNotExist) {
		// The shard directory went missing: remake just that one.
		dir := filepath.Dir(target)
		if err = mkdirExisting(dir); err == nil {
			if err = syncDir(filepath.Dir(dir)); err == nil {
				err = s.b.moveNoReplace(s.f.Name(), target, h)
			}
		}
	}
	if errors.Is(err, backend.ErrExists) {
		return name, wrap(err)
	}
	if err != nil {
		return "", wrap(err)
	}
	s.moved = true
	if err := syncDir(filepath.Dir(target)); err != nil {
		return "", wrap(err)
	}
	return name, nil
}

func (s *spool) Discard() {
	if s.done {
		return
	}
	s.done = true
	s.f.Close()
	if !s.moved {
		os.Remove(s.f.Name())
	}
}

var _ backend.Spooler = (*Backend)(nil)
