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
	// (walker.ErrTreeUnavailable), each tree once, with the first
	// snapshot and path it was met at: nothing below them is counted.
	Lost []walker.LostTree
}

// ComputeStats totals snaps. Each tree is read once however many
// snapshots share it, and each blob counted once. With the owner key a
// snapshot whose trees expand too far is refused (an error wrapping
// walker.ErrTooLarge) before it is walked. A directory whose tree is
// unavailable counts as empty and is listed in Stats.Lost.
func ComputeStats(ctx context.Context, repo *repository.Repository, snaps []*repository.Snapshot) (Stats, error) {
	if err := repo.LoadIndex(ctx); err != nil {
		return Stats{}, err
	}
	res := Stats{Snapshots: len(snaps), ContentKnown: repo.CanReadContent()}
	w := &statsWalker{ctx: ctx, repo: repo, memo: map[blob.ID]treeTotals{}, blobs: map[snapshot.Ref]struct{}{}, res: &res}
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
		refs, err := repo.ManifestRefs(ctx, s)
		if err != nil {
			return Stats{}, err
		}
		for _, r := range refs {
			w.blobs[r] = struct{}{}
		}
		for _, p := range s.Meta.Pages {
			w.blobs[snapshot.Ref{Type: blob.ManifestPage, ID: p}] = struct{}{}
		}
	}
	packs := map[blob.ID]struct{}{}
	for r := range w.blobs {
		if e, ok := repo.Lookup(r.Type, r.ID); ok {
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

type statsWalker struct {
	ctx   context.Context
	repo  *repository.Repository
	memo  map[blob.ID]treeTotals
	blobs map[snapshot.Ref]struct{}
	res   *Stats // for Lost
}

// tree totals a directory; each tree is read once however many snapshots
// share it, and its blobs are counted once. path is the directory's in
// snapshot s ("" for the root); an unavailable tree is recorded as lost
// and counts as empty.
func (w *statsWalker) tree(s *repository.Snapshot, id blob.ID, path string) (treeTotals, error) {
	if t, ok := w.memo[id]; ok {
		return t, nil
	}
	w.blobs[snapshot.Ref{Type: blob.Tree, ID: id}] = struct{}{}
	t, err := walker.LoadTree(w.ctx, w.repo, id)
	if errors.Is(err, walker.ErrTreeUnavailable) {
		w.res.Lost = append(w.res.Lost, walker.LostTree{Path: cmp.Or(path, "/"), Snapshot: s, Tree: id, Err: err})
		w.memo[id] = treeTotals{}
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
				w.blobs[snapshot.Ref{Type: blob.Data, ID: c}] = struct{}{}
			}
		default:
			tot.files++
		}
	}
	w.memo[id] = tot
	return tot, nil
}
