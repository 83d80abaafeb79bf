package index

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
)

// Index maps (blob ID, stored type) to where the blob is stored. Types are
// kept as blob.Type.Stored: a tree is indexed as content (Data), as its
// pack header records it, and a lookup for a tree finds it there. The zero value is
// not usable; call New. Readers (Lookup, Has, LookupAll, Len, Each, Packs)
// may run concurrently with each other, but an Index needs external locking
// when one goroutine writes (Add, Grow, RemovePacks, Merge, Compact) while
// others read; Concurrent does that.
type Index struct {
	packs   []blob.ID          // pack table; every pack here has an entry
	packDom []uint32           // domain of each pack table row: index in doms
	packIdx map[packKey]uint32 // (pack ID, domain) -> index in packs
	doms    []blob.Domain      // domain table
	domIdx  map[blob.Domain]uint32
	shards  [256]shard // by the ID's first byte

	keys    []uint64 // scratch for compact
	scratch []entry
}

// New returns an empty index.
func New() *Index {
	return &Index{packIdx: make(map[packKey]uint32), domIdx: make(map[blob.Domain]uint32)}
}

// Len returns the number of entries, duplicates included.
func (x *Index) Len() int {
	n := 0
	for i := range x.shards {
		n += len(x.shards[i].es)
	}
	return n
}

// Add adds e. It never deduplicates: adding the same blob twice, even with
// the same location, makes two entries. Amortised O(1): every so often it
// merges a shard's recent entries into its sorted ones, O(Len/256).
// It panics beyond MaxPacks distinct packs.
func (x *Index) Add(e Entry) {
	x.add(entry{
		id:     e.ID,
		pt:     x.intern(&e.Pack, &e.Domain)<<8 | uint32(e.Type.Stored()),
		offset: e.Offset,
		length: e.Length,
		slot:   e.Slot,
	})
}

// Grow reserves room for n more entries, assuming uniformly distributed IDs
// (blob IDs are keyed hashes). Loading a known number of entries after Grow
// allocates about once instead of growing step by step.
func (x *Index) Grow(n int) {
	if n <= 0 {
		return
	}
	// A shard's share is binomial: mean n/256, deviation about its root.
	mean := float64(n) / float64(len(x.shards))
	per := int(mean + 4*math.Sqrt(mean) + 4)
	for i := range x.shards {
		s := &x.shards[i]
		if cap(s.es)-len(s.es) < per {
			s.grow(per)
		}
	}
}

// packKey names a pack table row: a pack holds blobs of one domain, but
// a hostile index fragment may list someone else's pack under its own
// domain, and that listing must not change the domain of the real one.
type packKey struct {
	pack blob.ID
	dom  uint32
}

func (x *Index) internDomain(d *blob.Domain) uint32 {
	if i, ok := x.domIdx[*d]; ok {
		return i
	}
	i := uint32(len(x.doms))
	x.doms = append(x.doms, *d)
	x.domIdx[*d] = i
	return i
}

func (x *Index) intern(pack *blob.ID, d *blob.Domain) uint32 {
	dom := x.internDomain(d)
	if n := len(x.packs); n > 0 && x.packs[n-1] == *pack && x.packDom[n-1] == dom {
		return uint32(n - 1) // entries usually arrive a pack at a time
	}
	k := packKey{*pack, dom}
	if i, ok := x.packIdx[k]; ok {
		return i
	}
	if len(x.packs) >= MaxPacks {
		panic(fmt.Sprintf("index: more than %d packs", MaxPacks))
	}
	i := uint32(len(x.packs))
	x.packs = append(x.packs, *pack)
	x.packDom = append(x.packDom, dom)
	x.packIdx[k] = i
	return i
}

// Compact merges every recent entry into the sorted ones, frees the tail
// hash tables and scratch space, and gives back all spare capacity, so
// that an index loaded for reading holds its entries and directories
// only. Add merges by itself when needed; Compact is for after loading.
// The next Add to a shard grows its array by a quarter again, one shard
// at a time.
func (x *Index) Compact() {
	for i := range x.shards {
		s := &x.shards[i]
		x.compact(s)
		s.tab = nil
		if cap(s.es) > len(s.es) {
			s.es = append(make([]entry, 0, len(s.es)), s.es...)
		}
	}
	x.keys, x.scratch = nil, nil
}

