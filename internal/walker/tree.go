package walker

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// MaxDepth bounds tree depth (R18).
const MaxDepth = 2048

// ErrNotFound is returned for a path that is not in the snapshot.
var ErrNotFound = errors.New("no such path in snapshot")

// ErrTreeUnavailable marks a tree that cannot be read: no copy of it the
// read may use is in the index (a repair dropped its damaged pack), or
// none loads, opens and re-hashes to its ID. A walk can go on past it
// (WalkLost). A tree that loads but breaks R18 is not unavailable but
// invalid: it stops every walk.
var ErrTreeUnavailable = errors.New("tree is unavailable")

// unavailable wraps a tree's load error; its text is the load error's.
type unavailable struct{ err error }

func (e unavailable) Error() string   { return e.err.Error() }
func (e unavailable) Unwrap() []error { return []error{e.err, ErrTreeUnavailable} }

// LoadTree loads, verifies (the blob re-hashes to its ID) and decodes a
// tree. A tree that cannot be loaded is ErrTreeUnavailable (unless ctx
// ended).
func LoadTree(ctx context.Context, repo *repository.Repository, id blob.ID) (*snapshot.Tree, error) {
	plain, err := repo.LoadBlob(ctx, blob.Tree, id)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, unavailable{err}
	}
	t, err := snapshot.DecodeTree(plain)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}

// Walk calls fn for every node below root in pre-order, sorted by name,
// with its '/'-separated path relative to the snapshot root. fn returning
// ErrSkipDir for a directory skips its contents. fn is called on the
// caller's goroutine; meanwhile up to walkWorkers goroutines load the trees
// fn will reach next, in the order it reaches them, at most walkAhead of
// them loaded (or loading) and not yet reached: the walk does not wait on
// one tree load at a time, each a request to remote storage. A tree that
// fails to load fails the walk only when the walk reaches it. All
// goroutines Walk starts have ended when it returns.
func Walk(ctx context.Context, repo *repository.Repository, root blob.ID, fn func(path string, n *snapshot.Node) error) error {
	return WalkLost(ctx, repo, root, fn, nil)
}

// LostFunc is told of a directory whose tree is unavailable
// (ErrTreeUnavailable): its path relative to the walk's root ("" for the
// root itself), the tree's ID and the load error. Returning nil goes on
// with the directory's next sibling; an error stops the walk with it.
type LostFunc func(path string, id blob.ID, err error) error

// WalkLost is Walk that goes on past unavailable trees, telling lost of
// each (nil: the first one fails the walk, as in Walk). Everything below
// such a tree is unreachable: fn was called for the directory's node, and
// is called for nothing below it. Any other failure (R18, depth, ctx)
// still stops the walk.
func WalkLost(ctx context.Context, repo *repository.Repository, root blob.ID, fn func(path string, n *snapshot.Node) error, lost LostFunc) error {
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	p := newPrefetch(repo, walkWorkers, walkAhead)
	p.lost = lost
	return p.run(ctx, root, fn)
}

// ErrSkipDir tells Walk not to descend into a directory.
var ErrSkipDir = errors.New("skip this directory")

const (
	walkWorkers = 8   // concurrent tree loads ahead of Walk's visitor
	walkAhead   = 256 // trees loaded (or loading) ahead and not yet reached
)

// A treeLoad is one occurrence of a tree in the walk (a tree ID that
// occurs several times gets one for each).
type treeLoad struct {
	id    blob.ID
	pos   []uint32 // node indexes from the root: sorted, the walk's order
	state loadState
	drop  bool          // skipped while loading: the loader throws it away
	done  chan struct{} // closed when a loader has finished (state loading)
	tree  *snapshot.Tree
	err   error
	kids  []*treeLoad // one per directory node with a subtree, in order
}

type loadState uint8

const (
	pending loadState = iota // in the queue, not started
	loading                  // a loader has it (done, tree, err, kids once done closes)
	taken                    // the visitor has it, or it was dropped
)

// loadQueue is a heap of the loads to start, the first in walk order on
// top; it may hold loads no longer pending, until they surface.
type loadQueue []*treeLoad

func (q loadQueue) Len() int           { return len(q) }
func (q loadQueue) Less(i, j int) bool { return slices.Compare(q[i].pos, q[j].pos) < 0 }
func (q loadQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *loadQueue) Push(x any)        { *q = append(*q, x.(*treeLoad)) }
func (q *loadQueue) Pop() any {
	old := *q
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return r
}

// prefetch is the state Walk's loaders share with its visitor, under mu.
type prefetch struct {
	repo           *repository.Repository
	workers, ahead int
	ctx            context.Context // the loaders', cancelled when the walk returns
	lost           LostFunc        // nil: an unavailable tree fails the walk

	mu      sync.Mutex
	cond    sync.Cond // queue grew, held shrank, or stopped
	queue   loadQueue
	held    int // loading or loaded by a loader, not yet taken or dropped
	stopped bool
}

func newPrefetch(repo *repository.Repository, workers, ahead int) *prefetch {
	p := &prefetch{repo: repo, workers: workers, ahead: ahead}
	p.cond.L = &p.mu
	return p
}

// run walks the tree root with p's loaders; it returns when they have
// ended.
func (p *prefetch) run(ctx context.Context, root blob.ID, fn func(string, *snapshot.Node) error) error {
	lctx, cancel := context.WithCancel(ctx)
	p.ctx = lctx
	r := &treeLoad{id: root}
	p.queue = append(p.queue, r)
	var wg sync.WaitGroup
	for range p.workers {
		wg.Go(p.loader)
	}
	defer func() {
		p.mu.Lock()
		p.stopped = true
		p.cond.Broadcast()
		p.mu.Unlock()
		cancel()
		wg.Wait()
	}()
	return p.walk(ctx, r, "", fn)
}

