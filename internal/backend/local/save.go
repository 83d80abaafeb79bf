package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Save implements backend.Backend; see the package documentation for the
// steps that make it durable and write-once.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("local: save %v: %w", h, err)
	}
	if err := b.save(ctx, h, rd, false); err != nil {
		return fmt.Errorf("local: save %v: %w", h, err)
	}
	return nil
}

// ReplaceConfig atomically replaces the config file, or creates it: readers
// see the old config or the new one, never a mixture or nothing. Config is
// the one file whose newest version lives at a fixed name, so it is the one
// file that may be replaced; Save never replaces it.
func (b *Backend) ReplaceConfig(ctx context.Context, rd backend.RewindReader) error {
	h := backend.Handle{Type: backend.Config, Name: "config"}
	if err := b.save(ctx, h, rd, true); err != nil {
		return fmt.Errorf("local: replace config: %w", err)
	}
	return nil
}

func (b *Backend) save(ctx context.Context, h backend.Handle, rd backend.RewindReader, replace bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	target := b.path(h)
	// A cheap early refusal that spares writing a whole pack; the
	// no-replace move below is what guarantees it.
	if _, err := os.Lstat(target); err == nil && !replace {
		return backend.ErrExists
	}
	tmp, err := b.writeTemp(ctx, h, rd)
	if err != nil {
		return err
	}
	if replace {
		err = classify(os.Rename(tmp, target))
	} else {
		err = b.moveNoReplace(tmp, target, h)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(target))
}

// writeTemp streams rd into a new temporary file beside h's final name,
// verifies length and hash, makes it read-only and fsyncs it. It returns
// the temporary file's path; on error no temporary file remains.
func (b *Backend) writeTemp(ctx context.Context, h backend.Handle, rd backend.RewindReader) (tmp string, err error) {
	want := rd.Length()
	if want < 0 {
		return "", fmt.Errorf("reader has negative length %d", want)
	}
	f, err := b.createTemp(b.dirOf(h), h.Type != backend.Config)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	var w io.Writer = f
	if b.sys.wrapWriter != nil {
		w = b.sys.wrapWriter(w)
	}
	hash := sha256.New()
	// Read one byte more than promised so an over-long reader is caught.
	n, err := copyHashed(ctx, w, hash, io.LimitReader(rd, want+1))
	if err != nil {
		return "", err
	}
	if n != want {
		err := fmt.Errorf("reader gave %d bytes, its length is %d", n, want)
		if n < want {
			err = fmt.Errorf("%w: %w", err, io.ErrUnexpectedEOF)
		}
		return "", err
	}
	if backend.ContentNamed(h.Type) {
		if got := hex.EncodeToString(hash.Sum(nil)); got != h.Name {
			return "", fmt.Errorf("bytes hash to %s: %w", got, backend.ErrHashMismatch)
		}
	}
	if err := f.Chmod(fileMode); err != nil {
		return "", classify(err)
	}
	if err := f.Sync(); err != nil {
		return "", classify(err)
	}
	if err := f.Close(); err != nil {
		return "", classify(err)
	}
	return f.Name(), nil
}

// createTemp creates a temporary file in dir. If remake is set and dir
// went missing (a type or shard directory), it remakes just that one.
// Never MkdirAll: if the repository itself is gone (an unmounted disk),
// writing a fresh tree in its place would hide that.
func (b *Backend) createTemp(dir string, remake bool) (*os.File, error) {
	f, err := os.CreateTemp(dir, tmpGlob)
	if errors.Is(err, fs.ErrNotExist) && remake {
		if err = mkdirExisting(dir); err == nil {
			if err = syncDir(filepath.Dir(dir)); err == nil {
				f, err = os.CreateTemp(dir, tmpGlob)
			}
		}
	}
	return f, classify(err)
}

// copyHashed copies src to w and hash, checking ctx between chunks. Write
// errors are classified; read errors are the caller's and pass unchanged.
func copyHashed(ctx context.Context, w, hash io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 128<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := src.Read(buf)
		if m > 0 {
			hash.Write(buf[:m])
			if _, err := w.Write(buf[:m]); err != nil {
				return n, classify(err)
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("read: %w", rerr)
		}
	}
}

// moveNoReplace moves tmp to target unless target exists (ErrExists). On
// success tmp is gone.
func (b *Backend) moveNoReplace(tmp, target string, h backend.Handle) error {
	err := b.sys.renameNoReplace(tmp, target)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return backend.ErrExists
	case !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS):
		return classify(err)
	}

	// No RENAME_NOREPLACE here: link(2) also refuses an existing target.
	err = b.sys.link(tmp, target)
	switch {
	case err == nil:
		// The file is in place; a leftover temporary name is harmless
		// and CleanTemp sweeps it.
		os.Remove(tmp)
		return nil
	case errors.Is(err, fs.ErrExist):
		return backend.ErrExists
	case !noHardLinks(err):
		return classify(err)
	case !backend.ContentNamed(h.Type):
		return fmt.Errorf("the filesystem can neither rename without replacing nor hard-link, so config cannot be saved write-once: %w", err)
	}

	// No hard links either (exFAT, some FUSE). Check, then rename: a writer
	// racing between the two carries the same verified bytes, since the
	// name is their hash, so the worst case replaces a file by its twin.
	if _, err := os.Lstat(target); err == nil {
		return backend.ErrExists
	}
	return classify(os.Rename(tmp, target))
}

// noHardLinks reports whether a link(2) error means the filesystem has no
// hard links; Linux says EPERM for that on FAT. A real permission problem
// then resurfaces from the rename that follows.
func noHardLinks(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS)
}
