package index

import (
	"sync"

	"github.com/cairnbackup/cairn/internal/blob"
)

// Concurrent is an Index safe for use by many goroutines: readers share a
// read lock, writers take the write lock. An Add that merges a shard's
// recent entries or grows it holds the write lock for O(Len/256), a few
// milliseconds at most at 10 M entries.
type Concurrent struct {
	mu  sync.RWMutex
	idx *Index
}

// NewConcurrent returns an empty concurrent index.
func NewConcurrent() *Concurrent { return &Concurrent{idx: New()} }

// Add is Index.Add.
func (c *Concurrent) Add(e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idx.Add(e)
}

// Lookup is Index.Lookup.
func (c *Concurrent) Lookup(id blob.ID, t blob.Type) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.Lookup(id, t)
}

// Has is Index.Has.
func (c *Concurrent) Has(id blob.ID, t blob.Type) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.Has(id, t)
}

// LookupIn is Index.LookupIn.
func (c *Concurrent) LookupIn(id blob.ID, t blob.Type, d blob.Domain) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.LookupIn(id, t, d)
}

// HasIn is Index.HasIn.
func (c *Concurrent) HasIn(id blob.ID, t blob.Type, d blob.Domain) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.HasIn(id, t, d)
}

// In returns a view of c that answers Has for domain d only: the dedup
// and existence scope of a party that may rely on nothing but its own
// uploads (R23).
func (c *Concurrent) In(d blob.Domain) DomainView { return DomainView{c, d} }

// DomainView is Concurrent restricted to one domain.
type DomainView struct {
	c *Concurrent
	d blob.Domain
}

// Has reports whether (id, t) has a copy in the view's domain.
func (v DomainView) Has(id blob.ID, t blob.Type) bool { return v.c.HasIn(id, t, v.d) }

// LookupAll is Index.LookupAll.
func (c *Concurrent) LookupAll(id blob.ID, t blob.Type) []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.LookupAll(id, t)
}

// Len is Index.Len.
func (c *Concurrent) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.Len()
}

// Each is Index.Each under the read lock: fn must not call c's writers.
func (c *Concurrent) Each(fn func(Entry) bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	c.idx.Each(fn)
}

// Packs is Index.Packs.
func (c *Concurrent) Packs() []blob.ID {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx.Packs()
}

// RemovePacks is Index.RemovePacks.
func (c *Concurrent) RemovePacks(set map[blob.ID]struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idx.RemovePacks(set)
}

// Merge is Index.Merge. other must not change during the call.
func (c *Concurrent) Merge(other *Index) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idx.Merge(other)
}

// Compact is Index.Compact.
func (c *Concurrent) Compact() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idx.Compact()
}
