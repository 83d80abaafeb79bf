// Package forget applies a retention policy (internal/retention, pure) to a
// repository: it loads the snapshots with their policy times, computes what
// the policy needs from storage (manifest overlaps, repository size) and
// decides. `cairn forget` and the server's scheduled maintenance share it,
// so both age, group, score and decide alike, and both keep each writer's
// last statement whatever the policy says (WritersLast).
package forget

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Loaded is a repository's snapshots as retention sees them.
type Loaded struct {
	Snapshots []retention.Snapshot            // oldest first
	ByID      map[string]*repository.Snapshot // by retention.Snapshot.ID
	Now       time.Time                       // the repository's clock when loaded
}

// Load reads every snapshot with repo's keys (which must read
// metadata) and gives each its policy time: a receipt where there is one
// (R14), never a writer's claimed time. warn is called with each problem
// that leaves a snapshot alone or makes its time doubtful.
func Load(ctx context.Context, repo *repository.Repository, warn func(string)) (*Loaded, error) {
	snaps, errs, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range errs {
		warn(fmt.Sprintf("%v (left alone)", e))
	}
	bad, err := repo.ApplyReceipts(ctx, snaps)
	if err != nil {
		return nil, err
	}
	for _, e := range bad {
		warn(fmt.Sprintf("%v (ignored)", e))
	}
	l := &Loaded{ByID: map[string]*repository.Snapshot{}, Snapshots: make([]retention.Snapshot, 0, len(snaps)), Now: repo.Now()}
	for _, s := range snaps {
		st := s.File.Statement
		pt, suspect, notes := retention.PolicyTime(retention.TimeInput{Claimed: st.Time, Receipt: s.ModTime,
			OwnerSigned: bytes.Equal(repo.Keys().OwnerSignPub, st.Writer[:]), RepoCreated: repo.Config().Created, Now: l.Now})
		for _, n := range notes {
			warn(fmt.Sprintf("snapshot %s (seq %d): %s", s.ID.Short(), st.Seq, n))
		}
		rs := retention.Snapshot{ID: s.ID.String(), Time: pt, Host: s.Meta.HostLabel, Tags: s.Meta.Tags, PathGroup: s.Meta.PathGroup,
			Blobs: s.Meta.Blobs, NewBlobs: s.Meta.NewBlobs, NewBytes: s.Meta.NewBytes, Overlap: -1, Suspect: suspect}
		l.ByID[rs.ID] = s
		l.Snapshots = append(l.Snapshots, rs)
	}
	return l, nil
}

// Only is l restricted to the snapshots match passes: a policy decides
// about those alone and leaves the others be. Every snapshot stays in
// ByID (WritersLast still sees them all).
func (l *Loaded) Only(match func(*repository.Snapshot) bool) *Loaded {
	sub := *l
	sub.Snapshots = slices.DeleteFunc(slices.Clone(l.Snapshots), func(s retention.Snapshot) bool { return !match(l.ByID[s.ID]) })
	return &sub
}

// Policy is a whole policy: exactly one of a space budget (MaxSize or
// MinFree), Importance, or the Keep rules decides.
type Policy struct {
	Keep       retention.Policy
	GroupBy    retention.GroupBy
	Importance int
	MaxSize    uint64
	MinFree    uint64
	// Free reports the free space of the repository's disk; needed with
	// MinFree only.
	Free func() (uint64, error)
}

// Space reports whether the policy is space-driven.
func (p Policy) Space() bool { return p.MaxSize > 0 || p.MinFree > 0 }

