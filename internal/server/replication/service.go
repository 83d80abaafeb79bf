// Package replication copies the server's repositories to the
// destinations an operator configured (`cairn server destination add`),
// with internal/replicate's ordered, hash-verified copy: a replica is at
// every moment a repository that opens and restores on its own.
//
// The server calls Notify when it stores a snapshot file (a cairn commit
// or a restic snapshot); the destinations that replicate the client copy
// the repository within seconds. Each destination also reconciles every
// repository it replicates (lists both sides, copies what the replica
// lacks) when the service starts and every ReconcileEvery, so a commit
// missed by a crash, a file lost on the replica, or a destination added
// later are healed. A deletion on the primary is never mirrored.
//
// A cairn repository is copied by snapshot closure (package closure): the
// replica gets the primary's snapshots that its own retention has not
// forgotten and what they need. A destination with a retention policy
// (replicas.Destination.Retention) applies it to each cairn replica after a
// pass, with maintain.Apply, the server's one retention run. Restic
// repositories are copied whole, without retention.
//
// Each destination has one worker: it replicates one repository at a
// time with the destination's concurrency (files at once) and bandwidth
// (bytes a second, shared by its copies). A failed pass is retried with
// exponential backoff (1 s doubling to 5 min). What each replica holds,
// how far behind it is and its last error are in the state database
// (replicas.ReplicaStatus), for `cairn server replication status` and
// /metrics; the ledger there records every file copied.
package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/ratelimit"
	"github.com/cairnbackup/cairn/internal/replicate"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/maintain"
	"github.com/cairnbackup/cairn/internal/server/replication/closure"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

// Config configures a Service.
type Config struct {
	State *state.State
	// Open returns the primary's backend of an existing repository
	// (<client>/<repository…>).
	Open func(ctx context.Context, repo string) (backend.Backend, error)
	// OpenRepo opens be, the primary of repo or a replica of it, with the
	// server's keys (its metadata identity and coordinator key); nil, nil
	// for a restic repository. Without it cairn repositories are copied
	// whole, like restic ones, and a destination with a retention policy
	// fails its passes.
	OpenRepo func(ctx context.Context, repo string, be backend.Backend) (*repository.Repository, error)
	Log      *slog.Logger
	// SpoolDir holds a file while it is copied (unlinked at once).
	SpoolDir string
	// Now is the server's clock; default time.Now.
	Now func() time.Time
	// Reload is how often the destinations are read again, so that
	// `destination add` and `remove` take effect on a running server;
	// default 5 s.
	Reload time.Duration
}

// Service replicates repositories to destinations.
type Service struct {
	cfg Config

	mu      sync.Mutex
	workers map[string]*worker // by destination name

	manifests *closure.Cache // the closure's, shared by the workers
}

// Maximum backoff between failed passes over one replica.
const maxBackoff = 5 * time.Minute

// New returns a service; Run starts it.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Reload <= 0 {
		cfg.Reload = 5 * time.Second
	}
	return &Service{cfg: cfg, workers: map[string]*worker{}, manifests: closure.NewCache(closure.MaxCachedRefs)}
}

// Notify tells the service that the primary stored snapshot file snapshot
// in repo (<client>/<repository…>) of client. It records the commit (so
// the replicas that lack it show their lag, also across a restart) and
// wakes the destinations that replicate the client. It does not wait for
// the copy.
func (s *Service) Notify(client, repo, snapshot string) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cfg.State.NoteCommit(context.Background(), client, repo, snapshot, now); err != nil {
		s.cfg.Log.Error("replication: note commit", "client", client, "repo", repo, "err", err)
	}
	for _, w := range s.workers {
		if w.d.Covers(client) {
			w.mark(repo, now)
		}
	}
}

