package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/walker"
)

// DiffOptions are diff's flags.
type DiffOptions struct {
	Filter SnapshotFilter
}

func newDiffCommand(g *GlobalOptions) *cobra.Command {
	var opts DiffOptions
	c := &cobra.Command{
		Use:   "diff SNAPSHOT1 SNAPSHOT2",
		Short: "Show what changed between two snapshots",
		Long: `Show paths added (+), removed (-) and modified (M: content, type or
metadata) from SNAPSHOT1 to SNAPSHOT2, then a summary. Needs the owner key.
A directory whose tree is lost in either snapshot (see repair) is a warning
and is not compared; everything else is, and the exit code is 3.`,
		Example: `  cairn diff 4f9c2a1e latest
  cairn diff --json 4f9c2a1e 8812bb03`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error { return runDiff(c.Context(), g, opts, args) },
	}
	addFilterFlags(c, &opts.Filter)
	return c
}

type diffChange struct {
	Change string `json:"change"` // "+", "-", "M"
	Path   string `json:"path"`
	What   string `json:"what,omitempty"` // for M: "content", "type", "metadata"
}

func runDiff(ctx context.Context, g *GlobalOptions, opts DiffOptions, args []string) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := client.NeedContent(repo, "comparing snapshots"); err != nil {
		return err
	}
	snaps, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	a, err := client.Find(snaps, args[0], &opts.Filter)
	if err != nil {
		return err
	}
	b, err := client.Find(snaps, args[1], &opts.Filter)
	if err != nil {
		return err
	}
	var changes []diffChange
	lost := 0
	sum, err := walker.Diff(ctx, repo, a, b, func(c walker.Change) {
		dc := diffChange{Change: c.Kind, Path: c.Path, What: c.What}
		if g.JSON {
			changes = append(changes, dc)
			return
		}
		fmt.Fprintf(g.stdout, "%-2s %s\n", dc.Change, displayText(dc.Path))
	}, func(l walker.LostTree) {
		lost++
		g.warnf("%s: %s in snapshot %s; not compared", displayText(l.Path), displayText(walker.LostDir(l.Err).Error()), l.Snapshot.ID.Short())
	})
	if errors.Is(err, walker.ErrTooLarge) {
		return refusedSnapshot(err)
	}
	if err != nil {
		return err
	}
	if g.JSON {
		err = writeJSON(g.stdout, diffMessage(a.ID.String(), b.ID.String(), changes, sum))
	} else {
		g.printf("\n%s → %s: %d added, %d removed, %d modified; %s added, %s removed\n", a.ID.Short(), b.ID.Short(),
			sum.Added, sum.Removed, sum.Modified, formatBytes(sum.BytesAdded), formatBytes(sum.BytesRemoved))
	}
	if err == nil && lost > 0 {
		err = lostError{fmt.Errorf("diff %s %s: %d lost directories could not be compared (warnings above); everything else was", a.ID.Short(), b.ID.Short(), lost)}
	}
	return err
}
