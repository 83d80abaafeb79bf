package prune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/ticker"
)

// DefaultGrace is safe for concurrent backups: a backup session must commit
// within half of it, or its commit is rejected (see repository.Plan).
const DefaultGrace = 24 * time.Hour

// Options configure a prune.
type Options struct {
	Grace time.Duration
	// RepackThreshold: repack a pack when at least this fraction of its
	// blob bytes is dead (0 < t ≤ 1; 0 means the default 0.5).
	RepackThreshold float64
	DryRun          bool
	Log             *slog.Logger
	// SessionsOpenAt, if set, counts the backup sessions opened at or
	// before t that have neither ended nor expired (a server's sessions
	// table for this repository; R12). A plan whose grace has passed is
	// still not swept while it counts any for the plan's condemnation
	// time (condemnedAt). Nil: no sessions are known (direct mode), the
	// grace period alone protects running backups.
	SessionsOpenAt func(ctx context.Context, t time.Time) (int, error)
	// Now is the clock SessionsOpenAt counts on (the server's); default
	// the repository's.
	Now func() time.Time
	// Progress, when set, counts the packs (and their bytes) repacked and
	// deleted; the totals grow as each step finds its work.
	Progress *ticker.Counter
}

// condemnMargin is added to a plan's condemnation time before sessions
// are counted: storage timestamps may be cut to the second, and the
// storage's and the coordinator's clocks may drift apart a little between
// the condemnation and the sweep. A later time only counts more sessions.
const condemnMargin = time.Minute

// Report says what a prune did (or, dry, would do).
type Report struct {
	Snapshots     int    `json:"snapshots"`
	LiveBlobs     int    `json:"live_blobs"`
	Packs         int    `json:"packs"`
	DeadPacks     int    `json:"dead_packs"`
	RepackedPacks int    `json:"repacked_packs"`
	Unindexed     int    `json:"unindexed_packs"`
	NewPacks      int    `json:"new_packs"`
	CopiedBytes   uint64 `json:"copied_bytes"`
	DeadBytes     uint64 `json:"dead_bytes"` // bytes in condemned packs that nothing reaches, unindexed packs whole
	// UnindexedBytes: the size of the packs no index lists (a killed
	// backup's or repack's), counted in DeadBytes too.
	UnindexedBytes uint64   `json:"unindexed_bytes"`
	Condemned      []string `json:"condemned"`
	Deleted        []string `json:"deleted"`
	Resurrected    []string `json:"resurrected"`
	IndexWritten   int      `json:"index_written"`
	IndexRemoved   int      `json:"index_removed"`
	PlansSwept     int      `json:"plans_swept"`
	PlansPending   int      `json:"plans_pending"`
	Notes          []string `json:"notes"`
}

type packStat struct {
	total, live uint64
	entries     int
	liveEntries int
}

type pruner struct {
	repo  *repository.Repository
	be    backend.Backend
	opts  Options
	rep   *Report
	live  *LiveSet
	stats map[blob.ID]*packStat
	// fragments: pack → index fragments listing it.
	fragments map[blob.ID][]string
	stored    map[blob.ID]int64
	// skew turns a storage time into opts.Now's clock (an upper bound).
	skew time.Duration
}

