package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
)

// Ref is one entry of a reference manifest: a blob a snapshot reaches.
type Ref struct {
	Type blob.Type
	ID   blob.ID
}

// Compare orders refs by ID, then type.
func (r Ref) Compare(o Ref) int {
	if c := bytes.Compare(r.ID[:], o.ID[:]); c != 0 {
		return c
	}
	return int(r.Type) - int(o.Type)
}

// Manifest page parameters. A page ends after a ref whose last four ID
// bytes, as a little-endian uint32, are 0 modulo PageMod, or when it holds
// MaxPageRefs refs. Cuts depend only on the IDs around them, so unchanged
// stretches of the sorted set produce identical pages that dedupe.
const (
	PageMod     = 128
	MaxPageRefs = 1024
	pageMagic   = "CRM1"
)

// SortRefs sorts and de-duplicates refs in place.
func SortRefs(refs []Ref) []Ref {
	slices.SortFunc(refs, Ref.Compare)
	return slices.CompactFunc(refs, func(a, b Ref) bool { return a == b })
}

// Pages cuts sorted, unique refs into encoded manifest pages.
//
//	page: "CRM1" | count u32 | count × (type u8, id [32])
func Pages(refs []Ref) [][]byte {
	var pages [][]byte
	start := 0
	for i, r := range refs {
		if binary.LittleEndian.Uint32(r.ID[28:])%PageMod == 0 || i-start+1 == MaxPageRefs || i == len(refs)-1 {
			pages = append(pages, encodePage(refs[start:i+1]))
			start = i + 1
		}
	}
	return pages
}

func encodePage(refs []Ref) []byte {
	b := make([]byte, 0, 8+33*len(refs))
	b = append(b, pageMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(refs)))
	for _, r := range refs {
		b = append(b, byte(r.Type))
		b = append(b, r.ID[:]...)
	}
	return b
}

// PageID is a manifest page's blob ID: SHA-256 over a label and the page.
// Unlike content blobs it is not keyed: pages are metadata, readable by
// whoever can check them.
func PageID(page []byte) blob.ID {
	h := sha256.New()
	h.Write([]byte("cairn manifest page v1\x00"))
	h.Write(page)
	var id blob.ID
	h.Sum(id[:0])
	return id
}

// ManifestRoot hashes the ordered page IDs.
func ManifestRoot(pages []blob.ID) [32]byte {
	h := sha256.New()
	for _, p := range pages {
		h.Write(p[:])
	}
	var r [32]byte
	h.Sum(r[:0])
	return r
}

// DecodePage decodes a manifest page; refs must be strictly increasing.
func DecodePage(b []byte) ([]Ref, error) {
	if len(b) < 8 || string(b[:4]) != pageMagic {
		return nil, fmt.Errorf("%w: bad manifest page magic", ErrFormat)
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n == 0 || n > MaxPageRefs || uint64(len(b)-8) != uint64(n)*33 {
		return nil, fmt.Errorf("%w: manifest page with %d refs in %d bytes", ErrFormat, n, len(b))
	}
	refs := make([]Ref, n)
	p := b[8:]
	for i := range refs {
		refs[i].Type = blob.Type(p[0])
		copy(refs[i].ID[:], p[1:33])
		p = p[33:]
		if refs[i].Type != blob.Data {
			// Refs are by stored type: a tree is content, like data
			// (docs/format.md §14); the server reads pages.
			return nil, fmt.Errorf("%w: manifest ref of type %d (refs are content, type 1)", ErrFormat, refs[i].Type)
		}
		if i > 0 && refs[i-1].Compare(refs[i]) >= 0 {
			return nil, fmt.Errorf("%w: manifest page not strictly sorted", ErrFormat)
		}
	}
	return refs, nil
}
