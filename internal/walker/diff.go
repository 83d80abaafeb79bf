package walker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Change is one path that differs between two snapshots.
type Change struct {
	Kind string // "+" added, "-" removed, "M" modified
	Path string // from the snapshot root, with a leading "/"
	What string // for "M": "content", "type" or "metadata"
}

// LostTree is a directory a diff could not compare: its tree in one
// snapshot is unavailable (ErrTreeUnavailable).
type LostTree struct {
	Path     string // from the snapshot root, with a leading "/" ("/" for the root)
	Snapshot *repository.Snapshot
	Tree     blob.ID
	Err      error // the tree's load error
}

// DiffSummary counts a diff's changes.
type DiffSummary struct {
	Added, Removed, Modified int
	BytesAdded, BytesRemoved uint64
}

// Diff compares snapshot a with b, calling emit for each change in path
// order (a node that changes type is removed, then added). Both must be
// readable with the owner key; each snapshot's trees are read only from
// the copies a restore of it uses (R23); each is refused (an error wrapping
// ErrTooLarge) before anything is compared if its trees expand too far.
// Subtrees with the same ID are skipped: identical content encodes to the
// same tree (R20).
//
// A directory whose tree is unavailable in either snapshot is not
// compared: lost is told of it, and the diff goes on with the next path.
// Nothing below it is reported changed (what is there on the side that
// loads may or may not have changed). With lost nil, the first unavailable
// tree fails the diff.
func Diff(ctx context.Context, repo *repository.Repository, a, b *repository.Snapshot, emit func(Change), lost func(LostTree)) (DiffSummary, error) {
	if err := repo.LoadIndex(ctx); err != nil {
		return DiffSummary{}, err
	}
	exp := NewExpander(repo)
	for _, s := range []*repository.Snapshot{a, b} {
		if _, err := exp.Snapshot(ctx, s); err != nil {
			return DiffSummary{}, fmt.Errorf("snapshot %s is refused: %w", s.ID.Short(), err)
		}
	}
	d := &differ{ctx: ctx, repo: repo, emit: emit, lost: lost, a: a, b: b}
	ra, rb := a.File.Statement.Root, b.File.Statement.Root
	if err := d.trees(&ra, &rb, ""); err != nil {
		return d.sum, fmt.Errorf("diff %s %s: %w", a.ID.Short(), b.ID.Short(), err)
	}
	return d.sum, nil
}

type differ struct {
	ctx  context.Context
	repo *repository.Repository
	emit func(Change)
	lost func(LostTree)
	a, b *repository.Snapshot
	sum  DiffSummary
}

// load loads the tree id (nil: none) of snapshot s at path p, from the
// copies a read for s may use (repository.ReadFor: its signer's domain
// and the owner's, as restore and ls read it). ok is false when the tree
// is unavailable and was reported lost: the caller skips the directory.
func (d *differ) load(id *blob.ID, s *repository.Snapshot, p string) (nodes []snapshot.Node, ok bool, err error) {
	if id == nil {
		return nil, true, nil
	}
	t, err := LoadTree(repository.ReadFor(d.ctx, s.Signer()), d.repo, *id)
	if errors.Is(err, ErrTreeUnavailable) && d.lost != nil {
		d.lost(LostTree{Path: cmp.Or(p, "/"), Snapshot: s, Tree: *id, Err: err})
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return t.Nodes, true, nil
}

// trees compares two directories (either may be nil), skipping subtrees
// with the same ID.
func (d *differ) trees(a, b *blob.ID, prefix string) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	if err := d.ctx.Err(); err != nil {
		return err
	}
	na, okA, err := d.load(a, d.a, prefix)
	if err != nil {
		return err
	}
	nb, okB, err := d.load(b, d.b, prefix)
	if err != nil || !okA || !okB {
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
func (d *differ) side(kind string, n *snapshot.Node, p string) error {
	d.emit(Change{Kind: kind, Path: p})
	if kind == "+" {
		d.sum.Added++
		d.sum.BytesAdded += n.Size
	} else {
		d.sum.Removed++
		d.sum.BytesRemoved += n.Size
	}
	if n.Type != snapshot.TypeDir || n.Subtree == nil {
		return nil
	}
	s := d.b
	if kind == "-" {
		s = d.a
	}
	nodes, _, err := d.load(n.Subtree, s, p)
	if err != nil {
		return err
	}
	for i := range nodes {
		if err := d.side(kind, &nodes[i], p+"/"+nodes[i].Name); err != nil {
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
		d.sum.Modified++
		if b.Size > a.Size {
			d.sum.BytesAdded += b.Size - a.Size
		} else {
			d.sum.BytesRemoved += a.Size - b.Size
		}
		d.emit(Change{Kind: "M", Path: p, What: what})
	}
	if a.Type == snapshot.TypeDir {
		return d.trees(a.Subtree, b.Subtree, p)
	}
	return nil
}

func xattrsEqual(a, b []snapshot.Xattr) bool {
	return slices.EqualFunc(a, b, func(x, y snapshot.Xattr) bool { return x.Name == y.Name && string(x.Value) == string(y.Value) })
}