// Run prunes repo (see the package doc).
func Run(ctx context.Context, repo *repository.Repository, opts Options) (*Report, error) {
	if !repo.CanReadMetadata() || repo.Keys().CoordSign == nil {
		return nil, fmt.Errorf("pruning %w", crypto.ErrNeedsMetadata)
	}
	if opts.RepackThreshold <= 0 || opts.RepackThreshold > 1 {
		opts.RepackThreshold = 0.5
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = repo.Now
	}
	p := &pruner{repo: repo, be: repo.Backend(), opts: opts, rep: &Report{},
		stats: map[blob.ID]*packStat{}, fragments: map[blob.ID][]string{}, stored: map[blob.ID]int64{}}

	// 1. The storage's clock.
	var t0 time.Time
	var probe *repository.LoadedPlan
	if !opts.DryRun {
		lp, err := repo.SavePlan(ctx, repository.Plan{Created: repo.Now().UTC()})
		if err != nil {
			return nil, err
		}
		probe, t0 = &lp, lp.ModTime
	} else {
		t0 = repo.Now()
	}
	// The probe exists on storage by now: a storage time m was at most
	// m + (after − t0) on opts.Now's clock.
	p.skew = opts.Now().Sub(t0)
	plans, badPlans, err := repo.Plans(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range badPlans {
		p.rep.Notes = append(p.rep.Notes, "ignored "+e.Error())
	}

	// 2. Mark.
	if err := p.load(ctx); err != nil {
		return nil, err
	}
	snaps, errs, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("refusing to prune: %d snapshots cannot be read (%v); what they reach cannot be known", len(errs), errs[0])
	}
	p.rep.Snapshots = len(snaps)
	if p.live, err = Mark(ctx, repo, snaps); err != nil {
		return nil, err
	}
	p.rep.LiveBlobs = p.live.Len()
	p.packStats()

	// 3. Sweep expired plans.
	condemnedBefore := map[blob.ID]bool{}
	var due []repository.LoadedPlan
	for _, pl := range plans {
		if probe != nil && pl.Name == probe.Name {
			continue
		}
		// The caller's grace bounds every plan's: `--grace 0` sweeps now
		// what is dead now, also packs an earlier prune condemned with a
		// longer grace (the sweep's fresh mark still resurrects any pack
		// a snapshot needs; sessions on a server still hold it back).
		if pl.ModTime.Add(min(pl.Grace(), opts.Grace)).After(t0) {
			p.rep.PlansPending++
		} else if p.waitForSessions(ctx, pl) {
			p.rep.PlansPending++
		} else {
			due = append(due, pl)
		}
		for _, n := range pl.Packs {
			if id, err := blob.ParseID(n); err == nil {
				condemnedBefore[id] = true
			}
		}
	}
	if !opts.DryRun {
		if err := p.sweep(ctx, due); err != nil {
			return nil, err
		}
		for _, pl := range due {
			for _, n := range pl.Packs {
				id, _ := blob.ParseID(n)
				delete(condemnedBefore, id)
			}
		}
	}

	// 4. Condemn.
	newPlan, err := p.condemn(ctx, condemnedBefore)
	if err != nil {
		return nil, err
	}
	if !opts.DryRun {
		if newPlan != nil && opts.Grace == 0 && !p.waitForSessions(ctx, *newPlan) {
			if err := p.sweep(ctx, []repository.LoadedPlan{*newPlan}); err != nil {
				return nil, err
			}
		} else if newPlan != nil {
			p.rep.PlansPending++
		}
		if err := repo.RemoveFile(ctx, backend.Handle{Type: backend.Plans, Name: probe.Name}); err != nil {
			return nil, err
		}
	}
	return p.rep, nil
}

// load loads the index, learns which fragments list which pack, and
// lists the packs in storage. The fragments the repository loaded the
// index from (or wrote since) are not read again: it says which packs
// they list (IndexFragments). Only a fragment stored since then, by
// another process, is read here; its packs are not in the loaded index,
// so they count as unindexed, but a rewrite must know it lists them.
func (p *pruner) load(ctx context.Context) error {
	if err := p.repo.LoadIndex(ctx); err != nil {
		return err
	}
	known, invalid := p.repo.IndexFragments()
	var names []string
	if err := p.be.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		packs, ok := known[n]
		if err := invalid[n]; err != nil {
			// LoadIndex skipped it: its packs count as unindexed.
			p.rep.Notes = append(p.rep.Notes, fmt.Sprintf("ignored %v", err))
			continue
		}
		if !ok {
			f, err := p.repo.LoadIndexFile(ctx, n)
			if errors.Is(err, backend.ErrNotFound) {
				continue // removed since the listing
			}
			if errors.Is(err, repository.ErrInvalidFragment) {
				p.rep.Notes = append(p.rep.Notes, fmt.Sprintf("ignored %v", err))
				continue
			}
			if err != nil {
				return err
			}
			for _, pk := range f.Packs {
				packs = append(packs, pk.Pack)
			}
		}
		for _, pk := range packs {
			p.fragments[pk] = append(p.fragments[pk], n)
		}
	}
	return p.be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		if id, err := blob.ParseID(fi.Name); err == nil {
			p.stored[id] = fi.Size
		}
		return nil
	})
}

