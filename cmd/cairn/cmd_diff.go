package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
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
metadata) from SNAPSHOT1 to SNAPSHOT2, then a summary. Needs the owner key.`,
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

type differ struct {
	ctx                      context.Context
	repo                     *repository.Repository
	changes                  []diffChange
	emit                     func(diffChange)
	added, removed, modified int
	bytesAdded, bytesRemoved uint64
}

func runDiff(ctx context.Context, g *GlobalOptions, opts DiffOptions, args []string) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needContent(repo, "comparing snapshots"); err != nil {
		return err
	}
	snaps, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	a, err := findSnapshot(snaps, args[0], &opts.Filter)
	if err != nil {
		return err
	}
	b, err := findSnapshot(snaps, args[1], &opts.Filter)
	if err != nil {
		return err
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	exp := restorer.NewExpander(repo)
	for _, s := range []*repository.Snapshot{a, b} {
		if _, err := exp.Snapshot(ctx, s); err != nil {
			return refusedSnapshot(fmt.Errorf("snapshot %s is refused: %w", s.ID.Short(), err))
		}
	}
	d := &differ{ctx: ctx, repo: repo}
	d.emit = func(c diffChange) {
		if g.JSON {
			d.changes = append(d.changes, c)
			return
		}
		fmt.Fprintf(g.stdout, "%-2s %s\n", c.Change, displayText(c.Path))
	}
	ra, rb := a.File.Statement.Root, b.File.Statement.Root
	if err := d.trees(&ra, &rb, ""); err != nil {
		return fmt.Errorf("diff %s %s: %w", a.ID.Short(), b.ID.Short(), err)
	}
	if g.JSON {
		return writeJSON(g.stdout, diffMessage(a.ID.String(), b.ID.String(), d))
	}
	g.printf("\n%s → %s: %d added, %d removed, %d modified; %s added, %s removed\n", a.ID.Short(), b.ID.Short(),
		d.added, d.removed, d.modified, formatBytes(d.bytesAdded), formatBytes(d.bytesRemoved))
	return nil
}

func (d *differ) load(id *blob.ID) ([]snapshot.Node, error) {
	if id == nil {
		return nil, nil
	}
	t, err := restorer.LoadTree(d.ctx, d.repo, *id)
	if err != nil {
		return nil, err
	}
	return t.Nodes, nil
}

// trees compares two directories (either may be nil), skipping subtrees
// with the same ID: identical content encodes to the same tree (R20).
func (d *differ) trees(a, b *blob.ID, prefix string) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	if err := d.ctx.Err(); err != nil {
		return err
	}
	na, err := d.load(a)
	if err != nil {
		return err
	}
	nb, err := d.load(b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(na) || j < len(nb) {
		switch {
		case j >= len(nb) || (i < len(na) && na[i].Name < nb[j].Name):
			if err := d.side("-", &na[i], prefix+"/"+na[i].Name); err != nil {
				return err
			}
			i++
		case i >= len(na) || nb[j].Name < na[i].Name:
			if err := d.side("+", &nb[j], prefix+"/"+nb[j].Name); err != nil {
				return err
			}
			j++
		default:
			if err := d.both(&na[i], &nb[j], prefix+"/"+na[i].Name); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

// side reports a node (and everything below it) that is on one side only.
func (d *differ) side(change string, n *snapshot.Node, p string) error {
	d.emit(diffChange{Change: change, Path: p})
	if change == "+" {
		d.added++
		d.bytesAdded += n.Size
	} else {
		d.removed++
		d.bytesRemoved += n.Size
	}
	if n.Type != snapshot.TypeDir || n.Subtree == nil {
		return nil
	}
	nodes, err := d.load(n.Subtree)
	if err != nil {
		return err
	}
	for i := range nodes {
		if err := d.side(change, &nodes[i], p+"/"+nodes[i].Name); err != nil {
			return err
		}
	}
	return nil
}

func (d *differ) both(a, b *snapshot.Node, p string) error {
	what := ""
	switch {
	case a.Type != b.Type:
		what = "type"
	case a.Type != snapshot.TypeDir && (!slices.Equal(a.Content, b.Content) || a.Size != b.Size ||
		a.LinkTarget != b.LinkTarget || a.HardLinkTo != b.HardLinkTo || !slices.Equal(a.Extents, b.Extents)):
		what = "content"
	case a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || !xattrsEqual(a.Xattrs, b.Xattrs) ||
		(a.Type != snapshot.TypeDir && !a.MTime.Equal(b.MTime)):
		what = "metadata"
	}
	if what == "type" {
		if err := d.side("-", a, p); err != nil {
			return err
		}
		return d.side("+", b, p)
	}
	if what != "" {
		d.modified++
		if b.Size > a.Size {
			d.bytesAdded += b.Size - a.Size
		} else {
			d.bytesRemoved += a.Size - b.Size
		}
		d.emit(diffChange{Change: "M", Path: p, What: what})
	}
	if a.Type == snapshot.TypeDir {
		return d.trees(a.Subtree, b.Subtree, p)
	}
	return nil
}

func xattrsEqual(a, b []snapshot.Xattr) bool {
	return slices.EqualFunc(a, b, func(x, y snapshot.Xattr) bool { return x.Name == y.Name && string(x.Value) == string(y.Value) })
}