// Run replicates until ctx ends, then waits for the passes in progress to
// stop (a stopped pass resumes with the next start: the replica keeps
// what it copied, and copies are content-named).
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.SpoolDir != "" {
		if err := os.MkdirAll(s.cfg.SpoolDir, 0o700); err != nil {
			return fmt.Errorf("replication spool: %w", err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(s.cfg.Reload)
	defer tick.Stop()
	for {
		s.reload(ctx, &wg)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for name, w := range s.workers {
				w.stop()
				delete(s.workers, name)
			}
			s.mu.Unlock()
			return nil
		case <-tick.C:
		}
	}
}

// reload starts a worker for each new (or changed) destination and stops
// those of removed ones.
func (s *Service) reload(ctx context.Context, wg *sync.WaitGroup) {
	ds, err := s.cfg.State.Destinations(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Error("replication: read destinations", "err", err)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, d := range ds {
		seen[d.Name] = true
		if w, ok := s.workers[d.Name]; ok {
			if sameDestination(w.d, d) {
				continue
			}
			w.stop()
		}
		w := newWorker(ctx, s, d)
		s.workers[d.Name] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run()
		}()
	}
	for name, w := range s.workers {
		if !seen[name] {
			w.stop()
			delete(s.workers, name)
		}
	}
}

func sameDestination(a, b replicas.Destination) bool {
	return a.Location == b.Location && a.CredentialsFile == b.CredentialsFile && slices.Equal(a.Clients, b.Clients) &&
		a.Bandwidth == b.Bandwidth && a.Concurrency == b.Concurrency && a.ReconcileEvery == b.ReconcileEvery && a.Created.Equal(b.Created) &&
		reflect.DeepEqual(a.Retention, b.Retention)
}

// item is one repository's replica as its worker tracks it.
type item struct {
	dirty     bool
	notBefore time.Time // backoff after a failed pass
	failures  int
	// since is the oldest commit noted after the running pass (or the
	// last one) started: the pass may have missed it.
	since time.Time
	// retained is when the destination's retention last ran on the
	// replica (zero: not since the worker started).
	retained time.Time
}

// worker replicates to one destination.
type worker struct {
	s      *Service
	d      replicas.Destination
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	lim    *ratelimit.Limiter

	wake chan struct{}

	mu    sync.Mutex // guards items; taken inside Service.mu
	items map[string]*item
}

func newWorker(ctx context.Context, s *Service, d replicas.Destination) *worker {
	ctx, cancel := context.WithCancel(ctx)
	w := &worker{s: s, d: d, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), items: map[string]*item{},
		log: s.cfg.Log.With("destination", d.Name)}
	if d.Bandwidth > 0 {
		w.lim = ratelimit.New(d.Bandwidth)
	}
	return w
}

func (w *worker) stop() { w.cancel() }

