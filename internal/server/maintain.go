package server

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
//     each writer's last statement is kept whatever the policy says (its
//     next commit chains to it, and it is the writer's dedup scope, R16);
//  4. garbage-collects with the policy's grace period (prune.Run, R12),
//     sweeping a plan only once the backup sessions of the repository
//     that were open when it was condemned have ended (sessions.go).
//
// A space-driven policy that cannot meet its budget without deleting a
// floor snapshot deletes nothing of the kind: the client is marked over
// budget in the state database, cairn_client_budget_exceeded is 1 and its
// uploads get 507 until a run meets the budget or the policy changes
// (R13). Each run on a repository is recorded as a job.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/retention"
)

// startMaintenance runs the maintenance scheduler until ctx ends or stop
// is called; stop waits for a running job to notice.
func (s *Server) startMaintenance(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	ticks := s.opts.MaintainTicks
	var ticker *time.Ticker
	if ticks == nil {
		ticker = time.NewTicker(s.opts.MaintainTick)
		ticks = ticker.C
	}
	go func() {
		defer close(done)
		if ticker != nil {
			defer ticker.Stop()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticks:
				s.MaintainDue(ctx)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// MaintainDue maintains every client whose policy's Every has passed
// since its last job started (on the server's clock).
func (s *Server) MaintainDue(ctx context.Context) {
	pols, err := s.data.State.Policies(ctx)
	if err != nil {
		s.log.Error("maintenance: read policies", "err", err)
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
		last, err := s.data.State.LastJobStart(ctx, name)
		if err != nil {
			s.log.Error("maintenance: last job", "client", name, "err", err)
			continue
		}
		if !last.IsZero() && s.opts.Now().Sub(last) < p.Every {
			continue
		}
		s.MaintainClient(ctx, name, p)
	}
}

// MaintainClient applies p to each of the client's cairn repositories now
// and records a job for each.
func (s *Server) MaintainClient(ctx context.Context, client string, p Policy) []Job {
	repos, err := s.data.State.Repos(ctx, client)
	if err != nil {
		s.log.Error("maintenance: list repositories", "client", client, "err", err)
		return nil
	}
	var jobs []Job
	over, unsure := []string{}, false
	for _, repo := range repos {
		j, budget, ok := s.maintainRepo(ctx, client, repo, p)
		if !ok {
			continue
		}
		switch {
		case budget:
			over = append(over, repo+": "+j.Error)
		case j.Error != "":
			unsure = true
		}
		if err := s.data.State.AddJob(context.WithoutCancel(ctx), j); err != nil {
			s.log.Error("maintenance: record job", "client", client, "err", err)
		}
		jobs = append(jobs, j)
	}
	if p.MaxSize > 0 && (len(over) > 0 || !unsure) {
		note := strings.Join(over, "; ")
		if err := s.data.State.SetBudget(context.WithoutCancel(ctx), client, len(over) > 0, note, s.opts.Now()); err != nil {
			s.log.Error("maintenance: record budget", "client", client, "err", err)
		}
		if len(over) > 0 {
			s.log.Error("ALERT: space budget exceeded; uploads refused with 507 until resolved", "client", client, "budget", p.MaxSize, "why", note)
		}
	}
	return jobs
}

// maintainRepo runs one job; ok is false for a repository that is not a
// cairn repository (left alone, no job). budget reports an unmet space
// budget.
func (s *Server) maintainRepo(ctx context.Context, client, repo string, p Policy) (j Job, budget, ok bool) {
	log := s.log.With("client", client, "repo", repo)
	j = Job{Client: client, Repo: repo, Start: s.opts.Now()}
	fail := func(what string, err error) (Job, bool, bool) {
		j.End, j.Error = s.opts.Now(), fmt.Sprintf("%s: %v", what, err)
		log.Error("maintenance failed", "step", what, "err", err)
		return j, budget, true
	}
	// Bounded: a repository held by a long request never holds up the
	// other tenants' maintenance (R26); it is tried again next run.
	cctx, release, err := s.coordinator().coordinateWithin(ctx, repo, s.opts.MaintainWait)
	if errors.Is(err, errRepoBusy) {
		log.Warn("maintenance skipped this run: repository busy", "err", err)
		return fail("coordinate", err)
	}
	if errors.Is(err, ErrNotCoordinator) {
		log.Info("maintenance left to the coordinating server", "err", err)
		return j, false, false
	}
	if err != nil {
		return fail("coordinate", err)
	}
	defer release()
	defer s.dropIndex(repo) // before release: a prune may have rewritten the index
	be, err := s.repos.get(cctx, repo)
	if err != nil {
		return fail("open", err)
	}
	cr, err := s.cairnRepo(cctx, repo, be)
	if err != nil {
		return fail("open", err)
	}
	if cr == nil {
		return j, false, false
	}
	r, err := cr.open(cctx, be)
	if err != nil {
		return fail("open", err)
	}
	if err := r.LoadIndex(cctx); err != nil { // manifests, for anomaly detection
		return fail("load index", err)
	}
	before, err := fileSizes(cctx, be)
	if err != nil {
		return fail("list", err)
	}
	defer func() {
		// Whatever happened, files may be gone: measure again.
		s.remeasure(client)
		if after, err := fileSizes(context.WithoutCancel(ctx), be); err == nil {
			for h, n := range before {
				if _, ok := after[h]; !ok {
					j.BytesFreed += n
				}
			}
		}
	}()
	l, err := forget.Load(cctx, r, func(m string) { log.Warn("retention: " + m) })
	if err != nil {
		return fail("load snapshots", err)
	}
	rp, err := p.RepoPolicy()
	if err != nil {
		return fail("policy", err)
	}
	ds, err := forget.Decide(cctx, r, l, rp)
	switch {
	case errors.Is(err, retention.ErrBudget):
		budget, j.Error = true, err.Error()
		ds = nil // remove nothing; prune still frees what is garbage
	case err != nil:
		return fail("retention", err)
	}
	// A writer's last statement stays whatever the policy says: its next
	// commit must chain to it (seq, prev) and it is the writer's dedup
	// scope (R16).
	lastOf := map[[32]byte]*repository.Snapshot{}
	for _, sn := range l.ByID {
		w := sn.File.Statement.Writer
		if o := lastOf[w]; o == nil || sn.File.Statement.Seq > o.File.Statement.Seq {
			lastOf[w] = sn
		}
	}
	for _, d := range ds {
		if d.Keep {
			continue
		}
		if sn := l.ByID[d.Snapshot.ID]; lastOf[sn.File.Statement.Writer] == sn {
			log.Info("snapshot kept: its writer's last statement", "snapshot", d.Snapshot.ID[:8])
			continue
		}
		if err := r.ForgetSnapshot(cctx, l.ByID[d.Snapshot.ID], strings.Join(d.Reasons, "; ")); err != nil {
			return fail("forget "+d.Snapshot.ID[:8], err)
		}
		j.SnapshotsRemoved++
		log.Info("snapshot forgotten", "snapshot", d.Snapshot.ID[:8], "policy_time", d.Snapshot.Time, "why", strings.Join(d.Reasons, "; "))
	}
	rep, err := prune.Run(cctx, r, prune.Options{Grace: p.Grace, Log: log,
		SessionsOpenAt: s.sessionsOpenAt(client, repo), Now: s.opts.Now})
	if err != nil {
		return fail("prune", err)
	}
	j.PacksDeleted, j.End = len(rep.Deleted), s.opts.Now()
	log.Info("maintenance done", "snapshots_removed", j.SnapshotsRemoved, "packs_condemned", len(rep.Condemned),
		"packs_deleted", len(rep.Deleted), "plans_pending", rep.PlansPending)
	return j, budget, true
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

// remeasure makes the next quota check measure the client's storage
// afresh: maintenance deleted files and wrote some (tombstones, plans,
// repacked packs) past the upload accounting.
func (s *Server) remeasure(client string) {
	s.usage.mu.Lock()
	delete(s.usage.used, client)
	s.usage.mu.Unlock()
}

// overBudget answers an upload with 507 if the client's space budget is
// exceeded (R13); it reports whether it did.
func (s *Server) overBudget(q *request) bool {
	b, err := s.data.State.BudgetOf(q.r.Context(), q.client.Name)
	if err != nil {
		q.fail("budget", err)
		return true
	}
	if !b.Exceeded {
		return false
	}
	q.refuse(507, restapi.CodeQuota, "client %s is over its space budget since %s and the server cannot free space without deleting a floor snapshot (%s); uploads resume once the budget is raised (`cairn server client policy`) or met",
		q.client.Name, b.Since.UTC().Format(time.RFC3339), b.Note)
	return true
}

// budgetCollector exports cairn_client_budget_exceeded per client with a
// space-driven policy, read from the state database at scrape time.
type budgetCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func newBudgetCollector(s *Server) *budgetCollector {
	return &budgetCollector{s: s, desc: prometheus.NewDesc("cairn_client_budget_exceeded",
		"1 while a client's space-driven policy cannot meet its budget without deleting a floor snapshot (uploads get 507); 0 otherwise.",
		[]string{"client"}, nil)}
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	pols, err := c.s.data.State.Policies(ctx)
	if err != nil {
		return
	}
	for name, p := range pols {
		if p.MaxSize == 0 {
			continue
		}
		b, err := c.s.data.State.BudgetOf(ctx, name)
		if err != nil {
			continue
		}
		v := 0.0
		if b.Exceeded {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, name)
	}
}
