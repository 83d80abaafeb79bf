package closure

import (
	"container/list"
	"context"
	"slices"
	"sync"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Cache keeps the refs of the manifests Want read, per repository and
// snapshot, so that a pass over a repository
// whose snapshots did not change reads no manifest again. A snapshot is
// named by the hash of its file, so its manifest never changes; a
// repository made again at the same path has other snapshot IDs. The
// cache is shared by the destinations' workers and bounded by the refs
// it holds (the least recently used snapshot goes first).
type Cache struct {
	max int // refs

	mu       sync.Mutex
	n        int // refs held
	order    *list.List
	byKey    map[manifestKey]*list.Element
	inFlight map[manifestKey]*manifestRead // reads under way: workers that want the same manifest wait for one read
}

// manifestRead is one read of a manifest that other workers wait for.
type manifestRead struct {
	done chan struct{}
	refs []snapshot.Ref // sorted and unique; nil after an error
	err  error
}

type manifestKey struct {
	repo     string
	snapshot string
}

type manifestEntry struct {
	key  manifestKey
	refs []snapshot.Ref // sorted and unique
}

// MaxCachedRefs bounds the cache: about 40 MiB of refs (33 bytes each,
// plus slice overhead), the manifests of a few million files.
const MaxCachedRefs = 1 << 20

// NewCache returns a cache that holds at most max refs.
func NewCache(max int) *Cache {
	return &Cache{max: max, order: list.New(), byKey: map[manifestKey]*list.Element{}, inFlight: map[manifestKey]*manifestRead{}}
}

// Refs returns a reader of repo's manifests for prune.MarkWith: what the
// cache holds, else what load reads (the primary's ManifestRefs), kept.
func (c *Cache) Refs(repo string, load ManifestReader) ManifestReader {
	return func(ctx context.Context, s *repository.Snapshot) ([]snapshot.Ref, error) {
		k := manifestKey{repo, s.ID.String()}
		c.mu.Lock()
		if refs, ok := c.getLocked(k); ok {
			c.mu.Unlock()
			return refs, nil
		}
		if r, ok := c.inFlight[k]; ok {
			c.mu.Unlock()
			select {
			case <-r.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if r.err != nil {
				return nil, r.err
			}
			return slices.Clone(r.refs), nil
		}
		r := &manifestRead{done: make(chan struct{})}
		c.inFlight[k] = r
		c.mu.Unlock()
		refs, err := load(ctx, s)
		if err == nil {
			refs = snapshot.SortRefs(refs)
			c.put(k, refs)
		}
		r.refs, r.err = refs, err
		c.mu.Lock()
		delete(c.inFlight, k)
		c.mu.Unlock()
		close(r.done)
		if err != nil {
			return nil, err
		}
		return slices.Clone(refs), nil
	}
}

// get returns a copy of a cached snapshot's refs (the caller may sort it
// in place).
func (c *Cache) get(k manifestKey) ([]snapshot.Ref, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(k)
}

func (c *Cache) getLocked(k manifestKey) ([]snapshot.Ref, bool) {
	e, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return slices.Clone(e.Value.(*manifestEntry).refs), true
}

func (c *Cache) put(k manifestKey, refs []snapshot.Ref) {
	if len(refs) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[k]; ok {
		return
	}
	c.byKey[k] = c.order.PushFront(&manifestEntry{key: k, refs: refs})
	c.n += len(refs)
	for c.n > c.max {
		last := c.order.Back()
		e := last.Value.(*manifestEntry)
		c.order.Remove(last)
		delete(c.byKey, e.key)
		c.n -= len(e.refs)
	}
}

// len returns the snapshots cached.
func (c *Cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}
