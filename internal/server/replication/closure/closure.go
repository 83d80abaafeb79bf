// Package closure is replication by snapshot closure, for a destination
// with its own retention policy: the replica holds the primary's
// snapshots that its own retention has not forgotten, and everything they
// need. Package replication copies what Want names.
package closure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Want names what a replica needs of the primary: every snapshot file
// of the primary that the replica's own retention has not forgotten (no
// tombstone for it on the replica), every pack holding a blob its
// manifest reaches (data and manifest pages) that the replica does not
// already hold in a pack of its own, the primary's index
// fragments that describe such a pack where the replica's index does
// not, and each pack such a fragment lists (so an index on the replica
// never names a pack it lacks). Receipts are all wanted: small, and a
// receipt is what ages a snapshot on the replica too. The primary's
// tombstones are wanted except for a snapshot the replica holds.
//
// A pack the replica's prune removed comes back when a kept snapshot
// needs it again; a snapshot the replica forgot never does. prim and
// rep are opened with the server's keys; rep is nil for a replica that
// is not a repository yet. manifests reads a snapshot's manifest refs
// (prim.ManifestRefs, or a Cache of it).
func Want(ctx context.Context, log *slog.Logger, prim *repository.Repository, primBe backend.Backend,
	rep *repository.Repository, repBe backend.Backend, manifests ManifestReader) (func(backend.Handle) bool, error) {
	rs, err := readReplica(ctx, log, rep, repBe)
	if err != nil {
		return nil, err
	}
	want := map[backend.Handle]bool{}
	keep, err := keptSnapshots(ctx, log, prim, rs.forgotten, want)
	if err != nil {
		return nil, err
	}
	need, err := neededPacks(ctx, prim, rep, rs.stored, keep, manifests)
	if err != nil {
		return nil, err
	}
	// The packs the replica's index does not describe: each needs a
	// fragment of the primary's that does.
	undescribed := map[blob.ID]bool{}
	for p := range need {
		want[backend.Handle{Type: backend.Data, Name: p.String()}] = true
		if !rs.indexed[p] {
			undescribed[p] = true
		}
	}
	if len(undescribed) > 0 {
		if err := wantFragments(ctx, prim, primBe, undescribed, want); err != nil {
			return nil, err
		}
	}
	if err := wantTombstones(ctx, log, prim, rep, repBe, want); err != nil {
		return nil, err
	}
	return func(h backend.Handle) bool {
		return h.Type == backend.Receipts || want[h]
	}, nil
}

// ManifestReader reads a snapshot's manifest refs.
type ManifestReader = func(context.Context, *repository.Snapshot) ([]snapshot.Ref, error)

// replicaState is what Want needs to know of a replica.
type replicaState struct {
	forgotten map[string]bool  // snapshots the replica has a tombstone for
	indexed   map[blob.ID]bool // packs the replica's index describes
	stored    map[string]bool  // packs the replica stores
}

// readReplica reads the replica's tombstones, index and pack list; all
// empty when rep is nil (not a repository yet).
func readReplica(ctx context.Context, log *slog.Logger, rep *repository.Repository, repBe backend.Backend) (replicaState, error) {
	rs := replicaState{forgotten: map[string]bool{}, indexed: map[blob.ID]bool{}, stored: map[string]bool{}}
	if rep == nil {
		return rs, nil
	}
	ts, bad, err := rep.Tombstones(ctx)
	if err != nil {
		return rs, fmt.Errorf("read the replica's tombstones: %w", err)
	}
	for _, e := range bad {
		log.Warn("replication: a tombstone on the replica is unreadable", "err", e)
	}
	for _, t := range ts {
		rs.forgotten[t.Snapshot] = true
	}
	if err := rep.LoadIndex(ctx); err != nil {
		return rs, fmt.Errorf("load the replica's index: %w", err)
	}
	rep.Index().Each(func(e repository.IndexEntry) bool {
		rs.indexed[e.Pack] = true
		return true
	})
	if err := repBe.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		rs.stored[fi.Name] = true
		return nil
	}); err != nil {
		return rs, fmt.Errorf("list the replica's packs: %w", err)
	}
	return rs, nil
}

// keptSnapshots returns the primary's snapshots the replica has not
// forgotten, and adds their snapshot files to want.
func keptSnapshots(ctx context.Context, log *slog.Logger, prim *repository.Repository, forgotten map[string]bool,
	want map[backend.Handle]bool) ([]*repository.Snapshot, error) {
	snaps, bad, err := prim.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the primary's snapshots: %w", err)
	}
	for _, e := range bad {
		log.Warn("replication: a snapshot on the primary is unreadable with the server's keys; not copied", "err", e)
	}
	var keep []*repository.Snapshot
	for _, s := range snaps {
		if forgotten[s.ID.String()] {
			continue
		}
		keep = append(keep, s)
		want[backend.Handle{Type: backend.Snapshots, Name: s.ID.String()}] = true
	}
	return keep, nil
}

