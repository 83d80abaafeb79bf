package replication

import (
	"container/list"
	"context"
	"slices"
	"sync"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// manifestCache keeps the refs of the manifests the closure (closure.go)
// read, per repository and snapshot, so that a pass over a repository
// whose snapshots did not change reads no manifest again. A snapshot is
// named by the hash of its file, so its manifest never changes; a
// repository made again at the same path has other snapshot IDs. The
// cache is shared by the destinations' workers and bounded by the refs
// it holds (the least recently used snapshot goes first).
type manifestCache struct {
	max int // refs

	mu    sync.Mutex
	n     int // refs held
	order *list.List
	byKey map[manifestKey]*list.Element
}

type manifestKey struct {
	repo     string
	snapshot string
}

type manifestEntry struct {
	key  manifestKey
	refs []snapshot.Ref // sorted and unique
}

// maxCachedRefs bounds the cache: about 40 MiB of refs (33 bytes each,
// plus slice overhead), the manifests of a few million files.
const maxCachedRefs = 1 << 20

func newManifestCache(max int) *manifestCache {
	return &manifestCache{max: max, order: list.New(), byKey: map[manifestKey]*list.Element{}}
}

// refs returns a reader of repo's manifests for prune.MarkWith: what the
// cache holds, else what load reads (the primary's ManifestRefs), kept.
func (c *manifestCache) refs(repo string, load manifestReader) manifestReader {
	return func(ctx context.Context, s *repository.Snapshot) ([]snapshot.Ref, error) {
		k := manifestKey{repo, s.ID.String()}
		if refs, ok := c.get(k); ok {
			return refs, nil
		}
		refs, err := load(ctx, s)
		if err != nil {
			return nil, err
		}
		refs = snapshot.SortRefs(refs)
		c.put(k, refs)
		return slices.Clone(refs), nil
	}
}

// get returns a copy of a cached snapshot's refs (the caller may sort it
// in place).
func (c *manifestCache) get(k manifestKey) ([]snapshot.Ref, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return slices.Clone(e.Value.(*manifestEntry).refs), true
}

func (c *manifestCache) put(k manifestKey, refs []snapshot.Ref) {
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
func (c *manifestCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}
