// Package storage is where the cairn server keeps its clients'
// repositories.
//
// Every repository is opened through the backend interface, one backend per
// repository, from one of two kinds of storage (the state database records
// which; `cairn server init --storage` or `run --storage` sets it):
//
//   - local (the default): a directory per repository,
//     <data>/repos/<client>/<repository…>, or under another directory given
//     as --storage DIR (local.go);
//   - S3: s3:http[s]://host[:port]/bucket[/prefix], each repository under
//     <prefix>/<client>/<repository…>/ in the bucket, all sharing one
//     connection pool (s3.go). Several servers may front one bucket;
//     exactly one coordinates a repository at a time (Leaser; the server's
//     Coordinate).
//
// The storage is opened on first use, so a server whose bucket is down
// still starts, answers /healthz and reports the failure per request.
package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/s3"
)

// Storage is one kind of place that holds many repositories. repo is a
// path from restapi.ParsePath (<client>/<repository…>), so it has no path
// tricks in it.
type Storage interface {
	// Open returns the backend of an existing repository (one that holds a
	// config, or was created and not yet filled), or backend.ErrNotFound;
	// a repository that lost its config and kept its files is refused
	// with an error saying so.
	Open(ctx context.Context, repo string) (backend.Backend, error)
	// OpenForAudit returns the backend of a repository for the audit
	// (internal/server/audit): what Open opens, and also a repository
	// that holds files and lost its config, opened as it is, storing
	// nothing; the audit reports the config missing and heals it only
	// with one of the repository's config versions. Never for requests:
	// a client must not be able to set the config of a repository that
	// holds files (docs/threat-model.md R3), and Open refuses such a
	// repository: local storage's one that holds any file, S3's one that
	// holds data (HoldsData), since on S3 another server of the bucket
	// may be partway through an init.
	OpenForAudit(ctx context.Context, repo string) (backend.Backend, error)
	// Create makes an empty repository (or finds it) and returns its
	// backend.
	Create(ctx context.Context, repo string) (backend.Backend, error)
	// Used is the number of bytes a client stores.
	Used(ctx context.Context, client string) (int64, error)
	// Repos lists the repositories under a path, a client's or a
	// repository path's (those nested below it), as paths
	// <client>/<repository…>, sorted: every one there, whether or not it
	// ever received a snapshot.
	Repos(ctx context.Context, under string) ([]string, error)
	// Leaser returns what takes the repository's lease among several
	// servers, or nil if the storage has one server only (local).
	Leaser(ctx context.Context, repo string, now func() time.Time) (Leaser, error)
	// Where describes the storage for messages, without secrets.
	Where() string
	// ClientWhere names where a client's repositories are, for messages.
	ClientWhere(client string) string
	// Purge deletes every file a client stores, all its repositories.
	// client must be a valid client name (restapi.ValidClientName).
	Purge(ctx context.Context, client string) error
}

// errLostConfig refuses a request to a repository that holds files and
// no config.
var errLostConfig = errors.New("it holds files and no config: it lost its config (`cairn server audit --replicas` heals it from a replica) or its init stopped before storing it")

// dataTypes are the file types a repository holds only once it is past
// its init: cairn's init and restic's store keys/, rosters/ and configs/
// before the config, never these.
var dataTypes = []backend.FileType{backend.Data, backend.Index, backend.Snapshots}

// HoldsData returns a file the repository holds under data/, index/ or
// snapshots/ (dataTypes), if any, listing each type only up to its first
// file. A repository that holds one is past its init: a config stored
// there now would replace the one it lost, which no client may set
// (docs/threat-model.md R3).
func HoldsData(ctx context.Context, be backend.Backend) (backend.Handle, bool, error) {
	errFound := errors.New("a file")
	for _, t := range dataTypes {
		var h backend.Handle
		err := be.List(ctx, t, func(fi backend.FileInfo) error {
			h = fi.Handle
			return errFound
		})
		switch {
		case errors.Is(err, errFound):
			return h, true, nil
		case errors.Is(err, backend.ErrNotFound):
			// A type's directory not made yet holds nothing.
		case err != nil:
			return backend.Handle{}, false, fmt.Errorf("list %s: %w", t, err)
		}
	}
	return backend.Handle{}, false, nil
}

// Leaser takes one repository's lease among several servers.
type Leaser interface {
	Acquire(ctx context.Context, holder string, ttl time.Duration) (*s3.Lease, error)
	Renew(ctx context.Context, l *s3.Lease, ttl time.Duration) error
	Release(ctx context.Context, l *s3.Lease) error
}