// mark makes repo due for a pass (now, unless it is backing off).
func (w *worker) mark(repo string, t time.Time) {
	w.mu.Lock()
	it := w.items[repo]
	if it == nil {
		it = &item{}
		w.items[repo] = it
	}
	it.dirty = true
	if !t.IsZero() && it.since.IsZero() {
		it.since = t
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// reconcile marks every repository the destination replicates.
func (w *worker) reconcile() {
	repos, err := w.s.cfg.State.ReplicaRepos(w.ctx)
	if err != nil {
		if w.ctx.Err() == nil {
			w.log.Error("replication: list repositories", "err", err)
		}
		return
	}
	for _, r := range repos {
		if w.d.Covers(r.Client) {
			w.mark(r.Repo, time.Time{})
		}
	}
}

// next returns the repository due first and how long to wait if none is
// due yet (0: none is dirty at all).
func (w *worker) next(now time.Time) (repo string, wait time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var soonest time.Time
	for r, it := range w.items {
		if !it.dirty {
			continue
		}
		if !it.notBefore.After(now) {
			if repo == "" || r < repo {
				repo = r
			}
			continue
		}
		if soonest.IsZero() || it.notBefore.Before(soonest) {
			soonest = it.notBefore
		}
	}
	if repo != "" || soonest.IsZero() {
		return repo, 0
	}
	return "", soonest.Sub(now)
}

func (w *worker) run() {
	w.log.Info("replication started", "location", w.d.Location)
	defer w.log.Info("replication stopped")
	every := w.d.ReconcileEvery
	if every <= 0 {
		every = 15 * time.Minute
	}
	reconcile := time.NewTicker(every)
	defer reconcile.Stop()
	var t *target
	w.reconcile()
	for w.ctx.Err() == nil {
		repo, wait := w.next(w.s.cfg.Now())
		if repo == "" {
			var timer <-chan time.Time
			var tm *time.Timer
			if wait > 0 {
				tm = time.NewTimer(wait)
				timer = tm.C
			}
			select {
			case <-w.ctx.Done():
			case <-w.wake:
			case <-timer:
			case <-reconcile.C:
				w.reconcile()
			}
			if tm != nil {
				tm.Stop()
			}
			continue
		}
		if t == nil {
			var err error
			if t, err = connect(w.ctx, w.d, w.log); err != nil {
				w.failed(repo, fmt.Errorf("connect to %s: %w", w.d.Location, err), replicate.Stats{})
				continue
			}
		}
		w.pass(t, repo)
	}
}

// pass replicates one repository.
func (w *worker) pass(t *target, repo string) {
	ctx, st := w.ctx, w.s.cfg.State
	it := w.take(repo)
	last := w.lastCommitted(repo)
	client, _, _ := strings.Cut(repo, "/")
	log := w.log.With("client", client, "repo", repo)
	start := w.s.cfg.Now()
	src, dst, prim, want, err := w.openPass(t, repo, log)
	if err != nil {
		w.failed(repo, err, replicate.Stats{})
		return
	}
	stats, err := w.sync(log, repo, src, dst, want)
	if err == nil && prim != nil && w.d.Retention != nil {
		err = w.retain(ctx, log, repo, it, dst)
	}
	if t.s3 == nil && t.rest == nil {
		dst.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			log.Info("replication pass stopped", "copied", stats.Copied, "bytes", stats.CopiedBytes)
			w.mark(repo, time.Time{}) // resumed by the next start's reconciliation
			_ = st.PassFailed(context.WithoutCancel(ctx), w.d.Name, repo, w.s.cfg.Now(), "stopped: the server shut down mid-pass",
				lag(stats), pendingOf(last, stats))
			return
		}
		w.failed(repo, err, stats)
		return
	}
	w.succeeded(log, repo, it, last, start, stats)
}

// take starts a pass on repo: its item is no longer dirty.
func (w *worker) take(repo string) *item {
	w.mu.Lock()
	defer w.mu.Unlock()
	it := w.items[repo]
	it.dirty = false
	it.since = time.Time{}
	return it
}

// lastCommitted returns what the primary committed to repo before the
// pass lists it (zero if that cannot be read).
func (w *worker) lastCommitted(repo string) replicas.ReplicaRepo {
	var last replicas.ReplicaRepo
	if repos, err := w.s.cfg.State.ReplicaRepos(w.ctx); err == nil {
		for _, r := range repos {
			if r.Repo == repo {
				last = r
			}
		}
	}
	return last
}

// openPass opens repo's primary and replica and, for a cairn repository
// opened with the server's keys, the snapshot closure the replica wants
// (nil: everything).
func (w *worker) openPass(t *target, repo string, log *slog.Logger) (src, dst backend.Backend, prim *repository.Repository,
	want func(backend.Handle) bool, err error) {
	ctx := w.ctx
	src, err = w.s.cfg.Open(ctx, repo)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("open the primary: %w", err)
	}
	if err := t.checkServer(ctx); err != nil {
		return nil, nil, nil, nil, err
	}
	if w.d.Retention != nil {
		if err := CheckRetention(w.d); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	dst, err = t.replica(ctx, repo)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("open the replica: %w", err)
	}
	// A cairn repository is copied by snapshot closure (package closure), and
	// a destination with its own retention applies it to the replica
	// after the copy; a restic repository is copied whole, without
	// retention.
	// A directory replica is opened per pass (pass closes it); on a
	// failure here it is closed before returning.
	fail := func(err error) (backend.Backend, backend.Backend, *repository.Repository, func(backend.Handle) bool, error) {
		if t.s3 == nil && t.rest == nil {
			dst.Close()
		}
		return nil, nil, nil, nil, err
	}
	if w.s.cfg.OpenRepo != nil || w.d.Retention != nil {
		if prim, err = w.openRepo(ctx, repo, src); err != nil {
			return fail(fmt.Errorf("open the primary with the server's keys: %w", err))
		}
	}
	if prim != nil {
		rep, err := w.openReplica(ctx, repo, dst)
		if err == nil {
			want, err = closure.Want(ctx, log, prim, src, rep, dst, w.s.manifests.Refs(repo, prim.ManifestRefs))
		}
		if err != nil {
			return fail(fmt.Errorf("what the replica keeps: %w", err))
		}
	}
	return src, dst, prim, want, nil
}

