package index

import (
	"encoding/binary"

	"github.com/cairnbackup/cairn/internal/blob"
)

// Entry says where one blob is stored.
type Entry struct {
	ID     blob.ID
	Type   blob.Type
	Pack   blob.ID // the pack file's name
	Offset uint32  // of the blob in the pack
	Length uint32  // of the blob in the pack
	Slot   uint32  // opaque to the index: the repository's key slot number
	// Domain is the provenance domain of this copy (its pack's, R23).
	Domain blob.Domain
}

// MaxPacks is how many distinct (pack, domain) pairs one Index can hold: an
// entry keeps its pack's table index in 24 bits.
const MaxPacks = 1 << 24

// entry is the packed in-memory form of an Entry: 48 bytes, 4-byte aligned.
type entry struct {
	id     blob.ID
	pt     uint32 // pack table index << 8 | blob type
	offset uint32
	length uint32
	slot   uint32
}

func (e *entry) typ() blob.Type { return blob.Type(e.pt) }
func (e *entry) pack() uint32   { return e.pt >> 8 }

// cmpKey orders entries by (ID, Type), the lookup key. IDs compare as
// big-endian bytes, done here a word at a time.
func cmpKey(e *entry, id *blob.ID, t blob.Type) int {
	for i := 0; i < 32; i += 8 {
		a := binary.BigEndian.Uint64(e.id[i:])
		b := binary.BigEndian.Uint64(id[i:])
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	switch et := e.typ(); {
	case et < t:
		return -1
	case et > t:
		return 1
	}
	return 0
}

// prefix returns the first 8 bytes of id as a big-endian integer.
func prefix(id *blob.ID) uint64 { return binary.BigEndian.Uint64(id[:8]) }
