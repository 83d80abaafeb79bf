// Package coord makes one server the coordinator of a repository:
// exactly one coordinator per repository.
//
//	func (c *Coordinator) Coordinate(ctx context.Context, repo string) (context.Context, func(), error)
//
// Code that commits to a repository (snapshot uploads and whatever makes a
// cairn snapshot part of the repository: receipts, tombstones) or maintains
// it (retention, garbage collection, repacking) calls Coordinate with the
// repository's path (<client>/<repository…>, as restapi.Path.RepoPath
// gives it) before it starts, does its work with the returned context, and
// calls the returned release function when done (always; it is safe to call
// twice). Plain reads and uploads of content-named files (packs, index)
// need no coordination: they go through on every server.
//
//   - Within one server Coordinate is a lock per repository: a second
//     caller waits (until its ctx ends) for the first to release.
//   - On S3 storage it also takes the repository's lease
//     (s3.(*Backend).AcquireLease on <prefix>/<client>/<repo>/leases/
//     coordinator, a conditional write, so of several servers in front of
//     one bucket exactly one holds it), named after this server (host name
//     and data directory). The lease outlives the call: a timer renews it
//     every RenewEvery while the server keeps coordinating the
//     repository, and gives it up after Idle without a Coordinate, or
//     when the server stops (Close). So one server stays the
//     repository's coordinator while it is busy with it, and another takes
//     over once the lease expires (TTL after the last renewal: a crash,
//     a partition) or is given up.
//   - If another server holds the lease, Coordinate fails at once with a
//     *NotCoordinatorError (errors.Is ErrNotCoordinator) naming the holder
//     and the lease's expiry; the server answers it as HTTP 503 with
//     Retry-After.
//   - If the lease is lost while the work runs (another server took it over
//     after renewals failed), the returned context is cancelled with
//     ErrNotCoordinator as its cause: the holder must stop at once, and
//     write-once storage guarantees a half-done commit is never visible.
//
// On local storage there is only the lock: a directory has one server.
package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/backend/s3"
	"github.com/cairnbackup/cairn/internal/server/storage"
)

// Lease timing: the defaults of Coordinator's TTL, RenewEvery, Idle.
const (
	TTL        = 30 * time.Second
	RenewEvery = 10 * time.Second
	Idle       = 5 * time.Minute
)

// ErrNotCoordinator means another server coordinates the repository.
var ErrNotCoordinator = errors.New("another server coordinates this repository")

// NotCoordinatorError says which server coordinates a repository, and until
// when its lease runs unless renewed.
type NotCoordinatorError struct {
	Repo   string
	Holder string
	Until  time.Time
}

func (e *NotCoordinatorError) Error() string {
	return fmt.Sprintf("repository %s is coordinated by server %q (lease until %s); commits and maintenance go through that server, or through this one once the lease expires",
		e.Repo, e.Holder, e.Until.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrNotCoordinator) hold.
func (e *NotCoordinatorError) Unwrap() error { return ErrNotCoordinator }

// ErrBusy means another request or job held a repository for longer
// than the caller would wait.
var ErrBusy = errors.New("another request held the repository")

// HolderName names a server in leases: stable across restarts (so a
// restarted server gets its own lease back at once) and distinct between
// servers on different hosts or data directories.
func HolderName(dataDir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	return host + ":" + dataDir
}

// Coordinator keeps the per-repository locks and leases of one server.
type Coordinator struct {
	rs  *storage.Repos
	now func() time.Time
	log *slog.Logger
	// Holder names this server in leases (HolderName). TTL, RenewEvery
	// and Idle time its leases; set them before the first Coordinate.
	Holder                string
	TTL, RenewEvery, Idle time.Duration

	mu        sync.Mutex
	repos     map[string]*coordRepo
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // renewal goroutines
}

// coordRepo is one repository's coordination state; its fields but lock
// are guarded by Coordinator.mu.
type coordRepo struct {
	lock    chan struct{} // holds a token while a caller coordinates
	held    *heldLease    // nil when this server holds no lease
	users   int
	lastUse time.Time
}

// heldLease is one acquisition of a lease, renewed by its own goroutine.
type heldLease struct {
	l        storage.Leaser
	lease    s3.Lease // guarded by Coordinator.mu
	lost     chan struct{}
	lostOnce sync.Once
}

func (h *heldLease) drop() { h.lostOnce.Do(func() { close(h.lost) }) }

func (c *Coordinator) repo(name string) *coordRepo {
	c.mu.Lock()
	defer c.mu.Unlock()
	cr := c.repos[name]
	if cr == nil {
		cr = &coordRepo{lock: make(chan struct{}, 1)}
		c.repos[name] = cr
	}
	return cr
}

// New returns the coordinator of the repositories in rs, named holder.
func New(rs *storage.Repos, holder string, now func() time.Time, log *slog.Logger) *Coordinator {
	return &Coordinator{rs: rs, Holder: holder, now: now, log: log, TTL: TTL, RenewEvery: RenewEvery, Idle: Idle,
		repos: map[string]*coordRepo{}, closing: make(chan struct{})}
}

// Coordinate makes this server the coordinator of repo until release is
// called; see the package's documentation.
func (c *Coordinator) Coordinate(ctx context.Context, repo string) (context.Context, func(), error) {
	return c.CoordinateWithin(ctx, repo, 0)
}

// CoordinateWithin is Coordinate waiting at most wait (0: as long as ctx
// lasts) for another holder within this server to release the repository;
// beyond, it fails with ErrBusy.
func (c *Coordinator) CoordinateWithin(ctx context.Context, repo string, wait time.Duration) (context.Context, func(), error) {
	cr := c.repo(repo)
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case cr.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("wait to coordinate %s: %w", repo, ctx.Err())
	case <-timeout:
		return nil, nil, fmt.Errorf("repository %s: %w for %v", repo, ErrBusy, wait)
	}
	lost, err := c.hold(ctx, repo, cr)
	if err != nil {
		<-cr.lock
		return nil, nil, err
	}
	cctx, cancel := context.WithCancelCause(ctx)
	if lost != nil {
		// Ends when the lease is lost or release cancels cctx.
		go func() {
			select {
			case <-lost:
				cancel(fmt.Errorf("repository %s: lease lost: %w", repo, ErrNotCoordinator))
			case <-cctx.Done():
			}
		}()
	}
	release := sync.OnceFunc(func() {
		cancel(nil)
		c.mu.Lock()
		cr.users--
		cr.lastUse = c.now()
		c.mu.Unlock()
		<-cr.lock
	})
	return cctx, release, nil
}

