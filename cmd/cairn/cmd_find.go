package main

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
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
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return usageError{fmt.Errorf("pattern %q: %w", p, err)}
		}
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needContent(repo, "finding files"); err != nil {
		return err
	}
	all, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	var snaps []*repository.Snapshot
	if len(opts.Snapshots) == 0 {
		snaps = opts.Filter.apply(all)
	}
	for _, id := range opts.Snapshots {
		s, err := findSnapshot(all, id, &opts.Filter)
		if err != nil {
			return err
		}
		snaps = append(snaps, s)
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	var matches []findMatch
	lost := 0 // directories whose trees are lost: not searched
	exp := restorer.NewExpander(repo)
	for _, s := range snaps {
		if _, err := exp.Snapshot(ctx, s); err != nil {
			return refusedSnapshot(fmt.Errorf("snapshot %s is refused: %w", s.ID.Short(), err))
		}
		err := restorer.WalkLost(repository.ReadFor(ctx, s.Signer()), repo, s.File.Statement.Root, func(p string, n *snapshot.Node) error {
			full := "/" + p
			for _, pat := range patterns {
				subject := n.Name
				if strings.Contains(pat, "/") {
					subject = full
				}
				if ok, _ := path.Match(pat, subject); ok {
					m := findMatch{Snapshot: s.ID.Short(), Path: full, Type: n.Type.String(), Size: n.Size, MTime: n.MTime.Local().Format("2006-01-02T15:04:05Z07:00")}
					if !g.JSON {
						fmt.Fprintf(g.stdout, "%s  %s\n", s.ID.Short(), displayText(full))
					}
					matches = append(matches, m)
					break
				}
			}
			return nil
		}, func(p string, _ blob.ID, err error) error {
			lost++
			fmt.Fprintf(g.stderr, "cairn: warning: snapshot %s: /%s: %s\n", s.ID.Short(), displayText(p), displayText(restorer.LostDir(err).Error()))
			return nil
		})
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", s.ID.Short(), err)
		}
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
