package pack

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
)

// ErrFormat reports a malformed pack, header or index fragment.
var ErrFormat = errors.New("malformed pack data")

// Slot kinds: who can unwrap the session key.
const (
	SlotOwner    uint8 = 1 // content key wrapped to the owner identity
	SlotMetadata uint8 = 2 // metadata key wrapped to the metadata identity
)

// Limits enforced when decoding.
const (
	MaxSlots      = 1 << 12
	MaxSlotSize   = 16 << 10
	MaxEntries    = 1 << 20
	MaxBlobSize   = 32 << 20 // sealed
	MaxHeaderSize = 64 << 20
	headerMagic   = "CRH3"
	sigSize       = ed25519.SignatureSize
	// entrySize is an encoded entry: type u8, ID, length u32, slot u16.
	entrySize = 1 + 32 + 4 + 2
)

// Slot is a wrapped session key.
type Slot struct {
	Kind uint8
	Wrap uint8 // wrap algorithm (crypto.WrapHybrid, crypto.WrapX25519)
	Data []byte
}

// ID is the slot's identity: SHA-256 of its wrapped bytes. It is bound into
// each blob's AEAD.
func (s *Slot) ID() [32]byte { return sha256.Sum256(s.Data) }

// Entry locates one sealed blob in a pack.
type Entry struct {
	Type   blob.Type // the stored type: Data (data or tree) or ManifestPage
	ID     blob.ID
	Offset uint32
	Length uint32 // sealed length
	Slot   uint32 // index into Header.Slots
}

// Header is a pack's plaintext header. Domain is the provenance domain of
// every blob in the pack (R23): the uploader's signing key, or, for a
// coordinator's repack, the domain the blobs came from. Signer signed the
// header (Sign); readers accept a header only from a signer allowed to
// write into Domain, which is the repository's business, not the format's.
type Header struct {
	Domain  blob.Domain
	Signer  [32]byte
	Slots   []Slot
	Entries []Entry // in offset order
	Sig     [sigSize]byte
}

// DataEnd returns the end of the last blob.
func (h *Header) DataEnd() uint64 {
	var end uint64
	for _, e := range h.Entries {
		if x := uint64(e.Offset) + uint64(e.Length); x > end {
			end = x
		}
	}
	return end
}

// Marshal encodes the header:
//
//	"CRH3" | domain [32] | signer [32] |
//	slots u32 | per slot: kind u8, wrap u8, len u32, data |
//	entries u32 | per entry: type u8, id [32], length u32, slot u16 |
//	signature [64]
//
// Offsets are not encoded: blobs lie back to back from the start of the
// pack, as a Writer lays them out, so an entry starts where the one before
// it ends. Marshal ignores Entry.Offset; ParseHeader derives it. Entries
// have a fixed size, so the header's length says how many entries there
// are and nothing about their sizes.
func (h *Header) Marshal() []byte {
	return append(h.body(), h.Sig[:]...)
}

// body is the signed part of the encoding: everything but the signature.
func (h *Header) body() []byte {
	n := 12 + 64 + sigSize
	for _, s := range h.Slots {
		n += 6 + len(s.Data)
	}
	n += len(h.Entries) * entrySize
	b := make([]byte, 0, n)
	b = append(b, headerMagic...)
	b = append(b, h.Domain[:]...)
	b = append(b, h.Signer[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h.Slots)))
	for _, s := range h.Slots {
		b = append(b, s.Kind, s.Wrap)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Data)))
		b = append(b, s.Data...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h.Entries)))
	for _, e := range h.Entries {
		b = append(b, byte(e.Type))
		b = append(b, e.ID[:]...)
		b = binary.LittleEndian.AppendUint32(b, e.Length)
		b = binary.LittleEndian.AppendUint16(b, uint16(e.Slot))
	}
	return b
}

// Sign sets Signer to priv's public key and signs the header for the
// repository repoID (context crypto.SigPackHeader, message repo ID ‖ body).
func (h *Header) Sign(repoID [32]byte, priv ed25519.PrivateKey) {
	copy(h.Signer[:], priv.Public().(ed25519.PublicKey))
	copy(h.Sig[:], crypto.Sign(priv, crypto.SigPackHeader, append(repoID[:], h.body()...)))
}

