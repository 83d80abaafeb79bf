package index

import (
	"encoding/binary"
	"math/bits"

	"github.com/cairnbackup/cairn/internal/blob"
)

// A shard's tail is found through tab: open addressing with linear probing
// over uint32 slots holding a tail index + 1 (0 is empty), a power of two at
// least twice the tail's length, so at most half full: 8 to 16 bytes per
// tail entry. Duplicate IDs take separate slots; a search walks the cluster
// to the first empty slot. Blob IDs are keyed hashes, but the words are
// still mixed so that structured test IDs spread too.

func hashID(id *blob.ID) uint64 {
	h := binary.LittleEndian.Uint64(id[0:]) ^ binary.LittleEndian.Uint64(id[8:])*0x9e3779b97f4a7c15 ^
		binary.LittleEndian.Uint64(id[16:])*0xc2b2ae3d27d4eb4f ^ binary.LittleEndian.Uint64(id[24:])*0x165667b19e3779f9
	return (h ^ h>>29) * 0xbf58476d1ce4e5b9
}

// rehash sizes tab for the tail and refills it.
func (s *shard) rehash() {
	tail := s.tail()
	n := max(16, 1<<bits.Len(uint(2*len(tail))))
	if len(s.tab) != n {
		s.tab = make([]uint32, n)
	} else {
		clear(s.tab)
	}
	for i := range tail {
		s.tabInsert(&tail[i].id, i)
	}
}

func (s *shard) tabInsert(id *blob.ID, i int) {
	mask := uint64(len(s.tab) - 1)
	h := hashID(id) & mask
	for s.tab[h] != 0 {
		h = (h + 1) & mask
	}
	s.tab[h] = uint32(i + 1)
}

// tabFind returns the tail index of the first entry for (id, t), or -1.
func (s *shard) tabFind(id *blob.ID, t blob.Type) int {
	tail := s.tail()
	if len(tail) == 0 {
		return -1
	}
	mask := uint64(len(s.tab) - 1)
	for h := hashID(id) & mask; s.tab[h] != 0; h = (h + 1) & mask {
		i := int(s.tab[h] - 1)
		if e := &tail[i]; e.id == *id && e.typ() == t {
			return i
		}
	}
	return -1
}

// tabFindAll appends the tail indexes of every entry for (id, t).
func (s *shard) tabFindAll(dst []int, id *blob.ID, t blob.Type) []int {
	tail := s.tail()
	if len(tail) == 0 {
		return dst
	}
	mask := uint64(len(s.tab) - 1)
	for h := hashID(id) & mask; s.tab[h] != 0; h = (h + 1) & mask {
		i := int(s.tab[h] - 1)
		if e := &tail[i]; e.id == *id && e.typ() == t {
			dst = append(dst, i)
		}
	}
	return dst
}