// sync copies what the replica wants from src to dst, recording the
// bytes still to copy in the status every second of a long pass.
func (w *worker) sync(log *slog.Logger, repo string, src, dst backend.Backend, want func(backend.Handle) bool) (replicate.Stats, error) {
	ctx, st := w.ctx, w.s.cfg.State
	var found, copied atomic.Int64
	live := make(chan struct{})
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-live:
				return
			case <-tick.C:
				if f := found.Load(); f > 0 {
					if err := st.SetLagBytes(ctx, w.d.Name, repo, max(0, f-copied.Load())); err != nil && ctx.Err() == nil {
						log.Error("replication: record lag", "err", err)
					}
				}
			}
		}
	}()
	stats, err := replicate.Sync(ctx, src, dst, replicate.Options{
		Concurrency: w.d.Concurrency,
		Limiter:     w.lim,
		SpoolDir:    w.s.cfg.SpoolDir,
		Want:        want,
		Ledger:      &ledger{ctx: ctx, st: st, dest: w.d.Name, repo: repo},
		Found:       func(_ int, n int64) { found.Add(n) },
		Progress: func(h backend.Handle, n int64, c bool) {
			if c && h.Type != backend.Config {
				copied.Add(n)
			}
		},
	})
	close(live)
	<-liveDone
	return stats, err
}

// succeeded records a pass that copied everything it set out to: the
// item's failures clear, and the status notes the last commit the pass
// covered (one made before it started).
func (w *worker) succeeded(log *slog.Logger, repo string, it *item, last replicas.ReplicaRepo, start time.Time, stats replicate.Stats) {
	end := w.s.cfg.Now()
	// Held so that no commit is noted between reading it and recording
	// the pass (Notify takes s.mu, then w.mu).
	w.s.mu.Lock()
	w.mu.Lock()
	it.failures, it.notBefore = 0, time.Time{}
	still := it.since
	w.mu.Unlock()
	snap, snapTime := "", time.Time{}
	if last.LastCommit != "" && !last.CommitTime.After(start) {
		snap, snapTime = last.LastCommit, last.CommitTime
	}
	err := w.s.cfg.State.PassSucceeded(w.ctx, w.d.Name, repo, end, still, snap, snapTime)
	w.s.mu.Unlock()
	if err != nil {
		log.Error("replication: record pass", "err", err)
	}
	if stats.Copied > 0 {
		log.Info("replicated", "files", stats.Copied, "bytes", stats.CopiedBytes, "snapshots", stats.Snapshots, "took", end.Sub(start).Round(time.Millisecond).String())
	}
}

// openRepo opens be (repo's primary or replica) with the server's keys.
func (w *worker) openRepo(ctx context.Context, repo string, be backend.Backend) (*repository.Repository, error) {
	if w.s.cfg.OpenRepo == nil {
		return nil, errors.New("the server cannot open repositories for replication")
	}
	return w.s.cfg.OpenRepo(ctx, repo, be)
}

