// Package atomicfile replaces a local file durably: the new bytes go to a
// temporary file with a unique name in the same directory, which is
// fsynced, renamed over the target, and the directory fsynced. Readers see
// the old file or the new one, never a mixture; concurrent writers of one
// path never share a temporary file, so the last rename wins whole.
// WriteNew is the exclusive variant: it creates path whole or not at all
// and never replaces an existing file.
package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with what fn writes, with permissions perm.
func Write(path string, perm os.FileMode, fn func(w io.Writer) error) error {
	return write(path, perm, fn, os.Rename)
}

// WriteNew creates path with what fn writes, with permissions perm, and
// fails with an error matching fs.ErrExist if path already exists. The
// complete, synced file appears under path by a hard link from its
// temporary name, so no reader sees it partly written and a concurrent
// creator of the same path loses cleanly instead of replacing it.
func WriteNew(path string, perm os.FileMode, fn func(w io.Writer) error) error {
	return write(path, perm, fn, func(tmp, path string) error {
		if err := os.Link(tmp, path); err != nil {
			return err
		}
		// path is complete and in place; a temporary name left behind
		// by a failed remove is clutter, not a failed write.
		os.Remove(tmp)
		return nil
	})
}

// WriteNewFile creates path holding buf, with permissions perm, unless
// path exists (an error matching fs.ErrExist).
func WriteNewFile(path string, buf []byte, perm os.FileMode) error {
	return WriteNew(path, perm, func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	})
}

// write puts what fn writes into a synced temporary file next to path and
// hands it to publish, which moves it to path.
func write(path string, perm os.FileMode, fn func(w io.Writer) error, publish func(tmp, path string) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := publish(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// WriteFile replaces path with buf, with permissions perm.
func WriteFile(path string, buf []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	})
}

// SyncDir makes the entries of dir durable (a rename or create in it).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	// Some filesystems cannot sync a directory; the rename stands anyway.
	if errors.Is(err, os.ErrInvalid) {
		err = nil
	}
	return errors.Join(err, d.Close())
}