// hold makes sure this server holds repo's lease (if its storage has
// leases) and counts a user; it returns the channel closed when the lease
// is lost, or nil for storage without leases. The caller holds cr.lock.
func (c *Coordinator) hold(ctx context.Context, repo string, cr *coordRepo) (<-chan struct{}, error) {
	st, err := c.rs.Storage(ctx)
	if err != nil {
		return nil, err
	}
	l, err := st.Leaser(ctx, repo, c.now)
	if err != nil || l == nil {
		if err == nil {
			c.mu.Lock()
			cr.users++
			c.mu.Unlock()
		}
		return nil, err
	}
	c.mu.Lock()
	h := cr.held
	if h != nil && c.now().Before(h.lease.Expires) {
		cr.users++
		c.mu.Unlock()
		return h.lost, nil
	}
	if h != nil {
		// Expired on our clock: renewals failed. Acquire afresh; if
		// nobody took it over meanwhile, it is ours again at once.
		cr.held = nil
		h.drop()
	}
	c.mu.Unlock()
	select {
	case <-c.closing:
		return nil, fmt.Errorf("coordinate %s: the server is stopping", repo)
	default:
	}

	lease, err := l.Acquire(ctx, c.Holder, c.TTL)
	var held *s3.LeaseHeldError
	switch {
	case errors.As(err, &held):
		return nil, &NotCoordinatorError{Repo: repo, Holder: held.Holder, Until: held.Expires}
	case errors.Is(err, s3.ErrLeaseHeld):
		return nil, fmt.Errorf("repository %s: %w: %w", repo, ErrNotCoordinator, err)
	case err != nil:
		return nil, fmt.Errorf("take the lease of %s: %w", repo, err)
	}
	h = &heldLease{l: l, lease: *lease, lost: make(chan struct{})}
	c.mu.Lock()
	cr.held = h
	cr.users++
	c.mu.Unlock()
	c.log.Info("coordinating repository", "repo", repo, "holder", c.Holder, "until", lease.Expires)
	c.wg.Add(1)
	go c.renew(repo, cr, h)
	return h.lost, nil
}

// renew keeps h alive until it is lost, idle, or the server stops.
func (c *Coordinator) renew(repo string, cr *coordRepo, h *heldLease) {
	defer c.wg.Done()
	t := time.NewTicker(c.RenewEvery)
	defer t.Stop()
	giveUp := func(why string) {
		c.mu.Lock()
		if cr.held == h {
			cr.held = nil
		}
		lease := h.lease
		c.mu.Unlock()
		h.drop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.l.Release(ctx, &lease); err != nil {
			c.log.Warn("give up lease", "repo", repo, "err", err)
			return
		}
		c.log.Info("gave up lease", "repo", repo, "why", why)
	}
	for {
		select {
		case <-h.lost:
			return
		case <-c.closing:
			giveUp("server stopping")
			return
		case <-t.C:
		}
		c.mu.Lock()
		idle := cr.users == 0 && c.now().Sub(cr.lastUse) >= c.Idle
		lease := h.lease
		c.mu.Unlock()
		if idle {
			giveUp("idle")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.RenewEvery)
		err := h.l.Renew(ctx, &lease, c.TTL)
		cancel()
		switch {
		case errors.Is(err, s3.ErrLeaseLost):
			c.log.Error("lost the lease: another server coordinates the repository now", "repo", repo)
			c.mu.Lock()
			if cr.held == h {
				cr.held = nil
			}
			c.mu.Unlock()
			h.drop()
			return
		case err != nil:
			c.log.Warn("renew lease", "repo", repo, "err", err)
		default:
			c.mu.Lock()
			h.lease = lease
			c.mu.Unlock()
		}
	}
}

// Close gives up every lease and waits for the renewal goroutines.
func (c *Coordinator) Close() {
	c.closeOnce.Do(func() { close(c.closing) })
	c.wg.Wait()
}
