// Package blockcache serves small ranged reads of packs from aligned blocks
// fetched whole and kept for a while, for backends where every request is
// a round trip and costs the server more than the bytes do.
//
// A restore (and the size check before it) loads every tree of a snapshot,
// a few KiB each, one request each: on data set K that was 10,200 GETs
// for 19 MB, and MinIO spent more CPU answering them than cairn spent on
// the whole restore. Trees are stored together, in tree packs, in about the
// order a walk reaches them, so a block of a tree pack holds hundreds of
// the trees asked for next.
//
// Packs are immutable under their names (a pack's name is its hash), so a
// cached block never goes stale; the repository verifies every blob it
// opens whatever its bytes came from. Only data files (packs) are cached,
// only reads of at most MaxRead bytes that lie within one block, and a
// failed block fetch caches nothing: the read is then made as it was asked.
package blockcache

import (
	"bytes"
	"container/list"
	"context"
	"io"
	"sync"

	"github.com/cairnbackup/cairn/internal/backend"
)

const (
	// BlockSize is the unit fetched: at 1 MiB a request's round trip is
	// small beside its transfer even on a slow link, and a stray small
	// read (one blob of a file) wastes little.
	BlockSize = 1 << 20
	// MaxRead is the largest read served from a block. Data blobs of
	// files larger than a chunk are at least the chunker's minimum
	// (256 KiB) and are read directly.
	MaxRead = 64 << 10
	// Blocks is how many blocks are kept: 16 MiB, a whole tree pack.
	Blocks = 16
)

// FetchFunc reads up to n bytes of h from offset: fewer at the end of the
// file.
type FetchFunc func(ctx context.Context, h backend.Handle, offset int64, n int) ([]byte, error)

// Cache holds the most recently used blocks. The zero value is not usable;
// use New.
type Cache struct {
	fetch FetchFunc

	mu      sync.Mutex
	blocks  map[blockKey]*block
	lru     list.List // of *block, most recently used first
	fetches uint64
}

type blockKey struct {
	name  string
	index int64 // offset / BlockSize
}

type block struct {
	key  blockKey
	elem *list.Element
	done chan struct{} // closed once data or err is set
	data []byte
	err  error
}

// New returns a cache that fetches blocks with fetch.
func New(fetch FetchFunc) *Cache {
	return &Cache{fetch: fetch, blocks: map[blockKey]*block{}}
}

// Fetches is how many blocks the cache has fetched.
func (c *Cache) Fetches() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

// Load serves a read as backend.Backend.Load does: from a cached block when
// it is a small read of a pack within one block, else (and whenever the
// block cannot be had or does not hold the whole range) through direct,
// the backend's own load. A nil Cache loads everything through direct.
func (c *Cache) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error, direct func() error) error {
	if c == nil || h.Type != backend.Data || length <= 0 || length > MaxRead || offset < 0 ||
		offset/BlockSize != (offset+int64(length)-1)/BlockSize {
		return direct()
	}
	key := blockKey{name: h.Name, index: offset / BlockSize}
	data, err := c.get(ctx, h, key)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return direct()
	}
	start := int(offset - key.index*BlockSize)
	if start+length > len(data) {
		return direct() // past the end of the file: the backend says how
	}
	return fn(bytes.NewReader(data[start : start+length]))
}

// get returns the block at key, fetching it unless it is cached or being
// fetched (then it waits for that fetch).
func (c *Cache) get(ctx context.Context, h backend.Handle, key blockKey) ([]byte, error) {
	c.mu.Lock()
	b, ok := c.blocks[key]
	if ok {
		c.lru.MoveToFront(b.elem)
		c.mu.Unlock()
		select {
		case <-b.done:
			return b.data, b.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b = &block{key: key, done: make(chan struct{})}
	b.elem = c.lru.PushFront(b)
	c.blocks[key] = b
	c.fetches++
	for c.lru.Len() > Blocks {
		c.drop(c.lru.Back().Value.(*block))
	}
	c.mu.Unlock()

	b.data, b.err = c.fetch(ctx, h, key.index*BlockSize, BlockSize)
	close(b.done)
	if b.err != nil {
		c.mu.Lock()
		if c.blocks[key] == b {
			c.drop(b) // nothing is cached from a failed fetch
		}
		c.mu.Unlock()
	}
	return b.data, b.err
}

// drop forgets b; c.mu is held. Readers already holding it keep its data.
func (c *Cache) drop(b *block) {
	c.lru.Remove(b.elem)
	delete(c.blocks, b.key)
}