// openReplica opens the replica with the server's keys; nil, nil while it
// has no config yet (its first pass).
func (w *worker) openReplica(ctx context.Context, repo string, dst backend.Backend) (*repository.Repository, error) {
	err := dst.Load(ctx, backend.Handle{Type: backend.Config, Name: "config"}, 1, 0, func(io.Reader) error { return nil })
	if errors.Is(err, backend.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return w.openRepo(ctx, repo, dst)
}

// retain applies the destination's retention policy to the replica once
// its Every has passed since the last run (the first pass after a start
// runs it): maintain.Apply, the server's own retention run, with the
// server's keys on the replica. The replica has no backup sessions; its
// worker is its only writer.
func (w *worker) retain(ctx context.Context, log *slog.Logger, repo string, it *item, dst backend.Backend) error {
	p := *w.d.Retention
	now := w.s.cfg.Now()
	w.mu.Lock()
	due := it.retained.IsZero() || now.Sub(it.retained) >= p.Every
	w.mu.Unlock()
	if !due {
		return nil
	}
	r, err := w.openReplica(ctx, repo, dst)
	if err != nil || r == nil {
		return fmt.Errorf("open the replica for its retention: %w", err)
	}
	out, err := maintain.Apply(ctx, maintain.Target{Repo: r, Backend: dst, Log: log.With("retention", "replica"), Now: w.s.cfg.Now}, p)
	w.recordRetention(log, repo, now, out, err)
	if err != nil {
		return fmt.Errorf("the replica's retention: %s: %w", out.Step, err)
	}
	if out.Over != nil {
		log.Warn("replica retention: space budget not met; nothing forgotten", "err", out.Over)
	}
	w.mu.Lock()
	it.retained = now
	w.mu.Unlock()
	return nil
}

// recordRetention records a retention run on repo's replica in the
// status (`destination show`): what it kept and removed, or where it
// stopped.
func (w *worker) recordRetention(log *slog.Logger, repo string, at time.Time, out maintain.Outcome, err error) {
	run := replicas.RetentionRun{At: at, Removed: out.Removed, Freed: out.BytesFreed}
	if out.Prune != nil {
		run.Kept, run.Packs = out.Prune.Snapshots, len(out.Prune.Deleted)
	}
	if err != nil {
		run.Error = fmt.Sprintf("%s: %v", out.Step, err)
	} else if out.Over != nil {
		run.Error = out.Over.Error()
	}
	if rerr := w.s.cfg.State.RecordRetention(context.WithoutCancel(w.ctx), w.d.Name, repo, run); rerr != nil {
		log.Error("replication: record the retention run", "err", rerr)
	}
}

// lag is what a pass found missing and did not copy.
func lag(s replicate.Stats) int64 { return max(0, s.MissingBytes-s.CopiedBytes) }

// pendingOf is when the replica began to lack what a pass left behind:
// the primary's last commit, if the pass saw anything missing.
func pendingOf(last replicas.ReplicaRepo, s replicate.Stats) time.Time {
	if s.Missing > s.Copied {
		return last.CommitTime
	}
	return time.Time{}
}

// failed records a failed pass and schedules the next with backoff.
func (w *worker) failed(repo string, err error, stats replicate.Stats) {
	now := w.s.cfg.Now()
	w.mu.Lock()
	it := w.items[repo]
	it.failures++
	backoff := min(maxBackoff, time.Second<<min(it.failures-1, 16))
	it.notBefore = now.Add(backoff)
	it.dirty = true
	w.mu.Unlock()
	client, _, _ := strings.Cut(repo, "/")
	w.log.Warn("replication failed", "client", client, "repo", repo, "err", err, "retry_in", backoff.String())
	var last replicas.ReplicaRepo
	if repos, lerr := w.s.cfg.State.ReplicaRepos(w.ctx); lerr == nil {
		for _, r := range repos {
			if r.Repo == repo {
				last = r
			}
		}
	}
	pending := pendingOf(last, stats)
	if stats.Missing == 0 && !errors.Is(err, replicate.ErrCorruptSource) {
		// The pass did not get as far as listing: assume the worst.
		pending = last.CommitTime
	}
	if rerr := w.s.cfg.State.PassFailed(context.WithoutCancel(w.ctx), w.d.Name, repo, now, err.Error(), lag(stats), pending); rerr != nil {
		w.log.Error("replication: record failure", "repo", repo, "err", rerr)
	}
}

// ledger is replicate.Ledger over the state database, for one pass.
type ledger struct {
	ctx        context.Context
	st         *state.State
	dest, repo string

	once    sync.Once
	dropped map[backend.Handle]bool
	err     error
}

// Copied reports true only for a file the ledger marks dropped; nothing
// marks one (the column is unused): what a destination's retention
// removed stays removed by the closure (package closure), which follows the
// replica's tombstones and lets a pruned pack come back when a kept
// snapshot needs it. Any other file the replica lacks is copied (again),
// which is how reconciliation heals a replica.
func (l *ledger) Copied(h backend.Handle) bool {
	l.once.Do(func() { l.dropped, l.err = l.st.ReplicaDropped(l.ctx, l.dest, l.repo) })
	return l.err == nil && l.dropped[h]
}

func (l *ledger) Record(h backend.Handle) error {
	return l.st.RecordReplicated(l.ctx, l.dest, l.repo, h)
}
