package pack

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cairnbackup/cairn/internal/blob"
)

const indexMagic = "CRI1"

// MaxIndexPacks bounds the packs one index fragment may describe.
const MaxIndexPacks = 1 << 16

// IndexPack is one pack's entry in an index fragment: its name and its
// plaintext header, byte for byte as sealed inside the pack.
type IndexPack struct {
	Pack   blob.ID
	Header []byte
}

// MarshalIndex encodes an index fragment's plaintext:
//
//	"CRI1" | packs u32 | per pack: id [32], header length u32, header
func MarshalIndex(packs []IndexPack) []byte {
	n := 8
	for _, p := range packs {
		n += 36 + len(p.Header)
	}
	b := make([]byte, 0, n)
	b = append(b, indexMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(packs)))
	for _, p := range packs {
		b = append(b, p.Pack[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Header)))
		b = append(b, p.Header...)
	}
	return b
}

// ParsedPack is an IndexPack with its header decoded.
type ParsedPack struct {
	IndexPack
	Parsed *Header
}

// ParseIndex decodes an index fragment's plaintext and every header in it.
// Headers are validated as far as possible without the pack's size.
func ParseIndex(buf []byte) ([]ParsedPack, error) {
	r := &reader{b: buf}
	if string(r.take(4)) != indexMagic {
		return nil, fmt.Errorf("%w: bad index magic", ErrFormat)
	}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if n > MaxIndexPacks || uint64(n)*36 > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: index claims %d packs in %d bytes", ErrFormat, n, len(r.b))
	}
	out := make([]ParsedPack, 0, n)
	seen := make(map[blob.ID]bool, n)
	for i := uint32(0); i < n; i++ {
		var p ParsedPack
		copy(p.Pack[:], r.take(32))
		l := r.u32()
		hb := r.take(int(l))
		if r.err != nil {
			return nil, r.err
		}
		if seen[p.Pack] {
			return nil, fmt.Errorf("%w: pack %s listed twice", ErrFormat, p.Pack)
		}
		seen[p.Pack] = true
		h, err := ParseHeader(hb, math.MaxUint32)
		if err != nil {
			return nil, fmt.Errorf("index entry for pack %s: %w", p.Pack, err)
		}
		p.Header = append([]byte(nil), hb...)
		p.Parsed = h
		out = append(out, p)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in index", ErrFormat, len(r.b))
	}
	return out, nil
}