// Decide decides which of l's snapshots to keep. A space-driven policy
// that cannot be met fails with retention.ErrBudget (wrapped) and decides
// nothing. Whatever the policy, each other signer's last statement is
// kept (WritersLast): a space budget counts it as a floor.
func Decide(ctx context.Context, repo *repository.Repository, l *Loaded, p Policy) ([]retention.Decision, error) {
	last := WritersLast(l, repo.Keys().SignerID())
	var ds []retention.Decision
	switch {
	case p.Space():
		if err := Overlaps(ctx, repo, l, p.GroupBy); err != nil {
			return nil, err
		}
		size, err := RepoSize(ctx, repo.Backend())
		if err != nil {
			return nil, err
		}
		so := retention.SpaceOptions{Now: l.Now, GroupBy: p.GroupBy, Size: size, MaxSize: p.MaxSize, MinFree: p.MinFree, Keep: last}
		if p.MinFree > 0 {
			if p.Free == nil {
				return nil, fmt.Errorf("free space of %s: unknown", repo.Backend().Properties().Location)
			}
			if so.Free, err = p.Free(); err != nil {
				return nil, err
			}
		}
		plan, err := retention.Space(l.Snapshots, so)
		if err != nil {
			return nil, err
		}
		ds = plan.Decisions
	case p.Importance > 0:
		keys, groups := retention.Group(l.Snapshots, p.GroupBy)
		for _, k := range keys {
			ds = append(ds, retention.Importance(groups[k], p.Importance, l.Now)...)
		}
	default:
		ds = retention.ApplyGroups(l.Snapshots, p.GroupBy, p.Keep)
	}
	for i := range ds {
		if why, ok := last[ds[i].Snapshot.ID]; ok && !ds[i].Keep {
			ds[i].Keep, ds[i].Reasons = true, []string{why}
		}
	}
	return ds, nil
}

// WritersLast names the last statement of each signer other than self
// among every snapshot l loaded (also those a filter left out of
// l.Snapshots), by ID with the reason it stays. A retention policy never
// forgets one: it is its writer's dedup scope (R16; a writer deduplicates
// only against its own last committed snapshot), so forgetting it would
// make that writer's next backup upload everything again. self is the key
// applying the policy (nil for a server key, which signs no snapshots):
// the owner running `cairn forget` reads the whole index and may forget
// its own last statement, its next commit chaining to the tombstone.
// Forgetting by name (`cairn forget ID`) is not a policy and may remove
// any.
func WritersLast(l *Loaded, self ed25519.PublicKey) map[string]string {
	lastOf := map[[32]byte]*repository.Snapshot{}
	for _, sn := range l.ByID {
		w := sn.File.Statement.Writer
		if self.Equal(ed25519.PublicKey(w[:])) {
			continue
		}
		if o := lastOf[w]; o == nil || sn.File.Statement.Seq > o.File.Statement.Seq {
			lastOf[w] = sn
		}
	}
	out := make(map[string]string, len(lastOf))
	for _, sn := range lastOf {
		out[sn.ID.String()] = LastStatementReason
	}
	return out
}

// LastStatementReason is the reason WritersLast gives.
const LastStatementReason = "its writer's last statement"

// Overlaps fills in, per group, the fraction of the previous snapshot's
// refs each snapshot still reaches (anomaly detection), reading two
// manifests at a time.
func Overlaps(ctx context.Context, repo *repository.Repository, l *Loaded, gb retention.GroupBy) error {
	// Manifest pages are blobs: reading them needs the index (loaded once).
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	in := l.Snapshots
	prev := map[string][]snapshot.Ref{}
	for i := range in { // oldest first, as Snapshots returns them
		refs, err := repo.ManifestRefs(ctx, l.ByID[in[i].ID])
		if err != nil {
			return err
		}
		refs = snapshot.SortRefs(refs)
		k := gb.Key(in[i])
		if pr, ok := prev[k]; ok && len(pr) > 0 {
			common, a, b := 0, 0, 0
			for a < len(pr) && b < len(refs) {
				switch c := pr[a].Compare(refs[b]); {
				case c < 0:
					a++
				case c > 0:
					b++
				default:
					common++
					a++
					b++
				}
			}
			in[i].Overlap = float64(common) / float64(len(pr))
		}
		prev[k] = refs
	}
	return nil
}

// RepoSize is the bytes a repository stores, config aside.
func RepoSize(ctx context.Context, be backend.Backend) (uint64, error) {
	var n uint64
	for _, t := range backend.AllTypes {
		if t == backend.Config {
			continue
		}
		if err := be.List(ctx, t, func(fi backend.FileInfo) error {
			n += uint64(fi.Size)
			return nil
		}); err != nil {
			return 0, err
		}
	}
	return n, nil
}
