// Package maintain is the cairn server's maintenance scheduler.
//
// Scheduled maintenance (DESIGN point 4): every policy's Every, for each
// client with a policy and each of its cairn repositories, the server
//
//  1. becomes the repository's coordinator (Server.Coordinate), so of
//     several servers on one storage only the lease holder maintains it;
//  2. applies the client's retention policy with its own keys — the
//     metadata identity and the coordinator signing key, which read
//     headers, tags, host labels and manifests but never names or
//     contents — aging writers' snapshots by the server's own receipts
//     (R14), exactly as `cairn forget` does (forget.Load, forget.Decide);
//  3. forgets each snapshot the policy drops: a coordinator-signed
//     tombstone first, then the snapshot file (repository.ForgetSnapshot);
//     each writer's last statement is kept whatever the policy says (it
//     is the writer's dedup scope, R16; forget.WritersLast);
//  4. garbage-collects with the policy's grace period (prune.Run, R12),
//     sweeping a plan only once the backup sessions of the repository
//     that were open when it was condemned have ended (sessions.go).
//
// A space-driven policy that cannot meet its budget without deleting a
// floor snapshot deletes nothing of the kind: the client is marked over
// budget in the state database, cairn_client_budget_exceeded is 1 and its
// uploads get 507 until a run meets the budget or the policy changes
// (R13). Each run on a repository is recorded as a job.
//
// The scheduler knows the state database and the repositories; the
// server (Host) coordinates a repository, opens it with its keys, and
// hears when a run on it is over.
package maintain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
)

// Errors a Host's Coordinate wraps so the scheduler can tell a repository
// to skip this run from one that failed.
var (
	// ErrBusy: another request or job held the repository longer than
	// the scheduler waits.
	ErrBusy = errors.New("repository busy")
	// ErrElsewhere: another server coordinates the repository and
	// maintains it.
	ErrElsewhere = errors.New("another server coordinates the repository")
)

// Host is what the scheduler needs of the server.
type Host interface {
	// Coordinate makes this server repo's coordinator (waiting at most
	// wait for another holder in this server) until release is called.
	Coordinate(ctx context.Context, repo string, wait time.Duration) (cctx context.Context, release func(), err error)
	// Open opens repo with the server's keys; nil, nil for a repository
	// that is not a cairn repository.
	Open(ctx context.Context, repo string) (*repository.Repository, backend.Backend, error)
	// Done is called once a run on client's repo is over, still
	// coordinating: files may be gone and the index rewritten.
	Done(client, repo string)
}

// Scheduler runs maintenance jobs.
type Scheduler struct {
	State *state.State
	Host  Host
	Log   *slog.Logger
	Now   func() time.Time
	// Wait bounds how long a job waits for a repository another request
	// holds; it then goes on with the next.
	Wait time.Duration
}