// neededPacks loads the primary's index and returns its packs holding a
// blob the kept snapshots reach that the replica does not already hold.
func neededPacks(ctx context.Context, prim, rep *repository.Repository, repStored map[string]bool,
	keep []*repository.Snapshot, manifests ManifestReader) (map[blob.ID]bool, error) {
	if err := prim.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("load the primary's index: %w", err)
	}
	live, err := prune.MarkWith(ctx, prim, keep, manifests)
	if err != nil {
		return nil, fmt.Errorf("read the manifests of the primary's snapshots: %w", err)
	}
	// A blob the replica already holds (indexed, in a pack it stores, in
	// a domain that serves the snapshot) needs nothing: the replica's
	// prune may have repacked it, and copying the primary's pack again
	// would only be pruned again.
	has := func(e repository.IndexEntry) bool {
		if rep == nil {
			return false
		}
		for _, re := range rep.Index().LookupAll(e.ID, e.Type) {
			if repStored[re.Pack.String()] && (re.Domain == e.Domain || re.Domain == rep.OwnerDomain()) {
				return true
			}
		}
		return false
	}
	need := map[blob.ID]bool{}
	// The index walks in blob ID order, as the live set is sorted: a
	// cursor answers each entry from where the last one stopped.
	cur := live.Cursor()
	prim.Index().Each(func(e repository.IndexEntry) bool {
		if !need[e.Pack] && cur.Serves(e) && !has(e) {
			need[e.Pack] = true
		}
		return true
	})
	return need, nil
}

// wantFragments adds to want each index fragment of the primary that
// describes an undescribed pack, and every pack the primary stores that
// such a fragment lists. The fragments the primary's index was loaded
// from are not read again (IndexFragments says what they list); only one
// stored since is.
func wantFragments(ctx context.Context, prim *repository.Repository, primBe backend.Backend,
	undescribed map[blob.ID]bool, want map[backend.Handle]bool) error {
	var names []string
	if err := primBe.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return fmt.Errorf("list the primary's index: %w", err)
	}
	primStored := map[string]bool{}
	if err := primBe.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		primStored[fi.Name] = true
		return nil
	}); err != nil {
		return fmt.Errorf("list the primary's packs: %w", err)
	}
	known, invalid := prim.IndexFragments()
	for _, n := range names {
		if invalid[n] != nil {
			continue // the primary's own readers skip it too
		}
		packs, ok := known[n]
		if !ok {
			f, err := prim.LoadIndexFile(ctx, n)
			if errors.Is(err, repository.ErrInvalidFragment) || errors.Is(err, backend.ErrNotFound) {
				continue // skipped by the primary's readers, or removed since the listing
			}
			if err != nil {
				return fmt.Errorf("read the primary's index fragment %s: %w", n, err)
			}
			for _, pk := range f.Packs {
				packs = append(packs, pk.Pack)
			}
		}
		if !slices.ContainsFunc(packs, func(id blob.ID) bool { return undescribed[id] }) {
			continue
		}
		want[backend.Handle{Type: backend.Index, Name: n}] = true
		for _, id := range packs {
			if primStored[id.String()] {
				want[backend.Handle{Type: backend.Data, Name: id.String()}] = true
			}
		}
	}
	return nil
}

// wantTombstones adds to want the primary's tombstones, but none for a
// snapshot the replica holds or is about to: a deletion on the primary
// is not mirrored, and a tombstone beside its snapshot would make the
// snapshot look replayed.
func wantTombstones(ctx context.Context, log *slog.Logger, prim, rep *repository.Repository, repBe backend.Backend,
	want map[backend.Handle]bool) error {
	held := map[string]bool{}
	if rep != nil {
		if err := repBe.List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
			held[fi.Name] = true
			return nil
		}); err != nil {
			return fmt.Errorf("list the replica's snapshots: %w", err)
		}
	}
	ts, bad, err := prim.Tombstones(ctx)
	if err != nil {
		return fmt.Errorf("read the primary's tombstones: %w", err)
	}
	for _, e := range bad {
		log.Warn("replication: a tombstone on the primary is invalid; not copied", "err", e)
	}
	for _, t := range ts {
		if !held[t.Snapshot] && !want[backend.Handle{Type: backend.Snapshots, Name: t.Snapshot}] {
			want[backend.Handle{Type: backend.Tombstones, Name: t.Name}] = true
		}
	}
	return nil
}
