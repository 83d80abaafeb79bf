package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
)

// repoStore opens each repository's storage once: a local backend in
// repos/<client>/<repository…> of the data directory.
type repoStore struct {
	data *Data
	mu   sync.Mutex
	open map[string]backend.Backend
}

func newRepoStore(d *Data) *repoStore {
	return &repoStore{data: d, open: make(map[string]backend.Backend)}
}

func (rs *repoStore) dir(repo string) string {
	return filepath.Join(rs.data.Dir, reposDir, filepath.FromSlash(repo))
}

// get returns the backend of an existing repository (one that holds a
// config, or the bare layout of a creation), or backend.ErrNotFound.
// repo comes from restapi.ParsePath, so it has no path tricks in it.
func (rs *repoStore) get(ctx context.Context, repo string) (backend.Backend, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if be, ok := rs.open[repo]; ok {
		return be, nil
	}
	dir := rs.dir(repo)
	be, err := local.Open(dir)
	if errors.Is(err, backend.ErrNotFound) {
		// Created, config not yet written: Create reopens a bare layout.
		if _, serr := os.Stat(filepath.Join(dir, string(backend.Data))); serr != nil {
			return nil, fmt.Errorf("no repository %s: %w", repo, backend.ErrNotFound)
		}
		var cerr error
		if be, cerr = local.Create(ctx, dir); cerr != nil {
			return nil, fmt.Errorf("open repository %s: %w", repo, err)
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	rs.open[repo] = be
	return be, nil
}

// create makes a repository if it does not exist yet.
func (rs *repoStore) create(ctx context.Context, repo string) error {
	if _, err := rs.get(ctx, repo); err == nil {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	be, err := local.Create(ctx, rs.dir(repo))
	if err != nil {
		return err
	}
	rs.open[repo] = be
	return nil
}

// usage tracks the bytes each client stores, for quotas and metrics. A
// client's figure is computed by walking its directory on first use, then
// kept up to date by the handlers: a reservation before each upload,
// released if the upload fails, and a release after each delete.
type usage struct {
	data *Data
	mu   sync.Mutex
	used map[string]int64
}

func newUsage(d *Data) *usage { return &usage{data: d, used: make(map[string]int64)} }

func (u *usage) get(client string) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.getLocked(client)
}

func (u *usage) getLocked(client string) (int64, error) {
	if n, ok := u.used[client]; ok {
		return n, nil
	}
	var n int64
	err := filepath.WalkDir(u.data.ClientDir(client), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure storage of %s: %w", client, err)
	}
	u.used[client] = n
	return n, nil
}

// reserve adds n bytes to client's usage unless that would exceed quota
// (0: unlimited); it reports the usage before and whether it fit.
func (u *usage) reserve(client string, n, quota int64) (int64, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cur, err := u.getLocked(client)
	if err != nil {
		return 0, false, err
	}
	if quota > 0 && cur+n > quota {
		return cur, false, nil
	}
	u.used[client] = cur + n
	return cur, true, nil
}

// release subtracts n bytes.
func (u *usage) release(client string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if cur, ok := u.used[client]; ok {
		u.used[client] = max(0, cur-n)
	}
}
