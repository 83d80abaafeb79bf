package pack

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
)

const indexMagic = "CRI2"

// MaxIndexPacks bounds the packs one index fragment may describe.
const MaxIndexPacks = 1 << 16

// IndexPack is one pack's entry in an index fragment: its name and its
// plaintext header, byte for byte as sealed inside the pack.
type IndexPack struct {
	Pack   blob.ID
	Header []byte
}

// MarshalIndex encodes an unsigned index fragment's plaintext (signer and
// signature zero: no reader accepts it; SignIndex makes a valid one):
//
//	"CRI2" | signer [32] | packs u32 |
//	per pack: id [32], header length u32, header | signature [64]
func MarshalIndex(packs []IndexPack) []byte {
	b := indexBody(packs, nil)
	return append(b, make([]byte, sigSize)...)
}

// SignIndex encodes an index fragment signed by its uploader priv for the
// repository repoID (context crypto.SigIndex, message repo ID ‖ everything
// before the signature).
func SignIndex(packs []IndexPack, repoID [32]byte, priv ed25519.PrivateKey) []byte {
	b := indexBody(packs, priv.Public().(ed25519.PublicKey))
	sig := crypto.Sign(priv, crypto.SigIndex, append(repoID[:], b...))
	return append(b, sig...)
}

func indexBody(packs []IndexPack, signer []byte) []byte {
	n := 40 + sigSize
	for _, p := range packs {
		n += 36 + len(p.Header)
	}
	b := make([]byte, 0, n)
	b = append(b, indexMagic...)
	if signer == nil {
		signer = make([]byte, 32)
	}
	b = append(b, signer...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(packs)))
	for _, p := range packs {
		b = append(b, p.Pack[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Header)))
		b = append(b, p.Header...)
	}
	return b
}

// IndexSigner checks an index fragment's signature for repoID and returns
// its signer. Whether that signer may list each pack (its headers'
// domains) is the repository's business.
func IndexSigner(buf []byte, repoID [32]byte) (blob.Domain, error) {
	if len(buf) < 40+sigSize || string(buf[:4]) != indexMagic {
		return blob.Domain{}, fmt.Errorf("%w: bad index magic (not a format 2 index fragment)", ErrFormat)
	}
	signer := blob.DomainOf(buf[4:36])
	if signer.IsZero() {
		return blob.Domain{}, fmt.Errorf("index fragment: unsigned")
	}
	body := buf[:len(buf)-sigSize]
	if err := crypto.Verify(signer[:], crypto.SigIndex, append(repoID[:], body...), buf[len(buf)-sigSize:]); err != nil {
		return blob.Domain{}, fmt.Errorf("index fragment: %w", err)
	}
	return signer, nil
}

// ParsedPack is an IndexPack with its header decoded.
type ParsedPack struct {
	IndexPack
	Parsed *Header
}

// ParseIndex decodes an index fragment's plaintext and every header in it.
// Headers are validated as far as possible without the pack's size.
func ParseIndex(buf []byte) ([]ParsedPack, error) {
	if len(buf) < 40+sigSize {
		return nil, fmt.Errorf("%w: index fragment of %d bytes", ErrFormat, len(buf))
	}
	r := &reader{b: buf[:len(buf)-sigSize]}
	if string(r.take(4)) != indexMagic {
		return nil, fmt.Errorf("%w: bad index magic (not a format 2 index fragment)", ErrFormat)
	}
	r.take(32) // signer: IndexSigner
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
