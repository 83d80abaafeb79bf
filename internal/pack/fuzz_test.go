package pack_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/pack"
)

// seedHeader is a real header: two slots, content (data and tree blobs
// alike are recorded as type 1) and manifest entries.
func seedHeader() []byte {
	return (&pack.Header{
		Slots: []pack.Slot{{Kind: pack.SlotOwner, Wrap: 1, Data: []byte("age-encryption.org/v1 ...")}, {Kind: pack.SlotMetadata, Wrap: 2, Data: []byte("meta slot")}},
		Entries: []pack.Entry{
			{Type: blob.Data, ID: blob.ID{1}, Offset: 0, Length: 100},
			{Type: blob.Data, ID: blob.ID{2}, Offset: 100, Length: 50},
			{Type: blob.ManifestPage, ID: blob.ID{3}, Offset: 150, Length: 70, Slot: 1},
		},
	}).Marshal()
}

// FuzzParseHeader: never panics; an accepted header is canonical (it
// re-marshals to the same bytes) and every entry lies inside the data area,
// in order, under a slot of the right kind.
func FuzzParseHeader(f *testing.F) {
	f.Add(seedHeader(), uint64(220))
	f.Add(seedHeader(), uint64(1<<40))
	f.Add((&pack.Header{}).Marshal(), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, dataLen uint64) {
		h, err := pack.ParseHeader(b, dataLen)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Marshal(), b) {
			t.Fatal("accepted header does not re-marshal to its bytes")
		}
		var end uint64
		for _, e := range h.Entries {
			if uint64(e.Offset) < end || uint64(e.Offset)+uint64(e.Length) > min(dataLen, 1<<32-1) || int(e.Slot) >= len(h.Slots) || !e.Type.ValidStored() {
				t.Fatalf("accepted entry %+v (end so far %d, data %d)", e, end, dataLen)
			}
			end = uint64(e.Offset) + uint64(e.Length)
		}
		if h.DataEnd() != end {
			t.Fatalf("DataEnd %d, want %d", h.DataEnd(), end)
		}
	})
}

// FuzzParseTrailer: never panics; an accepted trailer places the header
// inside the file, before the trailer.
func FuzzParseTrailer(f *testing.F) {
	f.Add(append(binary.LittleEndian.AppendUint32(nil, 300), "CRP1"...), int64(4096))
	f.Add(append(binary.LittleEndian.AppendUint32(nil, 0), "CRP1"...), int64(8))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		off, l, err := pack.ParseTrailer(b, size)
		if err != nil {
			return
		}
		if off < 0 || l < 0 || l > pack.MaxHeaderSize || off+int64(l)+pack.TrailerSize != size {
			t.Fatalf("trailer %x in %d bytes: header at %d, %d bytes", b, size, off, l)
		}
	})
}

// FuzzParseIndex: never panics; an accepted index fragment re-marshals to
// its bytes, and every header in it is the one it carries, byte for byte.
func FuzzParseIndex(f *testing.F) {
	f.Add(pack.MarshalIndex([]pack.IndexPack{{Pack: blob.ID{1}, Header: seedHeader()}, {Pack: blob.ID{2}, Header: (&pack.Header{}).Marshal()}}))
	f.Add(pack.MarshalIndex(nil))
	f.Add(pack.SignIndex([]pack.IndexPack{{Pack: blob.ID{1}, Header: seedHeader()}}, [32]byte{1}, ed25519.NewKeyFromSeed(make([]byte, 32))))
	f.Fuzz(func(t *testing.T, b []byte) {
		packs, err := pack.ParseIndex(b)
		if err != nil {
			return
		}
		ips := make([]pack.IndexPack, len(packs))
		for i, p := range packs {
			ips[i] = p.IndexPack
			if !bytes.Equal(p.Parsed.Marshal(), p.Header) {
				t.Fatalf("pack %d: parsed header differs from its bytes", i)
			}
		}
		// Signer and signature are opaque to ParseIndex (IndexSigner checks
		// them): compare everything between them.
		got := pack.MarshalIndex(ips)
		if len(got) != len(b) || !bytes.Equal(got[:4], b[:4]) || !bytes.Equal(got[36:len(got)-64], b[36:len(b)-64]) {
			t.Fatal("accepted index does not re-marshal to its bytes")
		}
		pack.IndexSigner(b, [32]byte{}) // never panics

	})
}