// packStats counts each indexed pack's entries and bytes, and those that
// serve a kept snapshot, in one walk of the index and the live set side
// by side (both in (ID, type) order).
func (p *pruner) packStats() {
	p.stats = map[blob.ID]*packStat{}
	live := p.live.Cursor()
	p.repo.Index().Each(func(e index.Entry) bool {
		st := p.stats[e.Pack]
		if st == nil {
			st = &packStat{}
			p.stats[e.Pack] = st
		}
		st.total += uint64(e.Length)
		st.entries++
		if live.Serves(e) {
			st.live += uint64(e.Length)
			st.liveEntries++
		}
		return true
	})
	p.rep.Packs = len(p.stats)
}

// entries returns the index entries of the packs in set, in offset order,
// in one pass over the index.
func (p *pruner) entries(set map[blob.ID]bool) map[blob.ID][]index.Entry {
	out := map[blob.ID][]index.Entry{}
	p.repo.Index().Each(func(e index.Entry) bool {
		if set[e.Pack] {
			out[e.Pack] = append(out[e.Pack], e)
		}
		return true
	})
	for _, es := range out {
		sort.Slice(es, func(i, j int) bool { return es[i].Offset < es[j].Offset })
	}
	return out
}

// needed reports whether copy e must survive the removal of the packs in
// set: some kept snapshot that e serves has no other copy it may use (of
// its signer's domain or the owner's, R23) in a stored pack outside set.
// A copy in another party's domain never counts, so a writer's garbage
// under a guessed ID cannot make the owner's genuine copy look redundant.
func (p *pruner) needed(e index.Entry, set map[blob.ID]bool) bool {
	owner := p.repo.OwnerDomain()
	var copies []index.Entry // loaded once, only if e serves someone
	need := false
	p.live.needers(e.Type, e.ID, func(d blob.Domain) bool {
		if e.Domain != d && e.Domain != owner {
			return true // e does not serve d's snapshots
		}
		if copies == nil {
			copies = p.repo.Index().LookupAll(e.ID, e.Type)
		}
		if !p.hasCopyOutside(copies, set, d, owner) {
			need = true
		}
		return !need
	})
	return need
}

// hasCopyOutside reports whether copies holds one of domain d or owner in
// a stored pack outside set.
func (p *pruner) hasCopyOutside(copies []index.Entry, set map[blob.ID]bool, d, owner blob.Domain) bool {
	for _, o := range copies {
		if o.Domain != d && o.Domain != owner {
			continue
		}
		if _, ok := p.stored[o.Pack]; ok && !set[o.Pack] {
			return true
		}
	}
	return false
}

// sweep deletes the dead packs of due plans (R12): fresh mark first (done
// by the caller), index fragments rewritten before packs are removed,
// plan removed last.
func (p *pruner) sweep(ctx context.Context, due []repository.LoadedPlan) error {
	if len(due) == 0 {
		return nil
	}
	sweeping := map[blob.ID]bool{}
	for _, pl := range due {
		for _, n := range pl.Packs {
			if id, err := blob.ParseID(n); err == nil {
				sweeping[id] = true
			}
		}
	}
	dead := map[blob.ID]bool{}
	ents := p.entries(sweeping)
	for id := range sweeping {
		needed := false
		for _, e := range ents[id] {
			if p.needed(e, sweeping) {
				needed = true
				break
			}
		}
		if needed {
			p.rep.Resurrected = append(p.rep.Resurrected, id.String())
			continue
		}
		dead[id] = true
	}
	if err := p.rewriteIndex(ctx, dead); err != nil {
		return err
	}
	for id := range dead {
		p.opts.Progress.AddTotal(1, uint64(p.stored[id]))
	}
	for id := range dead {
		size := uint64(p.stored[id])
		if err := p.repo.RemoveFile(ctx, backend.Handle{Type: backend.Data, Name: id.String()}); err != nil {
			return err
		}
		p.opts.Progress.Add(1, size)
		if _, ok := p.stored[id]; ok {
			p.rep.Deleted = append(p.rep.Deleted, id.String())
		}
		delete(p.stored, id)
		delete(p.stats, id)
	}
	p.repo.Index().RemovePacks(toSet(dead))
	for _, pl := range due {
		if err := p.repo.RemoveFile(ctx, backend.Handle{Type: backend.Plans, Name: pl.Name}); err != nil {
			return err
		}
		p.rep.PlansSwept++
	}
	slices.Sort(p.rep.Deleted)
	return nil
}

