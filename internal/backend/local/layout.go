package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cairnbackup/cairn/internal/backend"
)

// shard returns the name of data shard i, "00" to "ff".
func shard(i int) string { return fmt.Sprintf("%02x", i) }

func (b *Backend) create(ctx context.Context) error {
	if _, err := os.Lstat(filepath.Join(b.dir, "config")); err == nil {
		return fmt.Errorf("a repository already exists there: %w", backend.ErrExists)
	}
	if err := b.checkBareLayout(); err != nil {
		return err
	}
	parent := filepath.Dir(b.dir)
	if err := os.MkdirAll(b.dir, dirMode); err != nil {
		return classify(err)
	}
	for _, t := range backend.AllTypes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t != backend.Config {
			if err := mkdirExisting(filepath.Join(b.dir, string(t))); err != nil {
				return err
			}
		}
	}
	data := filepath.Join(b.dir, string(backend.Data))
	for i := range 256 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := mkdirExisting(filepath.Join(data, shard(i))); err != nil {
			return err
		}
	}
	for _, dir := range []string{data, b.dir, parent} {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// mkdirExisting makes dir, accepting an existing directory.
func mkdirExisting(dir string) error {
	err := os.Mkdir(dir, dirMode)
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return nil
		}
	}
	return classify(err)
}

// checkBareLayout accepts a missing directory, an empty one, or one holding
// nothing but the empty directories Create makes. A symlink to a directory
// is followed, as Create itself follows it.
func (b *Backend) checkBareLayout() error {
	entries, err := readDir(b.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		t := backend.FileType(e.Name())
		if !e.IsDir() || t == backend.Config || !backend.ValidType(t) {
			return notEmpty(e.Name())
		}
		sub, err := readDir(filepath.Join(b.dir, e.Name()))
		if err != nil {
			return err
		}
		for _, s := range sub {
			rel := filepath.Join(e.Name(), s.Name())
			if t != backend.Data || !s.IsDir() || !isShard(s.Name()) {
				return notEmpty(rel)
			}
			files, err := readDir(filepath.Join(b.dir, rel))
			if err != nil {
				return err
			}
			if len(files) > 0 {
				return notEmpty(filepath.Join(rel, files[0].Name()))
			}
		}
	}
	return nil
}

// readDir lists dir; a missing dir is empty.
func readDir(dir string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return entries, classify(err)
}

func notEmpty(found string) error {
	return fmt.Errorf("the directory is not empty and holds no repository (found %s); use an empty or new directory", found)
}

func isShard(name string) bool {
	for i := range 256 {
		if name == shard(i) {
			return true
		}
	}
	return false
}

// OpenWithoutConfig opens the repository in dir that holds files but no
// config: a copy whose config was lost while its files stayed, or whose
// first copy stopped before the config was stored. dir must hold nothing
// but the directories of the repository's file types, and a file in one
// of them; a directory that also has its config is opened by Open, one
// without files by Create. It stores nothing: a caller that stores the
// config is one that can vouch for it (a replica's is one of its config
// versions, see internal/replicate and internal/server/audit).
func OpenWithoutConfig(dir string) (*Backend, error) {
	b := newBackend(dir)
	if _, err := os.Lstat(filepath.Join(b.dir, "config")); err == nil {
		return nil, fmt.Errorf("local: %s holds a config: %w", dir, backend.ErrExists)
	}
	entries, err := readDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("local: open repository at %s: %w", dir, err)
	}
	files := false
	for _, e := range entries {
		t := backend.FileType(e.Name())
		if !e.IsDir() || t == backend.Config || !backend.ValidType(t) {
			return nil, fmt.Errorf("local: no repository at %s (found %s beside the repository's directories): %w", dir, e.Name(), backend.ErrNotFound)
		}
		if !files {
			if files, err = holdsFile(filepath.Join(b.dir, e.Name()), t == backend.Data); err != nil {
				return nil, fmt.Errorf("local: open repository at %s: %w", dir, err)
			}
		}
	}
	if !files {
		return nil, fmt.Errorf("local: no repository at %s (no config and no files): %w", dir, backend.ErrNotFound)
	}
	return b, nil
}

// holdsFile reports whether dir (in shards, a data directory's) holds a
// regular file.
func holdsFile(dir string, sharded bool) (bool, error) {
	entries, err := readDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		switch {
		case e.Type().IsRegular():
			return true, nil
		case sharded && e.IsDir() && isShard(e.Name()):
			if ok, err := holdsFile(filepath.Join(dir, e.Name()), false); ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}