// VerifySignature checks that Signer signed the header for repoID. It says
// nothing about whether Signer may write into Domain.
func (h *Header) VerifySignature(repoID [32]byte) error {
	if h.Signer == [32]byte{} {
		return fmt.Errorf("pack header: unsigned")
	}
	if err := crypto.Verify(h.Signer[:], crypto.SigPackHeader, append(repoID[:], h.body()...), h.Sig[:]); err != nil {
		return fmt.Errorf("pack header: %w", err)
	}
	return nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated", ErrFormat)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// ParseHeader decodes and validates a header. dataLen is the length of the
// pack's blob area (everything before the padding and sealed header); every
// entry must lie inside it, entries must not overlap, and every slot index
// must be valid.
func ParseHeader(buf []byte, dataLen uint64) (*Header, error) {
	if len(buf) > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrFormat, len(buf))
	}
	r := &reader{b: buf}
	if string(r.take(4)) != headerMagic {
		return nil, fmt.Errorf("%w: bad header magic (not a format 2 pack header)", ErrFormat)
	}
	var dom blob.Domain
	var signer [32]byte
	copy(dom[:], r.take(32))
	copy(signer[:], r.take(32))
	ns := r.u32()
	if ns > MaxSlots {
		return nil, fmt.Errorf("%w: %d key slots", ErrFormat, ns)
	}
	h := &Header{Domain: dom, Signer: signer, Slots: make([]Slot, 0, min(ns, 64))}
	for i := uint32(0); i < ns && r.err == nil; i++ {
		kind, wrap := r.u8(), r.u8()
		l := r.u32()
		if l > MaxSlotSize {
			return nil, fmt.Errorf("%w: key slot of %d bytes", ErrFormat, l)
		}
		d := r.take(int(l))
		if kind != SlotOwner && kind != SlotMetadata {
			return nil, fmt.Errorf("%w: unknown slot kind %d", ErrFormat, kind)
		}
		h.Slots = append(h.Slots, Slot{Kind: kind, Wrap: wrap, Data: append([]byte(nil), d...)})
	}
	ne := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if ne > MaxEntries || uint64(ne)*entrySize > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrFormat, ne, len(r.b))
	}
	// Offsets and lengths are uint32: nothing past 4 GiB is addressable, and
	// bounding every entry's end there keeps end arithmetic from wrapping.
	dataLen = min(dataLen, math.MaxUint32)
	h.Entries = make([]Entry, ne)
	var end uint64 // of the entry before
	for i := range h.Entries {
		e := &h.Entries[i]
		e.Type = blob.Type(r.u8())
		copy(e.ID[:], r.take(32))
		e.Length, e.Slot = r.u32(), uint32(r.u16())
		if r.err != nil {
			return nil, r.err
		}
		e.Offset = uint32(end) // end ≤ dataLen ≤ 2^32−1: checked for the entry before
		if !e.Type.ValidStored() {
			// A header records content (data and tree blobs alike) or
			// manifest pages, nothing finer: type 2 (tree) never appears.
			return nil, fmt.Errorf("%w: entry %d has type %d (a header records only content, 1, and manifest pages, 3)", ErrFormat, i, e.Type)
		}
		if int(e.Slot) >= len(h.Slots) {
			return nil, fmt.Errorf("%w: entry %d names slot %d of %d", ErrFormat, i, e.Slot, len(h.Slots))
		}
		if e.Length == 0 || e.Length > MaxBlobSize || uint64(e.Offset)+uint64(e.Length) > dataLen {
			return nil, fmt.Errorf("%w: entry %d (offset %d, length %d) outside the pack's %d data bytes", ErrFormat, i, e.Offset, e.Length, dataLen)
		}
		end = uint64(e.Offset) + uint64(e.Length)
		wantKind := SlotOwner
		if e.Type == blob.ManifestPage {
			wantKind = SlotMetadata
		}
		if h.Slots[e.Slot].Kind != wantKind {
			return nil, fmt.Errorf("%w: %s blob %d under a slot of kind %d", ErrFormat, e.Type, i, h.Slots[e.Slot].Kind)
		}
	}
	copy(h.Sig[:], r.take(sigSize))
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after header", ErrFormat, len(r.b))
	}
	return h, nil
}

// Sort puts entries in offset order.
func (h *Header) Sort() {
	sort.Slice(h.Entries, func(i, j int) bool { return h.Entries[i].Offset < h.Entries[j].Offset })
}