// Start runs Due on every tick until ctx ends or stop is called; stop
// waits for a running job to notice.
func (s *Scheduler) Start(ctx context.Context, ticks <-chan time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticks:
				s.Due(ctx)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Due maintains every client whose policy's Every has passed
// since its last job started (on the server's clock).
func (s *Scheduler) Due(ctx context.Context) {
	pols, err := s.State.Policies(ctx)
	if err != nil {
		s.Log.Error("maintenance: read policies", "err", err)
		return
	}
	names := make([]string, 0, len(pols))
	for n := range pols {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		p := pols[name]
		last, err := s.State.LastJobStart(ctx, name)
		if err != nil {
			s.Log.Error("maintenance: last job", "client", name, "err", err)
			continue
		}
		if !last.IsZero() && s.Now().Sub(last) < p.Every {
			continue
		}
		s.Client(ctx, name, p)
	}
}

// Client applies p to each of the client's cairn repositories now
// and records a job for each.
func (s *Scheduler) Client(ctx context.Context, client string, p policy.Policy) []state.Job {
	repos, err := s.State.Repos(ctx, client)
	if err != nil {
		s.Log.Error("maintenance: list repositories", "client", client, "err", err)
		return nil
	}
	var jobs []state.Job
	over, unsure := []string{}, false
	for _, repo := range repos {
		j, budget, ok := s.Repo(ctx, client, repo, p)
		if !ok {
			continue
		}
		switch {
		case budget:
			over = append(over, repo+": "+j.Error)
		case j.Error != "":
			unsure = true
		}
		if err := s.State.AddJob(context.WithoutCancel(ctx), j); err != nil {
			s.Log.Error("maintenance: record job", "client", client, "err", err)
		}
		jobs = append(jobs, j)
	}
	if p.MaxSize > 0 && (len(over) > 0 || !unsure) {
		note := strings.Join(over, "; ")
		if err := s.State.SetBudget(context.WithoutCancel(ctx), client, len(over) > 0, note, s.Now()); err != nil {
			s.Log.Error("maintenance: record budget", "client", client, "err", err)
		}
		if len(over) > 0 {
			s.Log.Error("ALERT: space budget exceeded; uploads refused with 507 until resolved", "client", client, "budget", p.MaxSize, "why", note)
		}
	}
	return jobs
}

// Repo runs one job; ok is false for a repository that is not a
// cairn repository (left alone, no job). budget reports an unmet space
// budget.
func (s *Scheduler) Repo(ctx context.Context, client, repo string, p policy.Policy) (j state.Job, budget, ok bool) {
	log := s.Log.With("client", client, "repo", repo)
	j = state.Job{Client: client, Repo: repo, Start: s.Now()}
	fail := func(what string, err error) (state.Job, bool, bool) {
		j.End, j.Error = s.Now(), fmt.Sprintf("%s: %v", what, err)
		log.Error("maintenance failed", "step", what, "err", err)
		return j, budget, true
	}
	// Bounded: a repository held by a long request never holds up the
	// other tenants' maintenance (R26); it is tried again next run.
	cctx, release, err := s.Host.Coordinate(ctx, repo, s.Wait)
	if errors.Is(err, ErrBusy) {
		log.Warn("maintenance skipped this run: repository busy", "err", err)
		return fail("coordinate", err)
	}
	if errors.Is(err, ErrElsewhere) {
		log.Info("maintenance left to the coordinating server", "err", err)
		return j, false, false
	}
	if err != nil {
		return fail("coordinate", err)
	}
	defer release()
	defer s.Host.Done(client, repo) // before release: a prune may have rewritten the index
	r, be, err := s.Host.Open(cctx, repo)
	if err != nil {
		return fail("open", err)
	}
	if r == nil {
		return j, false, false
	}
	out, err := Apply(cctx, Target{Repo: r, Backend: be, Log: log, SessionsOpenAt: s.sessionsOpenAt(client, repo), Now: s.Now}, p)
	j.SnapshotsRemoved, j.BytesFreed = out.Removed, out.BytesFreed
	if err != nil {
		return fail(out.Step, err)
	}
	if out.Over != nil {
		budget, j.Error = true, out.Over.Error()
	}
	j.PacksDeleted, j.End = len(out.Prune.Deleted), s.Now()
	return j, budget, true
}

// Target is a repository a policy is applied to: a client's repository
// in the server's storage, or a replica of it on a replication
// destination (internal/server/replication), opened with the server's
// keys. The caller holds it (as coordinator, or as its only writer).
type Target struct {
	Repo    *repository.Repository
	Backend backend.Backend // Repo's storage, to measure what a run frees
	Log     *slog.Logger
	// SessionsOpenAt is prune.Options.SessionsOpenAt: the backup sessions
	// that write to the repository; nil for none (a replica).
	SessionsOpenAt func(ctx context.Context, t time.Time) (int, error)
	Now            func() time.Time
}

// Outcome is what Apply did.
type Outcome struct {
	Removed    int           // snapshots forgotten
	Over       error         // retention.ErrBudget's error: a space budget not met, nothing forgotten
	Prune      *prune.Report // set once prune ran
	BytesFreed int64
	Step       string // what failed
}

// Apply applies p to t: it forgets what the policy drops (receipts,
// floors, a writer's last statement, tombstones first) and
// garbage-collects with the policy's grace period. It is the one
// retention run, for the primary and for replicas alike.
func Apply(ctx context.Context, t Target, p policy.Policy) (out Outcome, err error) {
	if t.Now == nil {
		t.Now = time.Now
	}
	if err := t.Repo.LoadIndex(ctx); err != nil { // manifests, for anomaly detection
		out.Step = "load index"
		return out, err
	}
	before, err := fileSizes(ctx, t.Backend)
	if err != nil {
		out.Step = "list"
		return out, err
	}
	defer func() {
		// Whatever happened, files may be gone: measure again.
		if after, err := fileSizes(context.WithoutCancel(ctx), t.Backend); err == nil {
			for h, n := range before {
				if _, ok := after[h]; !ok {
					out.BytesFreed += n
				}
			}
		}
	}()
	removed, over, step, err := applyRetention(ctx, t.Repo, t.Log, p)
	out.Removed, out.Over = removed, over
	if err != nil {
		out.Step = step
		return out, err
	}
	rep, err := prune.Run(ctx, t.Repo, prune.Options{Grace: p.Grace, Log: t.Log,
		SessionsOpenAt: t.SessionsOpenAt, Now: t.Now})
	if err != nil {
		out.Step = "prune"
		return out, err
	}
	out.Prune = rep
	t.Log.Info("maintenance done", "snapshots_removed", out.Removed, "packs_condemned", len(rep.Condemned),
		"packs_deleted", len(rep.Deleted), "plans_pending", rep.PlansPending)
	return out, nil
}

// fileSizes lists every file of a repository with its size.
func fileSizes(ctx context.Context, be backend.Backend) (map[backend.Handle]int64, error) {
	out := map[backend.Handle]int64{}
	for _, t := range backend.AllTypes {
		if err := be.List(ctx, t, func(fi backend.FileInfo) error {
			out[fi.Handle] = fi.Size
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sessionsOpenAt is prune.Options.SessionsOpenAt for one repository.
func (s *Scheduler) sessionsOpenAt(client, repo string) func(ctx context.Context, t time.Time) (int, error) {
	return func(ctx context.Context, t time.Time) (int, error) {
		return s.State.SessionsOpenAt(ctx, client, repo, t, s.Now())
	}
}

// applyRetention forgets the snapshots policy p drops, never a writer's
// last statement (forget.Decide keeps it). over is retention.ErrBudget's
// error when a space budget cannot be met (then nothing is forgotten;
// prune still frees garbage); step names what failed.
func applyRetention(ctx context.Context, r *repository.Repository, log *slog.Logger, p policy.Policy) (removed int, over error, step string, err error) {
	rp, err := p.RepoPolicy()
	if err != nil {
		return 0, nil, "policy", err
	}
	res, err := retain(ctx, r, log, rp, retainOptions{})
	return res.removed, res.over, res.step, err
}

// retainOptions are what an owner's request adds to a policy run.
type retainOptions struct {
	scope  []string // the snapshots the policy sees (IDs); nil: all
	dryRun bool     // decide, forget nothing
	rule   string   // prefixed to each tombstone's rule
}

// retained is what retain decided and did.
type retained struct {
	loaded    *forget.Loaded
	decisions []retention.Decision
	removed   int
	over      error  // retention.ErrBudget's error: nothing forgotten
	step      string // what failed
}

// retain applies rp to the repository: it ages every snapshot by its
// receipt (R14), decides with forget.Decide (floors, R13) and forgets
// what the policy drops, tombstone first (Decide keeps each writer's
// last statement, forget.WritersLast).
func retain(ctx context.Context, r *repository.Repository, log *slog.Logger, rp forget.Policy, o retainOptions) (res retained, err error) {
	l, err := forget.Load(ctx, r, func(m string) { log.Warn("retention: " + m) })
	if err != nil {
		res.step = "load snapshots"
		return res, err
	}
	res.loaded = l
	if o.scope != nil {
		sub := *l
		sub.Snapshots = nil
		for _, sn := range l.Snapshots {
			if slices.Contains(o.scope, sn.ID) {
				sub.Snapshots = append(sub.Snapshots, sn)
			}
		}
		l = &sub
	}
	ds, err := forget.Decide(ctx, r, l, rp)
	switch {
	case errors.Is(err, retention.ErrBudget):
		res.over = err
		return res, nil
	case err != nil:
		res.step = "retention"
		return res, err
	}
	res.decisions = ds
	for _, d := range ds {
		if d.Keep {
			continue
		}
		sn := l.ByID[d.Snapshot.ID]
		if o.dryRun {
			continue
		}
		why := o.rule + strings.Join(d.Reasons, "; ")
		if err := r.ForgetSnapshot(ctx, sn, why); err != nil {
			res.step = "forget " + d.Snapshot.ID[:8]
			return res, err
		}
		res.removed++
		log.Info("snapshot forgotten", "snapshot", d.Snapshot.ID[:8], "policy_time", d.Snapshot.Time, "why", why)
	}
	return res, nil
}
