package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// StatsOptions are stats' flags.
type StatsOptions struct {
	Filter SnapshotFilter
}

func newStatsCommand(g *GlobalOptions) *cobra.Command {
	var opts StatsOptions
	c := &cobra.Command{
		Use:   "stats [SNAPSHOT]",
		Short: "Show sizes: logical, stored and the dedup ratio",
		Long: `Show totals for every snapshot (or one): files, logical size (what a restore
writes), the unique blobs they reference and their stored size, the packs they
live in, and the dedup ratio. With a server key the logical size is unknown
(file sizes are sealed); only stored figures are shown.`,
		Example: `  cairn stats
  cairn stats latest --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runStats(c.Context(), g, opts, args) },
	}
	addFilterFlags(c, &opts.Filter)
	return c
}

type statsResult struct {
	Snapshots    int     `json:"snapshots"`
	Files        uint64  `json:"files,omitempty"`
	Dirs         uint64  `json:"dirs,omitempty"`
	LogicalSize  uint64  `json:"logical_size,omitempty"`
	Blobs        int     `json:"blobs"`
	StoredSize   uint64  `json:"stored_size"`
	Packs        int     `json:"packs"`
	PackBytes    uint64  `json:"pack_bytes"`
	DedupRatio   float64 `json:"dedup_ratio,omitempty"`
	ContentKnown bool    `json:"content_known"`
}

type treeTotals struct{ files, dirs, size uint64 }

type statsWalker struct {
	ctx   context.Context
	repo  *repository.Repository
	memo  map[blob.ID]treeTotals
	blobs map[snapshot.Ref]struct{}
}

// tree totals a directory; each tree is read once however many snapshots
// share it, and its blobs are counted once.
func (w *statsWalker) tree(id blob.ID) (treeTotals, error) {
	if t, ok := w.memo[id]; ok {
		return t, nil
	}
	w.blobs[snapshot.Ref{Type: blob.Tree, ID: id}] = struct{}{}
	t, err := restorer.LoadTree(w.ctx, w.repo, id)
	if err != nil {
		return treeTotals{}, err
	}
	var tot treeTotals
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch {
		case n.Type == snapshot.TypeDir && n.Subtree != nil:
			sub, err := w.tree(*n.Subtree)
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

func runStats(ctx context.Context, g *GlobalOptions, opts StatsOptions, args []string) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needMetadata(repo, "statistics"); err != nil {
		return err
	}
	all, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	snaps := opts.Filter.apply(all)
	if len(args) == 1 {
		s, err := findSnapshot(all, args[0], &opts.Filter)
		if err != nil {
			return err
		}
		snaps = []*repository.Snapshot{s}
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	res := statsResult{Snapshots: len(snaps), ContentKnown: repo.CanReadContent()}
	w := &statsWalker{ctx: ctx, repo: repo, memo: map[blob.ID]treeTotals{}, blobs: map[snapshot.Ref]struct{}{}}
	exp := restorer.NewExpander(repo)
	for _, s := range snaps {
		if res.ContentKnown {
			if _, err := exp.Snapshot(ctx, s); err != nil {
				return refusedSnapshot(fmt.Errorf("snapshot %s is refused: %w", s.ID.Short(), err))
			}
			tot, err := w.tree(s.File.Statement.Root)
			if err != nil {
				return fmt.Errorf("snapshot %s: %w", s.ID.Short(), err)
			}
			res.Files += tot.files
			res.Dirs += tot.dirs
			res.LogicalSize += tot.size
		}
		refs, err := repo.ManifestRefs(ctx, s)
		if err != nil {
			return err
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
	err = repo.Backend().List(ctx, backend.Data, func(fi backend.FileInfo) error {
		id, err := blob.ParseID(fi.Name)
		if _, ok := packs[id]; err == nil && ok {
			res.PackBytes += uint64(fi.Size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list packs: %w", err)
	}
	if res.StoredSize > 0 && res.ContentKnown {
		res.DedupRatio = float64(res.LogicalSize) / float64(res.StoredSize)
	}
	if g.JSON {
		return writeJSON(g.stdout, statsMessage(res))
	}
	out := g.stdout
	fmt.Fprintf(out, "Snapshots:     %d\n", res.Snapshots)
	if res.ContentKnown {
		fmt.Fprintf(out, "Files:         %d (in %d dirs)\n", res.Files, res.Dirs)
		fmt.Fprintf(out, "Logical size:  %s\n", formatBytes(res.LogicalSize))
	} else {
		fmt.Fprintf(out, "Files:         sealed (this is a %s key)\n", repo.Keys().Role)
	}
	fmt.Fprintf(out, "Stored size:   %s in %d blobs\n", formatBytes(res.StoredSize), res.Blobs)
	fmt.Fprintf(out, "Packs:         %d (%s on disk)\n", res.Packs, formatBytes(res.PackBytes))
	if res.DedupRatio > 0 {
		fmt.Fprintf(out, "Dedup ratio:   %.2fx (logical / stored)\n", res.DedupRatio)
	}
	return nil
}
