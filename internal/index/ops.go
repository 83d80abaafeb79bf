package index

import (
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
)

// RemovePacks drops every entry stored in one of the packs in set, and the
// packs from the pack table. It costs O(Len).
func (x *Index) RemovePacks(set map[blob.ID]struct{}) {
	const gone = ^uint32(0)
	remap := make([]uint32, len(x.packs))
	kept := make([]blob.ID, 0, len(x.packs))
	keptDom := make([]uint32, 0, len(x.packs))
	for i, p := range x.packs {
		if _, ok := set[p]; ok {
			remap[i] = gone
			continue
		}
		remap[i] = uint32(len(kept))
		kept = append(kept, p)
		keptDom = append(keptDom, x.packDom[i])
	}
	if len(kept) == len(x.packs) {
		return
	}
	for i := range x.shards {
		s := &x.shards[i]
		// Filtering in place keeps both parts in order; count the sorted
		// survivors to find the new boundary.
		n, sorted := 0, 0
		for j := range s.es {
			r := remap[s.es[j].pack()]
			if r == gone {
				continue
			}
			if j < s.sorted {
				sorted++
			}
			s.es[n] = s.es[j]
			s.es[n].pt = r<<8 | s.es[j].pt&0xff
			n++
		}
		clear(s.es[n:])
		s.es, s.sorted = s.es[:n], sorted
		if cap(s.es) > 2*n+minTail {
			s.es = append(make([]entry, 0, n+n/8), s.es...) // give the space back
		}
		s.buildDir()
		s.rehash()
	}
	x.packs, x.packDom = kept, keptDom
	clear(x.packIdx)
	for i, p := range kept {
		x.packIdx[packKey{p, keptDom[i]}] = uint32(i)
	}
}

// Merge adds every entry of other to x. other is not modified; it may be x.
func (x *Index) Merge(other *Index) {
	if other == x {
		other = x.clone()
	}
	x.Grow(other.Len())
	remap := make([]uint32, len(other.packs))
	for i := range other.packs {
		remap[i] = x.intern(&other.packs[i], &other.doms[other.packDom[i]])
	}
	for si := range other.shards {
		for _, e := range other.shards[si].es {
			e.pt = remap[e.pack()]<<8 | e.pt&0xff
			x.add(e)
		}
	}
}

func (x *Index) clone() *Index {
	c := New()
	c.packs = slices.Clone(x.packs)
	c.packDom = slices.Clone(x.packDom)
	c.doms = slices.Clone(x.doms)
	for k, v := range x.packIdx {
		c.packIdx[k] = v
	}
	for k, v := range x.domIdx {
		c.domIdx[k] = v
	}
	for si := range x.shards {
		s, cs := &x.shards[si], &c.shards[si]
		cs.es = slices.Clone(s.es)
		cs.sorted = s.sorted
		cs.buildDir()
		cs.rehash()
	}
	return c
}
