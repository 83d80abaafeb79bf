package walker

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// MaxExpandedNodes bounds the nodes a walk of one snapshot may visit: its
// trees expanded, every occurrence of a shared subtree counted again.
// R18 bounds entries per tree and depth, which still lets a writer commit
// 41 small trees, each level two entries naming the same subtree, that
// expand to 2^40 files: a restore that never ends and fills the disk's
// inodes, an ls or find that never ends. 100 million nodes is far above
// any real file system a backup reads and far below such a bomb.
const MaxExpandedNodes = 100_000_000

// ErrTooLarge marks a snapshot whose trees expand beyond MaxExpandedNodes
// or beyond the counts its signed summary declares.
var ErrTooLarge = errors.New("tree expands too far")

// Expansion counts what a walk of a tree visits.
type Expansion struct {
	Nodes uint64 // every node below the tree
	Files uint64 // regular files that are not hard links
	Dirs  uint64 // trees, the tree itself included
}

func (x *Expansion) add(y Expansion) {
	x.Nodes += y.Nodes
	x.Files += y.Files
	x.Dirs += y.Dirs
}

// Expander computes expansions over the tree DAG, loading each distinct
// tree once, however often it occurs and however many snapshots of one
// signer share it (keep one Expander for several snapshots). Not safe for
// concurrent use.
type Expander struct {
	repo *repository.Repository
	// Max is the bound; MaxExpandedNodes unless changed before use.
	Max uint64
	// memos holds expansions per read scope: a tree that does not load
	// for one signer counts as empty, and must not for another that
	// reads it (nor the other way round).
	memos map[readScope]map[blob.ID]Expansion
}

// readScope is whose copies a walk reads: Snapshot's signer, or for Tree
// the domains of its ctx (unsigned).
type readScope struct {
	signer blob.Domain
	signed bool
}

// NewExpander returns an Expander for repo.
func NewExpander(repo *repository.Repository) *Expander {
	return &Expander{repo: repo, Max: MaxExpandedNodes, memos: map[readScope]map[blob.ID]Expansion{}}
}

func (e *Expander) memo(sc readScope) map[blob.ID]Expansion {
	m := e.memos[sc]
	if m == nil {
		m = map[blob.ID]Expansion{}
		e.memos[sc] = m
	}
	return m
}

// treeInfo is what the expansion needs of one loaded tree.
type treeInfo struct {
	own  Expansion // its own nodes, files and itself
	kids []blob.ID // subtrees, once per occurrence
}

// Tree returns root's expansion, or an error wrapping ErrTooLarge as soon
// as it exceeds e.Max. A tree that does not load counts as empty: a walk
// reports it when it gets there, and visits nothing below it. Reads use
// ctx's domains; its memo is Tree's own, so every call of Tree on one
// Expander must read the same domains (for a snapshot's trees use
// Snapshot, which reads and memoises per signer).
func (e *Expander) Tree(ctx context.Context, root blob.ID) (Expansion, error) {
	return e.tree(ctx, e.memo(readScope{}), root)
}

func (e *Expander) tree(ctx context.Context, memo map[blob.ID]Expansion, root blob.ID) (Expansion, error) {
	if x, ok := memo[root]; ok {
		return x, e.bound(x)
	}
	// Without the index every tree would fail to load and count as empty.
	if err := e.repo.LoadIndex(ctx); err != nil {
		return Expansion{}, err
	}
	info, err := e.load(ctx, memo, root)
	if err != nil {
		return Expansion{}, err
	}
	return e.expand(memo, root, info, 0)
}

func (e *Expander) bound(x Expansion) error {
	if x.Nodes > e.Max {
		return fmt.Errorf("%w: more than %d nodes (a tree that names the same subtree many times over?)", ErrTooLarge, e.Max)
	}
	return nil
}