// Repos opens each repository's backend once.
type Repos struct {
	connect func(ctx context.Context) (Storage, error)

	stOnce sync.Once
	st     Storage
	stErr  error

	mu   sync.Mutex
	open map[string]backend.Backend

	createMu sync.Mutex // one repository created at a time: the count holds
}

// NewRepos returns the repositories of the storage connect opens, on
// first use.
func NewRepos(connect func(ctx context.Context) (Storage, error)) *Repos {
	return &Repos{connect: connect, open: make(map[string]backend.Backend)}
}

// Storage opens the storage on first use.
func (rs *Repos) Storage(ctx context.Context) (Storage, error) {
	rs.stOnce.Do(func() { rs.st, rs.stErr = rs.connect(ctx) })
	return rs.st, rs.stErr
}

// Get returns the backend of an existing repository, or
// backend.ErrNotFound.
func (rs *Repos) Get(ctx context.Context, repo string) (backend.Backend, error) {
	rs.mu.Lock()
	be, ok := rs.open[repo]
	rs.mu.Unlock()
	if ok {
		return be, nil
	}
	st, err := rs.Storage(ctx)
	if err != nil {
		return nil, err
	}
	be, err = st.Open(ctx, repo)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("no repository %s: %w", repo, backend.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", repo, err)
	}
	return rs.keep(repo, be), nil
}

// GetForAudit returns the backend of a repository for the audit, as Get
// does, and also of one that lost its config and kept its files
// (Storage.OpenForAudit). Such a backend is not kept: requests (Get)
// still find no repository there until its config is back.
func (rs *Repos) GetForAudit(ctx context.Context, repo string) (backend.Backend, error) {
	be, err := rs.Get(ctx, repo)
	if err == nil {
		return be, nil
	}
	st, serr := rs.Storage(ctx)
	if serr != nil {
		return nil, err
	}
	if lost, aerr := st.OpenForAudit(ctx, repo); aerr == nil {
		return lost, nil
	}
	return nil, err
}

// keep remembers be for repo unless another request opened it first.
func (rs *Repos) keep(repo string, be backend.Backend) backend.Backend {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if prev, ok := rs.open[repo]; ok {
		return prev
	}
	rs.open[repo] = be
	return be
}

// ErrNested refuses a repository inside another one, or around others:
// their files would mix.
var ErrNested = errors.New("repositories cannot nest")

// checkNesting refuses to create repo inside an existing repository
// (a/b/c when a/b is one) or above existing ones (a/b when a/b/c is one),
// with ErrNested. The caller holds createMu.
func (rs *Repos) checkNesting(ctx context.Context, st Storage, repo string) error {
	parts := strings.Split(repo, "/")
	for i := 2; i < len(parts); i++ { // parts[0] is the client
		outer := strings.Join(parts[:i], "/")
		_, err := rs.Get(ctx, outer)
		if err == nil {
			return fmt.Errorf("%w: %s lies inside repository %s; choose a path outside it", ErrNested, repo, outer)
		}
		if !errors.Is(err, backend.ErrNotFound) {
			return err
		}
	}
	below, err := st.Repos(ctx, repo)
	if err != nil {
		return fmt.Errorf("look for repositories under %s: %w", repo, err)
	}
	if n := len(below); n > 0 {
		return fmt.Errorf("%w: %s would hold existing repositories below it (%d); choose another path", ErrNested, repo, n)
	}
	return nil
}

// Create makes a repository if it does not exist yet. mayCreate, called
// with the client's repository count, refuses a new one; a repository
// inside or around another is refused with ErrNested.
func (rs *Repos) Create(ctx context.Context, repo string, mayCreate func(count int) error) error {
	if _, err := rs.Get(ctx, repo); err == nil || !errors.Is(err, backend.ErrNotFound) {
		// There already, or there and refused (it lost its config): a
		// create never reopens it.
		return err
	}
	st, err := rs.Storage(ctx)
	if err != nil {
		return err
	}
	rs.createMu.Lock()
	defer rs.createMu.Unlock()
	client, _, _ := strings.Cut(repo, "/")
	have, err := st.Repos(ctx, client)
	if err != nil {
		return fmt.Errorf("count repositories of %s: %w", client, err)
	}
	if err := mayCreate(len(have)); err != nil {
		return err
	}
	if err := rs.checkNesting(ctx, st, repo); err != nil {
		return err
	}
	be, err := st.Create(ctx, repo)
	if err != nil {
		return err
	}
	rs.keep(repo, be)
	return nil
}
