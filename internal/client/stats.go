package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
)

// Stats are totals over a set of snapshots.
type Stats struct {
	Snapshots int
	// ContentKnown: the key reads content (owner), so Files, Dirs,
	// LogicalSize and DedupRatio are known; a server key sees only the
	// stored figures.
	ContentKnown bool
	Files, Dirs  uint64
	LogicalSize  uint64 // what a restore of them all writes
	Blobs        int    // unique blobs they reach: trees, contents, manifest pages
	StoredSize   uint64 // those blobs' stored bytes
	Packs        int    // packs holding them
	PackBytes    uint64 // those packs' sizes
	DedupRatio   float64
	// Lost are the directories whose tree is unavailable
	// (walker.ErrTreeUnavailable), each tree once per snapshot signer,
	// with the first snapshot and path it was met at: nothing below them
	// is counted.
	Lost []walker.LostTree
}

// ComputeStats totals snaps. Each snapshot's trees are read only from the
// copies a restore of it uses (repository.ReadFor: its signer's domain
// and the owner's, R23). Each tree is read once however many snapshots
// of one signer share it, and each blob counted once. With the owner key a
// snapshot whose trees expand too far is refused (an error wrapping
// walker.ErrTooLarge) before it is walked. A directory whose tree is
// unavailable counts as empty and is listed in Stats.Lost.
func ComputeStats(ctx context.Context, repo *repository.Repository, snaps []*repository.Snapshot) (Stats, error) {
	if err := repo.LoadIndex(ctx); err != nil {
		return Stats{}, err
	}
	res := Stats{Snapshots: len(snaps), ContentKnown: repo.CanReadContent()}
	w := &statsWalker{ctx: ctx, repo: repo, memo: map[scopedTree]treeTotals{}, blobs: map[snapshot.Ref]blob.Domain{}, res: &res}
	exp := walker.NewExpander(repo)
	for _, s := range snaps {
		if res.ContentKnown {
			if _, err := exp.Snapshot(ctx, s); err != nil {
				return Stats{}, fmt.Errorf("snapshot %s is refused: %w", s.ID.Short(), err)
			}
			tot, err := w.tree(s, s.File.Statement.Root, "")
			if err != nil {
				return Stats{}, fmt.Errorf("snapshot %s: %w", s.ID.Short(), err)
			}
			res.Files += tot.files
			res.Dirs += tot.dirs
			res.LogicalSize += tot.size
		}
		refs, err := repo.ManifestRefs(repository.ReadFor(ctx, s.Signer()), s)
		if err != nil {
			return Stats{}, err
		}
		for _, r := range refs {
			w.reach(r, s.Signer())
		}
		for _, p := range s.Meta.Pages {
			w.reach(snapshot.Ref{Type: blob.ManifestPage, ID: p}, s.Signer())
		}
	}
	packs := map[blob.ID]struct{}{}
	for r, signer := range w.blobs {
		if e, ok := repo.Locate(repository.ReadFor(ctx, signer), r.Type, r.ID); ok {
			res.StoredSize += uint64(e.Length)
			packs[e.Pack] = struct{}{}
		}
	}
	res.Blobs, res.Packs = len(w.blobs), len(packs)
	err := repo.Backend().List(ctx, backend.Data, func(fi backend.FileInfo) error {
		id, err := blob.ParseID(fi.Name)
		if _, ok := packs[id]; err == nil && ok {
			res.PackBytes += uint64(fi.Size)
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("list packs: %w", err)
	}
	if res.StoredSize > 0 && res.ContentKnown {
		res.DedupRatio = float64(res.LogicalSize) / float64(res.StoredSize)
	}
	return res, nil
}

type treeTotals struct{ files, dirs, size uint64 }

// scopedTree is a tree as read for one signer's snapshots: another
// signer's reads may use other copies, so its totals are its own.
type scopedTree struct {
	signer blob.Domain
	id     blob.ID
}

type statsWalker struct {
	ctx   context.Context
	repo  *repository.Repository
	memo  map[scopedTree]treeTotals
	blobs map[snapshot.Ref]blob.Domain // → the signer of the first snapshot reaching it
	res   *Stats                       // for Lost
}

// reach counts r once; its stored copy is the one a read for the first
// signer reaching it uses.
func (w *statsWalker) reach(r snapshot.Ref, signer blob.Domain) {
	if _, ok := w.blobs[r]; !ok {
		w.blobs[r] = signer
	}
}

// tree totals a directory of snapshot s, read as a restore of s reads it
// (repository.ReadFor its signer); each tree is read once however many
// snapshots of that signer share it, and its blobs are counted once.
// path is the directory's in s ("" for the root); an unavailable tree is
// recorded as lost and counts as empty.
func (w *statsWalker) tree(s *repository.Snapshot, id blob.ID, path string) (treeTotals, error) {
	key := scopedTree{signer: s.Signer(), id: id}
	if t, ok := w.memo[key]; ok {
		return t, nil
	}
	w.reach(snapshot.Ref{Type: blob.Tree, ID: id}, key.signer)
	t, err := walker.LoadTree(repository.ReadFor(w.ctx, key.signer), w.repo, id)
	if errors.Is(err, walker.ErrTreeUnavailable) {
		w.res.Lost = append(w.res.Lost, walker.LostTree{Path: cmp.Or(path, "/"), Snapshot: s, Tree: id, Err: err})
		w.memo[key] = treeTotals{}
		return treeTotals{}, nil
	}
	if err != nil {
		return treeTotals{}, err
	}
	var tot treeTotals
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch {
		case n.Type == snapshot.TypeDir && n.Subtree != nil:
			sub, err := w.tree(s, *n.Subtree, path+"/"+n.Name)
			if err != nil {
				return treeTotals{}, err
			}
			tot.files += sub.files
			tot.dirs += sub.dirs + 1
			tot.size += sub.size
		case n.Type == snapshot.TypeFile:
			tot.files++
			if n.HardLinkTo == "" {
				tot.size += n.Size
			}
			for _, c := range n.Content {
				w.reach(snapshot.Ref{Type: blob.Data, ID: c}, key.signer)
			}
		default:
			tot.files++
		}
	}
	w.memo[key] = tot
	return tot, nil
}
