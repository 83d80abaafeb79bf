package server

// Storage: where the server keeps its clients' repositories.
//
// Every repository is opened through the backend interface, one backend per
// repository, from one of two kinds of storage (the state database records
// which; `cairn server init --storage` or `run --storage` sets it):
//
//   - local (the default): a directory per repository,
//     <data>/repos/<client>/<repository…>, or under another directory given
//     as --storage DIR (storage_local.go);
//   - S3: s3:http[s]://host[:port]/bucket[/prefix], each repository under
//     <prefix>/<client>/<repository…>/ in the bucket, all sharing one
//     connection pool (storage_s3.go). Several servers may front one
//     bucket; exactly one coordinates a repository at a time
//     (storage_coord.go: Server.Coordinate).
//
// The storage is opened on first use, so a server whose bucket is down
// still starts, answers /healthz and reports the failure per request.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// storage is one kind of place that holds many repositories. repo is a
// path from restapi.ParsePath (<client>/<repository…>), so it has no path
// tricks in it.
type storage interface {
	// open returns the backend of an existing repository (one that holds a
	// config, or was created and not yet filled), or backend.ErrNotFound.
	open(ctx context.Context, repo string) (backend.Backend, error)
	// create makes an empty repository (or finds it) and returns its
	// backend.
	create(ctx context.Context, repo string) (backend.Backend, error)
	// used is the number of bytes a client stores.
	used(ctx context.Context, client string) (int64, error)
	// repos is the number of repositories a client has.
	repos(ctx context.Context, client string) (int, error)
	// leaser returns what takes the repository's lease among several
	// servers, or nil if the storage has one server only (local).
	leaser(ctx context.Context, repo string, now func() time.Time) (leaser, error)
	// where describes the storage for messages, without secrets.
	where() string
}

// repoStore opens each repository's storage once.
type repoStore struct {
	data *Data

	stOnce sync.Once
	st     storage
	stErr  error

	mu   sync.Mutex
	open map[string]backend.Backend

	createMu sync.Mutex // one repository created at a time: the count holds

	coordOnce sync.Once
	coord     *coordinator
}

func newRepoStore(d *Data) *repoStore {
	return &repoStore{data: d, open: make(map[string]backend.Backend)}
}

// storage opens the server's storage on first use.
func (rs *repoStore) storage(ctx context.Context) (storage, error) {
	rs.stOnce.Do(func() { rs.st, rs.stErr = openStorage(ctx, rs.data) })
	return rs.st, rs.stErr
}

// get returns the backend of an existing repository, or
// backend.ErrNotFound.
func (rs *repoStore) get(ctx context.Context, repo string) (backend.Backend, error) {
	rs.mu.Lock()
	be, ok := rs.open[repo]
	rs.mu.Unlock()
	if ok {
		return be, nil
	}
	st, err := rs.storage(ctx)
	if err != nil {
		return nil, err
	}
	be, err = st.open(ctx, repo)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("no repository %s: %w", repo, backend.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", repo, err)
	}
	return rs.keep(repo, be), nil
}

// keep remembers be for repo unless another request opened it first.
func (rs *repoStore) keep(repo string, be backend.Backend) backend.Backend {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if prev, ok := rs.open[repo]; ok {
		return prev
	}
	rs.open[repo] = be
	return be
}

// create makes a repository if it does not exist yet. mayCreate, called
// with the client's repository count, refuses a new one.
func (rs *repoStore) create(ctx context.Context, repo string, mayCreate func(count int) error) error {
	if _, err := rs.get(ctx, repo); err == nil {
		return nil
	}
	st, err := rs.storage(ctx)
	if err != nil {
		return err
	}
	rs.createMu.Lock()
	defer rs.createMu.Unlock()
	client, _, _ := strings.Cut(repo, "/")
	n, err := st.repos(ctx, client)
	if err != nil {
		return fmt.Errorf("count repositories of %s: %w", client, err)
	}
	if err := mayCreate(n); err != nil {
		return err
	}
	be, err := st.create(ctx, repo)
	if err != nil {
		return err
	}
	rs.keep(repo, be)
	return nil
}

// usage tracks the bytes each client stores, for quotas and metrics. A
// client's figure is measured in the storage on first use, then kept up to
// date by the handlers: a reservation before each upload, released if the
// upload fails, and a release after each delete.
type usage struct {
	data *Data

	stOnce sync.Once
	st     storage
	stErr  error

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
	ctx := context.Background()
	u.stOnce.Do(func() { u.st, u.stErr = openStorage(ctx, u.data) })
	if u.stErr != nil {
		return 0, fmt.Errorf("measure storage of %s: %w", client, u.stErr)
	}
	n, err := u.st.used(ctx, client)
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
