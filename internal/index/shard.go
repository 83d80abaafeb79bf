package index

import (
	"encoding/binary"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
)

// Shard sizing. A shard's recent entries are merged into its sorted ones
// when they number max(minTail, sorted/tailRatio) or fill the array; a full
// array grows by a quarter of its length plus minTail.
const (
	minTail   = 64
	tailRatio = 8
	growNum   = 5
	growDen   = 4
)

// shard holds the entries whose ID starts with one byte value, in one
// array: es[:sorted] is sorted by (*Index).cmp, es[sorted:] is the tail of
// recent Adds in insertion order, found through tab (see tail.go). The
// spare capacity takes the next Adds, so merging the tail in is done in
// place, and memory is allocated only when the array grows.
type shard struct {
	es     []entry
	sorted int
	tab    []uint32
	dir    []uint32 // see buildDir
	dirB   uint
}

func (s *shard) main() []entry { return s.es[:s.sorted] }
func (s *shard) tail() []entry { return s.es[s.sorted:] }

func (s *shard) tailMax() int { return min(max(minTail, s.sorted/tailRatio), idxMask) }

// add appends e to the tail, merging and growing first if needed.
func (x *Index) add(e entry) {
	s := &x.shards[e.id[0]]
	if len(s.es) == cap(s.es) || len(s.es)-s.sorted >= s.tailMax() {
		x.compact(s)
		if len(s.es) == cap(s.es) {
			s.grow(0)
		}
	}
	s.es = append(s.es, e)
	if t := len(s.es) - s.sorted; 2*t > len(s.tab) {
		s.rehash()
	} else {
		s.tabInsert(&e.id, t-1)
	}
}

// grow reallocates es with room for at least n more entries, and at least a
// quarter more, so that repeated small Grows stay amortised O(1).
func (s *shard) grow(n int) {
	es := make([]entry, len(s.es), len(s.es)+max(n, len(s.es)*(growNum-growDen)/growDen+minTail))
	copy(es, s.es)
	s.es = es
}

// compact merges the tail into the sorted entries, in place: the tail is
// sorted through 8-byte keys into x.scratch, then merged from the back, so
// that every entry moves at most once and unread sorted entries are never
// overwritten.
func (x *Index) compact(s *shard) {
	tail := s.tail()
	if len(tail) == 0 {
		return
	}
	// Sort by ID bytes 1 to 5 (byte 0 chose the shard) packed with the tail
	// index into a uint64, which sorts fast; then order the rare runs that
	// tie on those 40 bits by the full order.
	keys := x.keys[:0]
	for i := range tail {
		keys = append(keys, binary.BigEndian.Uint64(tail[i].id[1:])&^idxMask|uint64(i))
	}
	slices.Sort(keys)
	for a := 0; a < len(keys); {
		b := a + 1
		for b < len(keys) && keys[b]>>idxBits == keys[a]>>idxBits {
			b++
		}
		if b-a > 1 {
			slices.SortFunc(keys[a:b], func(p, q uint64) int {
				return x.cmpP(&tail[p&idxMask], &tail[q&idxMask])
			})
		}
		a = b
	}
	t := x.scratch[:0]
	for _, k := range keys {
		t = append(t, tail[k&idxMask])
	}
	x.keys, x.scratch = keys[:0], t[:0]

	es := s.es
	i, w := s.sorted, len(es) // es[:i] unmerged sorted entries; es[w:] done
	for j := len(t) - 1; j >= 0; j-- {
		e := &t[j]
		// Find p: es[p:i] are the sorted entries after e. Gallop back from
		// i until es[q] <= e, then binary search the last stride.
		lo, hi, step := 0, i, 1
		for q := i - 1; q >= 0; q = hi - step {
			if x.cmpP(&es[q], e) <= 0 {
				lo = q + 1
				break
			}
			hi = q
			step *= 2
		}
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if x.cmpP(&es[m], e) <= 0 {
				lo = m + 1
			} else {
				hi = m
			}
		}
		n := i - lo
		copy(es[w-n:w], es[lo:i])
		w -= n + 1
		i = lo
		es[w] = *e
	}
	s.sorted = len(es)
	clear(s.tab)
	s.buildDir()
}

// A tail index fits in the low idxBits of a sort key.
const (
	idxBits = 24
	idxMask = 1<<idxBits - 1
)

// buildDir indexes the sorted entries by the dirB ID bits after the first
// byte (which picked the shard): entries with those bits equal to p are
// es[dir[p]:dir[p+1]]. 2^dirB is between sorted/8 and sorted/4, so a lookup
// binary searches 4 to 8 entries on average, for at most a byte per entry.
func (s *shard) buildDir() {
	b := uint(0)
	for 8<<b <= s.sorted {
		b++
	}
	if b == 0 {
		s.dir, s.dirB = nil, 0
		return
	}
	if len(s.dir) != 1<<b+1 {
		s.dir = make([]uint32, 1<<b+1)
	}
	s.dirB = b
	p := 0
	for i, e := range s.main() {
		q := int(prefix(&e.id) << 8 >> (64 - b))
		for ; p <= q; p++ {
			s.dir[p] = uint32(i)
		}
	}
	for ; p < len(s.dir); p++ {
		s.dir[p] = uint32(s.sorted)
	}
}

// search returns the index of the first sorted entry not less than (id, t).
func (s *shard) search(id *blob.ID, t blob.Type) int {
	lo, hi := 0, s.sorted
	if s.dirB > 0 {
		p := prefix(id) << 8 >> (64 - s.dirB)
		lo, hi = int(s.dir[p]), int(s.dir[p+1])
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmpKey(&s.es[m], id, t) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// find returns the index in es of an entry for (id, t), or -1.
func (s *shard) find(id *blob.ID, t blob.Type) int {
	if i := s.search(id, t); i < s.sorted && cmpKey(&s.es[i], id, t) == 0 {
		return i
	}
	if i := s.tabFind(id, t); i >= 0 {
		return s.sorted + i
	}
	return -1
}