// loader loads the first tree in the queue while fewer than ahead trees
// are held, and queues its subtrees.
func (p *prefetch) loader() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		p.trim()
		for !p.stopped && (len(p.queue) == 0 || p.held >= p.ahead) {
			p.cond.Wait()
			p.trim()
		}
		if p.stopped {
			return
		}
		r := heap.Pop(&p.queue).(*treeLoad)
		r.state, r.done = loading, make(chan struct{})
		p.held++
		p.mu.Unlock()
		t, err := LoadTree(p.ctx, p.repo, r.id)
		p.mu.Lock()
		if r.drop {
			p.held--
		} else {
			r.tree, r.err = t, err
			if err == nil {
				r.kids = p.push(r, t)
			}
		}
		close(r.done)
		p.cond.Broadcast()
	}
}

// trim drops loads that are no longer pending off the top of the queue.
func (p *prefetch) trim() {
	for len(p.queue) > 0 && p.queue[0].state != pending {
		heap.Pop(&p.queue)
	}
}

// push makes a load for each subtree of r's tree t and, unless they are
// too deep to walk, queues them; p.mu is held.
func (p *prefetch) push(r *treeLoad, t *snapshot.Tree) []*treeLoad {
	var kids []*treeLoad
	for i := range t.Nodes {
		if n := &t.Nodes[i]; n.Type == snapshot.TypeDir && n.Subtree != nil {
			pos := append(r.pos[:len(r.pos):len(r.pos)], uint32(i))
			kids = append(kids, &treeLoad{id: *n.Subtree, pos: pos})
		}
	}
	if len(r.pos)+1 <= MaxDepth && len(kids) > 0 {
		for _, k := range kids {
			heap.Push(&p.queue, k)
		}
		p.cond.Broadcast()
	}
	return kids
}

// take returns r's tree and subtree loads for the visitor: loading it
// itself if no loader has started it, else waiting for the loader.
func (p *prefetch) take(ctx context.Context, r *treeLoad) (*snapshot.Tree, []*treeLoad, error) {
	p.mu.Lock()
	if r.state == pending {
		r.state = taken
		p.trim()
		p.mu.Unlock()
		t, err := LoadTree(p.ctx, p.repo, r.id)
		if err != nil {
			return nil, nil, err
		}
		p.mu.Lock()
		kids := p.push(r, t)
		p.mu.Unlock()
		return t, kids, nil
	}
	done := r.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, kids, err := r.tree, r.kids, r.err
	r.state, r.tree, r.kids = taken, nil, nil
	p.held--
	p.cond.Broadcast()
	return t, kids, err
}

// skip drops r and everything below it that was loaded or is to be.
func (p *prefetch) skip(r *treeLoad) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop(r)
	p.trim()
	p.cond.Broadcast()
}

func (p *prefetch) drop(r *treeLoad) {
	switch r.state {
	case pending:
		r.state = taken
	case loading:
		select {
		case <-r.done:
			for _, k := range r.kids {
				p.drop(k)
			}
			r.state, r.tree, r.kids = taken, nil, nil
			p.held--
		default:
			r.drop = true // the loader drops it when done
			r.state = taken
		}
	}
}

func (p *prefetch) walk(ctx context.Context, r *treeLoad, prefix string, fn func(string, *snapshot.Node) error) error {
	if len(r.pos) > MaxDepth {
		return fmt.Errorf("tree %s: deeper than %d levels", r.id.Short(), MaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t, kids, err := p.take(ctx, r)
	if err != nil {
		if p.lost != nil && ctx.Err() == nil && errors.Is(err, ErrTreeUnavailable) {
			return p.lost(prefix, r.id, err)
		}
		return err
	}
	k := 0
	for i := range t.Nodes {
		n := &t.Nodes[i]
		var sub *treeLoad
		if n.Type == snapshot.TypeDir && n.Subtree != nil {
			sub = kids[k]
			k++
		}
		path := n.Name
		if prefix != "" {
			path = prefix + "/" + n.Name
		}
		err := fn(path, n)
		if errors.Is(err, ErrSkipDir) {
			if sub != nil {
				p.skip(sub)
			}
			continue
		}
		if err != nil {
			return err
		}
		if sub != nil {
			if err := p.walk(ctx, sub, path, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// FindNode returns the node at path (relative to the snapshot root). The
// empty path or "/" yields a synthetic directory node for the root.
func FindNode(ctx context.Context, repo *repository.Repository, root blob.ID, path string) (*snapshot.Node, error) {
	path = strings.Trim(path, "/")
	if path == "" {
		r := root
		return &snapshot.Node{Name: "/", Type: snapshot.TypeDir, Mode: 0o755, Subtree: &r}, nil
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return nil, err
	}
	cur := root
	parts := strings.Split(path, "/")
	for i, name := range parts {
		t, err := LoadTree(ctx, repo, cur)
		if errors.Is(err, ErrTreeUnavailable) {
			return nil, fmt.Errorf("/%s: %w", strings.Join(parts[:i], "/"), LostDir(err))
		}
		if err != nil {
			return nil, err
		}
		var found *snapshot.Node
		for j := range t.Nodes {
			if t.Nodes[j].Name == name {
				found = &t.Nodes[j]
				break
			}
		}
		if found == nil {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
		}
		if i == len(parts)-1 {
			return found, nil
		}
		if found.Type != snapshot.TypeDir || found.Subtree == nil {
			return nil, fmt.Errorf("%w: %s (%s is not a directory)", ErrNotFound, path, strings.Join(parts[:i+1], "/"))
		}
		cur = *found.Subtree
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
}
