package maintain

// Owner orders: the repository's owner asks the server to forget
// snapshots or to prune (docs/retention.md, "On a cairn server"). The
// server carries them out as its own maintenance: as coordinator, with
// its own keys, through retain (receipts, floors, a writer's last
// statement, tombstones first) and prune.Run with its backup sessions.
// The caller (the server's HTTP handler) has checked the signature; check
// runs once the repository is open and coordinated, before anything
// changes, for what only the open repository can tell (whose key signed,
// which snapshots are stored).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/retention"
)

// OwnerOrder is an owner's request in the scheduler's terms: forget the
// snapshots IDs names, or apply Policy (to the snapshots Scope names, nil
// for all), then prune if Prune; or, with neither, only prune.
type OwnerOrder struct {
	IDs    []string
	Policy *forget.Policy
	Scope  []string
	DryRun bool
	Prune  bool
	// PruneOptions' Grace and RepackThreshold are the owner's; the
	// sessions and the clock are the server's.
	PruneOptions prune.Options
	// Rule prefixes each tombstone's rule: it names the request.
	Rule string
}

// OwnerResult is what an order decided and did.
type OwnerResult struct {
	Decisions []retention.Decision // forget only
	Removed   int
	Prune     *prune.Report // when pruned
}

// ErrOverBudget: a space policy cannot be met without deleting a floor
// snapshot (R13); nothing was forgotten.
var ErrOverBudget = errors.New("space budget cannot be met")

// Owner carries out an owner's order on client's repo and reports what it
// decided. check sees the open repository first; an error from it is
// returned as it is and nothing changes.
func (s *Scheduler) Owner(ctx context.Context, client, repo string, o OwnerOrder, check func(*repository.Repository) error) (*OwnerResult, error) {
	log := s.Log.With("client", client, "repo", repo, "owner_request", o.Rule)
	cctx, release, err := s.Host.Coordinate(ctx, repo, s.Wait)
	if err != nil {
		return nil, err
	}
	defer release()
	r, _, err := s.Host.Open(cctx, repo)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%s is not a cairn repository: %w", repo, backend.ErrNotFound)
	}
	if err := check(r); err != nil {
		return nil, err
	}
	if !o.DryRun {
		defer s.Host.Done(client, repo) // before release: files may be gone
	}
	if err := r.LoadIndex(cctx); err != nil {
		return nil, fmt.Errorf("load index: %w", err)
	}
	res := &OwnerResult{}
	switch {
	case o.Policy != nil:
		rt, err := retain(cctx, r, log, *o.Policy, retainOptions{scope: o.Scope, dryRun: o.DryRun, rule: o.Rule})
		res.Decisions, res.Removed = rt.decisions, rt.removed
		if err != nil {
			return res, fmt.Errorf("%s: %w", rt.step, err)
		}
		if rt.over != nil {
			return res, fmt.Errorf("%w: %w", ErrOverBudget, rt.over)
		}
	case len(o.IDs) > 0:
		if err := s.forgetIDs(cctx, r, log, o, res); err != nil {
			return res, err
		}
	}
	if o.Prune || (o.Policy == nil && len(o.IDs) == 0) {
		po := o.PruneOptions
		po.DryRun, po.Log, po.Now = o.DryRun, log, s.Now
		po.SessionsOpenAt = s.sessionsOpenAt(client, repo)
		rep, err := prune.Run(cctx, r, po)
		if err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
		res.Prune = rep
	}
	log.Info("owner request done", "dry_run", o.DryRun, "snapshots_removed", res.Removed, "pruned", res.Prune != nil)
	return res, nil
}

// forgetIDs forgets exactly the snapshots o.IDs names, all or none
// named right: each one named is forgotten, a writer's last statement
// too (the owner asked for it; the writer's next commit chains to its
// tombstone).
func (s *Scheduler) forgetIDs(ctx context.Context, r *repository.Repository, log *slog.Logger, o OwnerOrder, res *OwnerResult) error {
	l, err := forget.Load(ctx, r, func(m string) { log.Warn("retention: " + m) })
	if err != nil {
		return fmt.Errorf("load snapshots: %w", err)
	}
	byID := map[string]retention.Snapshot{}
	for _, sn := range l.Snapshots {
		byID[sn.ID] = sn
	}
	for _, id := range o.IDs {
		if _, ok := byID[id]; !ok {
			return fmt.Errorf("snapshot %s is not stored (or not readable by the server): %w", shortID(id), backend.ErrNotFound)
		}
	}
	seen := map[string]bool{}
	for _, id := range o.IDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		why := "named by the owner"
		res.Decisions = append(res.Decisions, retention.Decision{Snapshot: byID[id], Reasons: []string{why}})
		if o.DryRun {
			continue
		}
		if err := r.ForgetSnapshot(ctx, l.ByID[id], o.Rule+why); err != nil {
			return fmt.Errorf("forget %s: %w", shortID(id), err)
		}
		res.Removed++
		log.Info("snapshot forgotten", "snapshot", shortID(id), "why", o.Rule+why)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