func toSet(m map[blob.ID]bool) map[blob.ID]struct{} {
	s := make(map[blob.ID]struct{}, len(m))
	for k := range m {
		s[k] = struct{}{}
	}
	return s
}

// rewriteIndex replaces every fragment that lists a dead pack by one
// without it: the new fragment is stored before the old one is removed,
// and packs another kept fragment already lists are left out (a killed
// earlier rewrite).
func (p *pruner) rewriteIndex(ctx context.Context, dead map[blob.ID]bool) error {
	affected := map[string]bool{}
	for id := range dead {
		for _, f := range p.fragments[id] {
			affected[f] = true
		}
	}
	covered := map[blob.ID]bool{}
	for id, fs := range p.fragments {
		for _, f := range fs {
			if !affected[f] {
				covered[id] = true
			}
		}
	}
	names := make([]string, 0, len(affected))
	for f := range affected {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, name := range names {
		f, err := p.repo.LoadIndexFile(ctx, name)
		if errors.Is(err, backend.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var keep []pack.IndexPack
		for _, pk := range f.Packs {
			if !dead[pk.Pack] && !covered[pk.Pack] {
				keep = append(keep, pk.IndexPack)
				covered[pk.Pack] = true
			}
		}
		if len(keep) > 0 {
			nn, err := p.repo.WriteIndexFragments(ctx, keep)
			if err != nil {
				return err
			}
			p.rep.IndexWritten += len(slices.Compact(slices.Clone(nn)))
			for i, pk := range keep {
				p.fragments[pk.Pack] = append(p.fragments[pk.Pack], nn[i])
			}
		}
		if err := p.repo.RemoveFile(ctx, backend.Handle{Type: backend.Index, Name: name}); err != nil {
			return err
		}
		p.rep.IndexRemoved++
		for id, fs := range p.fragments {
			p.fragments[id] = slices.DeleteFunc(fs, func(s string) bool { return s == name })
		}
	}
	return nil
}

// condemnedAt is when pl condemned its packs on opts.Now's clock: the
// plan file's storage time (it became visible then, not at its Created,
// which is taken before the upload and on whatever clock the condemning
// process had), moved onto opts.Now's clock by this run's probe, plus
// condemnMargin. It is never earlier than the moment the plan became
// visible, so every session that started without seeing the plan opened
// before it.
func (p *pruner) condemnedAt(pl repository.LoadedPlan) time.Time {
	return pl.ModTime.Add(p.skew).Add(condemnMargin)
}

// waitForSessions reports whether pl must wait for backup sessions that
// were open when it condemned its packs (R12), noting why in the report.
// If the sessions cannot be counted, it waits: deferring a sweep is safe.
func (p *pruner) waitForSessions(ctx context.Context, pl repository.LoadedPlan) bool {
	if p.opts.SessionsOpenAt == nil {
		return false
	}
	at := p.condemnedAt(pl)
	n, err := p.opts.SessionsOpenAt(ctx, at)
	short := pl.Name[:min(8, len(pl.Name))]
	switch {
	case err != nil:
		p.opts.Log.Warn("cannot count backup sessions; the sweep waits", "plan", short, "err", err)
		p.rep.Notes = append(p.rep.Notes, fmt.Sprintf("plan %s: not swept, backup sessions cannot be counted: %v", short, err))
		return true
	case n > 0:
		p.opts.Log.Info("sweep deferred for backup sessions", "plan", short, "condemned", at, "sessions", n)
		p.rep.Notes = append(p.rep.Notes, fmt.Sprintf("plan %s: waiting for %d backup sessions open since condemnation", short, n))
		return true
	}
	return false
}
