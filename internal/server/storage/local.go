package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// localStorage keeps each repository in root/<client>/<repository…>.
type localStorage struct {
	root string
}

func (ls *localStorage) dir(repo string) string {
	return filepath.Join(ls.root, filepath.FromSlash(repo))
}

func (ls *localStorage) Where() string { return ls.root }

func (ls *localStorage) ClientWhere(client string) string { return ls.dir(client) }

func (ls *localStorage) Purge(_ context.Context, client string) error {
	if err := restapi.ValidClientName(client); err != nil {
		return err
	}
	if err := os.RemoveAll(ls.dir(client)); err != nil {
		return fmt.Errorf("delete %s: %w", ls.dir(client), err)
	}
	return nil
}

// Open refuses a directory that holds files and no config (a repository
// that lost its config, or an init stopped before its config): nothing a
// request does may store a config there (docs/threat-model.md R3); the
// audit opens it with OpenForAudit.
func (ls *localStorage) Open(ctx context.Context, repo string) (backend.Backend, error) {
	dir := ls.dir(repo)
	be, err := local.Open(dir)
	if errors.Is(err, backend.ErrNotFound) {
		if _, lerr := local.OpenWithoutConfig(dir); lerr == nil {
			return nil, errLostConfig
		}
		// Created, config not yet written: Create reopens a bare layout.
		if _, serr := os.Stat(filepath.Join(dir, string(backend.Data))); serr != nil {
			return nil, backend.ErrNotFound
		}
		if be, err = local.Create(ctx, dir); err != nil {
			return nil, err
		}
	}
	return be, err
}

// OpenForAudit opens, besides what Open does, a directory that holds
// files and no config (local.OpenWithoutConfig), which Open refuses.
func (ls *localStorage) OpenForAudit(ctx context.Context, repo string) (backend.Backend, error) {
	be, err := local.OpenWithoutConfig(ls.dir(repo))
	if errors.Is(err, backend.ErrExists) || errors.Is(err, backend.ErrNotFound) {
		// It has its config, or holds no file: Open's to answer.
		return ls.Open(ctx, repo)
	}
	return be, err
}

func (ls *localStorage) Create(ctx context.Context, repo string) (backend.Backend, error) {
	return local.Create(ctx, ls.dir(repo))
}

func (ls *localStorage) Used(_ context.Context, client string) (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(ls.root, client), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("walk %s: %w", ls.root, err)
	}
	return n, nil
}

// Repos lists the directories under the given path that hold a
// repository (a config, or the data/ directory create makes), without
// descending into them.
func (ls *localStorage) Repos(_ context.Context, under string) ([]string, error) {
	var repos []string
	err := filepath.WalkDir(filepath.Join(ls.root, filepath.FromSlash(under)), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		for _, leaf := range []string{"config", string(backend.Data)} {
			if _, err := os.Lstat(filepath.Join(p, leaf)); err == nil {
				rel, err := filepath.Rel(ls.root, p)
				if err != nil {
					return err
				}
				repos = append(repos, filepath.ToSlash(rel))
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", ls.root, err)
	}
	return repos, nil // WalkDir goes in lexical order
}

// Leaser: one server owns a local directory; the process-local lock of
// Coordinate is all the coordination there is.
func (ls *localStorage) Leaser(context.Context, string, func() time.Time) (Leaser, error) {
	return nil, nil
}
