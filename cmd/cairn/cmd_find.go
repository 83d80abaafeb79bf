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

// FindOptions are find's flags.
type FindOptions struct {
	Snapshots []string
	Filter    SnapshotFilter
}

func newFindCommand(g *GlobalOptions) *cobra.Command {
	var opts FindOptions
	c := &cobra.Command{
		Use:   "find PATTERN...",
		Short: "Find files by name across snapshots",
		Long: `Find paths whose name matches a glob PATTERN (a pattern with a "/" matches
the whole absolute path instead). Searches every snapshot, or those given with
--snapshot. Needs the owner key. A directory whose tree is lost is a warning:
the rest is searched, and the exit code is 3.`,
		Example: `  cairn find '*.pdf'
  cairn find --snapshot latest '/etc/*.conf' fstab`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runFind(c.Context(), g, opts, args) },
	}
	c.Flags().StringArrayVarP(&opts.Snapshots, "snapshot", "s", nil, "search only this snapshot (repeatable)")
	addFilterFlags(c, &opts.Filter)
	return c
}

type findMatch struct {
	Snapshot string `json:"snapshot"`
	Path     string `json:"path"`
	Type     string `json:"type"`
	Size     uint64 `json:"size"`
	MTime    string `json:"mtime"`
}

func runFind(ctx context.Context, g *GlobalOptions, opts FindOptions, patterns []string) error {
	if err := walker.CheckPatterns(patterns); err != nil {
		return usageError{err}
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := client.NeedContent(repo, "finding files"); err != nil {
		return err
	}
	all, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	var snaps []*repository.Snapshot
	if len(opts.Snapshots) == 0 {
		snaps = opts.Filter.Apply(all)
	}
	for _, id := range opts.Snapshots {
		s, err := client.Find(all, id, &opts.Filter)
		if err != nil {
			return err
		}
		snaps = append(snaps, s)
	}
	var matches []findMatch
	lost, err := walker.Find(ctx, repo, snaps, patterns, func(f walker.Found) {
		n := f.Node
		m := findMatch{Snapshot: f.Snapshot.ID.Short(), Path: f.Path, Type: n.Type.String(), Size: n.Size, MTime: n.MTime.Local().Format("2006-01-02T15:04:05Z07:00")}
		if !g.JSON {
			fmt.Fprintf(g.stdout, "%s  %s\n", m.Snapshot, displayText(f.Path))
		}
		matches = append(matches, m)
	}, func(s *repository.Snapshot, p string, err error) {
		g.warnf("snapshot %s: %s: %s", s.ID.Short(), displayText(p), displayText(err.Error()))
	})
	if errors.Is(err, walker.ErrTooLarge) {
		return refusedSnapshot(err)
	}
	if err != nil {
		return err
	}
	if g.JSON {
		err = writeJSON(g.stdout, findMessages(matches))
	} else if !g.Quiet {
		fmt.Fprintf(g.stderr, "%s in %s\n", plural(len(matches), "match", "matches"), plural(len(snaps), "snapshot", "snapshots"))
	}
	if err == nil && lost > 0 {
		err = lostError{fmt.Errorf("%d lost directories could not be searched (warnings above); everything else was", lost)}
	}
	return err
}