// cmpP is the total order of sorted entries: (ID, Type), then pack ID,
// offset, length and slot, so the order depends neither on insertion order
// nor on pack table indexes.
func (x *Index) cmpP(a, b *entry) int {
	if c := cmpKey(a, &b.id, b.typ()); c != 0 {
		return c
	}
	if a.pack() != b.pack() {
		if c := bytes.Compare(x.packs[a.pack()][:], x.packs[b.pack()][:]); c != 0 {
			return c
		}
		if c := bytes.Compare(x.doms[x.packDom[a.pack()]][:], x.doms[x.packDom[b.pack()]][:]); c != 0 {
			return c
		}
	}
	return cmp.Or(cmp.Compare(a.offset, b.offset), cmp.Compare(a.length, b.length), cmp.Compare(a.slot, b.slot))
}

func (x *Index) export(e *entry) Entry {
	p := e.pack()
	return Entry{ID: e.id, Type: e.typ(), Pack: x.packs[p], Offset: e.offset, Length: e.length, Slot: e.slot, Domain: x.doms[x.packDom[p]]}
}

// domainOf returns the domain table index of e's pack.
func (x *Index) domainOf(e *entry) uint32 { return x.packDom[e.pack()] }

// Lookup returns an entry for (id, t) in any domain. When the blob is
// stored more than once, which one is unspecified; LookupAll returns all,
// LookupIn one of a given domain.
func (x *Index) Lookup(id blob.ID, t blob.Type) (Entry, bool) {
	t = t.Stored()
	s := &x.shards[id[0]]
	if i := s.find(&id, t); i >= 0 {
		return x.export(&s.es[i]), true
	}
	return Entry{}, false
}

// Has reports whether the index has an entry for (id, t).
func (x *Index) Has(id blob.ID, t blob.Type) bool {
	return x.shards[id[0]].find(&id, t.Stored()) >= 0
}

// LookupIn returns an entry for (id, t) in domain d (R23: only a copy of
// the asker's own domain may stand for its blob).
func (x *Index) LookupIn(id blob.ID, t blob.Type, d blob.Domain) (Entry, bool) {
	dom, ok := x.domIdx[d]
	if !ok {
		return Entry{}, false
	}
	t = t.Stored()
	s := &x.shards[id[0]]
	for i := s.search(&id, t); i < s.sorted && cmpKey(&s.es[i], &id, t) == 0; i++ {
		if x.domainOf(&s.es[i]) == dom {
			return x.export(&s.es[i]), true
		}
	}
	for _, j := range s.tabFindAll(nil, &id, t) {
		if e := &s.es[s.sorted+j]; x.domainOf(e) == dom {
			return x.export(e), true
		}
	}
	return Entry{}, false
}

// HasIn reports whether the index has an entry for (id, t) in domain d.
func (x *Index) HasIn(id blob.ID, t blob.Type, d blob.Domain) bool {
	_, ok := x.LookupIn(id, t, d)
	return ok
}

// LookupAll returns every entry for (id, t), or nil.
func (x *Index) LookupAll(id blob.ID, t blob.Type) []Entry {
	t = t.Stored()
	s := &x.shards[id[0]]
	var out []Entry
	for i := s.search(&id, t); i < s.sorted && cmpKey(&s.es[i], &id, t) == 0; i++ {
		out = append(out, x.export(&s.es[i]))
	}
	recent := s.tabFindAll(nil, &id, t)
	slices.Sort(recent) // insertion order
	for _, i := range recent {
		out = append(out, x.export(&s.es[s.sorted+i]))
	}
	return out
}

// Each calls fn for every entry in (ID, Type) order, duplicates in the
// order of pack ID, until fn returns false. fn must not modify x.
func (x *Index) Each(fn func(Entry) bool) {
	var order []int32
	for si := range x.shards {
		s := &x.shards[si]
		main, tail := s.main(), s.tail()
		order = order[:0]
		for i := range tail {
			order = append(order, int32(i))
		}
		slices.SortFunc(order, func(a, b int32) int { return x.cmpP(&tail[a], &tail[b]) })
		i, j := 0, 0
		for i < len(main) || j < len(order) {
			var e *entry
			if j == len(order) || (i < len(main) && x.cmpP(&main[i], &tail[order[j]]) <= 0) {
				e = &main[i]
				i++
			} else {
				e = &tail[order[j]]
				j++
			}
			if !fn(x.export(e)) {
				return
			}
		}
	}
}

// Packs returns the distinct packs that hold at least one entry, sorted.
func (x *Index) Packs() []blob.ID {
	out := slices.Clone(x.packs)
	slices.SortFunc(out, func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(out)
}
