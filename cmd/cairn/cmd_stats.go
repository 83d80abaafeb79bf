package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/walker"
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
(file sizes are sealed); only stored figures are shown. A directory whose tree
is lost (see repair) is a warning and counts as empty; the exit code is 3.`,
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

func runStats(ctx context.Context, g *GlobalOptions, opts StatsOptions, args []string) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := client.NeedMetadata(repo, "statistics"); err != nil {
		return err
	}
	all, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	snaps := opts.Filter.Apply(all)
	if len(args) == 1 {
		s, err := client.Find(all, args[0], &opts.Filter)
		if err != nil {
			return err
		}
		snaps = []*repository.Snapshot{s}
	}
	st, err := client.ComputeStats(ctx, repo, snaps)
	if errors.Is(err, walker.ErrTooLarge) {
		return refusedSnapshot(err)
	}
	if err != nil {
		return err
	}
	for _, l := range st.Lost {
		g.warnf("%s: %s in snapshot %s; counted as empty", displayText(l.Path), displayText(walker.LostDir(l.Err).Error()), l.Snapshot.ID.Short())
	}
	res := statsResult{Snapshots: st.Snapshots, Files: st.Files, Dirs: st.Dirs, LogicalSize: st.LogicalSize, Blobs: st.Blobs,
		StoredSize: st.StoredSize, Packs: st.Packs, PackBytes: st.PackBytes, DedupRatio: st.DedupRatio, ContentKnown: st.ContentKnown}
	var lost error
	if len(st.Lost) > 0 {
		lost = lostError{fmt.Errorf("%d lost directories were counted as empty (warnings above); the totals leave out what was below them", len(st.Lost))}
	}
	if g.JSON {
		if err := writeJSON(g.stdout, statsMessage(res)); err != nil {
			return err
		}
		return lost
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
	return lost
}
