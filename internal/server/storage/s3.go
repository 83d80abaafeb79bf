package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/backend/s3"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// s3Storage keeps each repository under <prefix>/<client>/<repository…>/
// of one bucket, all through the root backend's connection pool (set its
// size with ?connections=N in the location).
type s3Storage struct {
	root *s3.Backend
	opts location.Options
}

func newS3Storage(ctx context.Context, l location.Location, create bool) (*s3Storage, error) {
	root, err := s3.Connect(ctx, l.S3, create)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &s3Storage{root: root}, nil
}

func (ss *s3Storage) Where() string { return ss.root.Properties().Location }

func (ss *s3Storage) ClientWhere(client string) string {
	return strings.TrimSuffix(ss.Where(), "/") + "/" + client + "/"
}

func (ss *s3Storage) Purge(ctx context.Context, client string) error {
	if err := restapi.ValidClientName(client); err != nil {
		return err
	}
	return ss.root.RemoveAll(ctx, client)
}

func (ss *s3Storage) sub(repo string) (*s3.Backend, error) {
	be, err := ss.root.Sub(repo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", backend.ErrInvalidName, err)
	}
	return be, nil
}

// Open opens a repository that has its config or was marked created,
// but refuses one without its config that holds data (a file under
// data/, index/ or snapshots/: it lost its config): nothing a request
// does may store a config there (docs/threat-model.md R3), as local
// storage refuses it; the audit opens it with OpenForAudit. One that
// holds only what an init stores before its config (keys/, rosters/,
// configs/) is opened: the init may have started through another
// server of the bucket.
func (ss *s3Storage) Open(ctx context.Context, repo string) (backend.Backend, error) {
	be, err := ss.open(ctx, repo)
	if err != nil {
		return nil, err
	}
	_, err = be.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"})
	switch {
	case err == nil:
		return be, nil
	case !errors.Is(err, backend.ErrNotFound):
		return nil, err
	}
	_, found, err := HoldsData(ctx, be)
	switch {
	case err != nil:
		return nil, err
	case found:
		return nil, errLostConfig
	}
	return be, nil
}

// open opens a repository that has its config or was marked created.
func (ss *s3Storage) open(ctx context.Context, repo string) (backend.Backend, error) {
	be, err := ss.sub(repo)
	if err != nil {
		return nil, err
	}
	ok, err := be.Exists(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, backend.ErrNotFound
	}
	return location.Decorate(be, ss.opts), nil
}

// OpenForAudit opens, besides what Open does, a repository that holds
// data and no config, which Open refuses.
func (ss *s3Storage) OpenForAudit(ctx context.Context, repo string) (backend.Backend, error) {
	return ss.open(ctx, repo)
}

func (ss *s3Storage) Create(ctx context.Context, repo string) (backend.Backend, error) {
	be, err := ss.sub(repo)
	if err != nil {
		return nil, err
	}
	if err := be.MarkCreated(ctx); err != nil {
		return nil, err
	}
	return location.Decorate(be, ss.opts), nil
}

func (ss *s3Storage) Used(ctx context.Context, client string) (int64, error) {
	return ss.root.Usage(ctx, client)
}

func (ss *s3Storage) Repos(ctx context.Context, under string) ([]string, error) {
	return ss.root.Repositories(ctx, under)
}

func (ss *s3Storage) Leaser(_ context.Context, repo string, now func() time.Time) (Leaser, error) {
	be, err := ss.sub(repo)
	if err != nil {
		return nil, err
	}
	return s3Leaser{be.WithClock(now)}, nil
}

// leaseName is the lease object of a repository's coordinator, under its
// own prefix: <prefix>/<client>/<repository…>/leases/coordinator.
const leaseName = "coordinator"

// s3Leaser takes a repository's lease in its bucket.
type s3Leaser struct{ be *s3.Backend }

func (l s3Leaser) Acquire(ctx context.Context, holder string, ttl time.Duration) (*s3.Lease, error) {
	ls, err := l.be.AcquireLease(ctx, leaseName, holder, ttl)
	if err != nil {
		return nil, err
	}
	return &ls, nil
}

func (l s3Leaser) Renew(ctx context.Context, ls *s3.Lease, ttl time.Duration) error {
	return l.be.Renew(ctx, ls, ttl)
}

func (l s3Leaser) Release(ctx context.Context, ls *s3.Lease) error {
	return l.be.Release(ctx, ls)
}