// load reads every distinct tree below root that is not memoised yet, a
// level at a time with up to walkWorkers loads in flight.
func (e *Expander) load(ctx context.Context, memo map[blob.ID]Expansion, root blob.ID) (map[blob.ID]*treeInfo, error) {
	info := map[blob.ID]*treeInfo{}
	level := []blob.ID{root}
	var distinct uint64 // nodes of the distinct trees loaded: a lower bound of the expansion
	for depth := 0; len(level) > 0; depth++ {
		if depth > MaxDepth+1 {
			return nil, fmt.Errorf("%w: deeper than %d levels", ErrTooLarge, MaxDepth)
		}
		loaded := make([]*treeInfo, len(level))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(walkWorkers)
		for i, id := range level {
			g.Go(func() error {
				t, err := LoadTree(gctx, e.repo, id)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					loaded[i] = &treeInfo{} // the walk reports it
					return nil
				}
				loaded[i] = summarise(t)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		var next []blob.ID
		for i, id := range level {
			info[id] = loaded[i]
			distinct += loaded[i].own.Nodes
			if distinct > e.Max {
				return nil, e.bound(Expansion{Nodes: distinct})
			}
			for _, k := range loaded[i].kids {
				if _, ok := info[k]; ok {
					continue
				}
				if _, ok := memo[k]; ok {
					continue
				}
				info[k] = nil // queued
				next = append(next, k)
			}
		}
		level = next
	}
	return info, nil
}

func summarise(t *snapshot.Tree) *treeInfo {
	ti := &treeInfo{own: Expansion{Nodes: uint64(len(t.Nodes)), Dirs: 1}}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch {
		case n.Type == snapshot.TypeDir && n.Subtree != nil:
			ti.kids = append(ti.kids, *n.Subtree)
		case n.Type == snapshot.TypeFile && n.HardLinkTo == "":
			ti.own.Files++
		}
	}
	return ti
}

// expand sums id's expansion from info and memo, memoising it.
func (e *Expander) expand(memo map[blob.ID]Expansion, id blob.ID, info map[blob.ID]*treeInfo, depth int) (Expansion, error) {
	if x, ok := memo[id]; ok {
		return x, e.bound(x)
	}
	if depth > MaxDepth+1 {
		return Expansion{}, fmt.Errorf("%w: deeper than %d levels", ErrTooLarge, MaxDepth)
	}
	ti := info[id]
	if ti == nil {
		return Expansion{}, fmt.Errorf("tree %s: not loaded", id.Short()) // cannot happen: load queued it
	}
	x := ti.own
	for _, k := range ti.kids {
		sub, err := e.expand(memo, k, info, depth+1)
		if err != nil {
			return Expansion{}, err
		}
		x.add(sub)
		if err := e.bound(x); err != nil {
			return Expansion{}, err
		}
	}
	memo[id] = x
	return x, nil
}

// Snapshot checks that snap's trees expand within e.Max and to no more
// files and directories than its signed summary declares (when it
// declares any): the counts a backup made are what its trees hold, so a
// snapshot whose trees hold more was not made by a backup. Reads use the
// snapshot signer's domain and the owner's (R23), memoised per signer.
func (e *Expander) Snapshot(ctx context.Context, snap *repository.Snapshot) (Expansion, error) {
	ctx = repository.ReadFor(ctx, snap.Signer())
	x, err := e.tree(ctx, e.memo(readScope{signer: snap.Signer(), signed: true}), snap.File.Statement.Root)
	if err != nil {
		return x, err
	}
	if o := snap.Owner; o != nil {
		s := o.Summary
		files := s.FilesNew + s.FilesChanged + s.FilesUnchanged
		dirs := s.DirsNew + s.DirsChanged + s.DirsUnchanged
		if files+dirs > 0 && (x.Files > files || x.Dirs > dirs) {
			return x, fmt.Errorf("%w: its trees hold %d files in %d directories, more than the %d files in %d directories its signed summary declares",
				ErrTooLarge, x.Files, x.Dirs, files, dirs)
		}
	}
	return x, nil
}

// CheckSize is NewExpander(repo).Snapshot for one snapshot: call it
// before walking snap, and refuse the snapshot on an error.
func CheckSize(ctx context.Context, repo *repository.Repository, snap *repository.Snapshot) error {
	if _, err := NewExpander(repo).Snapshot(ctx, snap); err != nil {
		return fmt.Errorf("snapshot %s is refused: %w", snap.ID.Short(), err)
	}
	return nil
}
