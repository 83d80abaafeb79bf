package pack

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
)

const (
	trailerMagic = "CRP1"
	// TrailerSize is the fixed tail of every pack: header length and magic.
	TrailerSize = 8
)

// Writer assembles one pack: in memory (NewWriter, NewWriterTarget,
// NewWriterBuffer) or streamed to an io.Writer (NewStreamWriter), with
// only the header kept in memory.
type Writer struct {
	target  int // packs with fewer blob bytes are padded to a size class
	data    []byte
	hdr     Header
	slotIdx map[[32]byte]uint32

	sink io.Writer // streaming: blobs go here, data stays empty
	n    int       // blob bytes so far
	err  error     // streaming: the first write error, sticky

	repoID [32]byte
	signer ed25519.PrivateKey // signs the header in Finish (SetSigner)
}

// SetSigner makes Finish sign the header with priv for repository repoID,
// as a pack of domain (R23): the signer's own key for an upload, the
// blobs' source domain for a coordinator's repack.
func (w *Writer) SetSigner(repoID [32]byte, domain blob.Domain, priv ed25519.PrivateKey) {
	w.repoID, w.hdr.Domain, w.signer = repoID, domain, priv
}

// NewWriter returns an empty pack writer with room for sizeHint bytes. Its
// packs are always padded to a Padmé size class.
func NewWriter(sizeHint int) *Writer {
	return &Writer{data: make([]byte, 0, sizeHint), slotIdx: map[[32]byte]uint32{}}
}

// NewWriterTarget returns a pack writer for packs of about target bytes:
// a pack that reaches the target is left as it is (its size already says
// only "a full pack"); a smaller one is padded to a Padmé size class.
func NewWriterTarget(target int) *Writer {
	return NewWriterBuffer(target, make([]byte, 0, BufferSize(target)))
}

// BufferSize is the capacity a pack of about target bytes needs: a full
// pack, the blob that crosses the target (chunks are at most a few MiB)
// and the sealed header, so Finish never reallocates.
func BufferSize(target int) int { return target + 6<<20 }

// NewWriterBuffer is NewWriterTarget writing into buf (its length is
// ignored), so a caller can reuse pack buffers: the slice Finish returns
// shares buf's memory.
func NewWriterBuffer(target int, buf []byte) *Writer {
	return &Writer{target: target, data: buf[:0], slotIdx: map[[32]byte]uint32{}}
}

// NewStreamWriter returns a pack writer for packs of about target bytes
// (as NewWriterTarget) that writes each blob to w as it is added; Finish
// writes the padding, sealed header and trailer to w. A write error is
// kept: later Adds do nothing, and Err and Finish return it.
func NewStreamWriter(target int, w io.Writer) *Writer {
	return &Writer{target: target, sink: w, slotIdx: map[[32]byte]uint32{}}
}

// Err is the first error writing to a streaming writer's sink.
func (w *Writer) Err() error { return w.err }

func (w *Writer) write(p []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.sink.Write(p); err != nil {
		w.err = err
	}
}

// AddSlot adds a key slot (once per slot ID) and returns its index.
func (w *Writer) AddSlot(s Slot) uint32 {
	id := s.ID()
	if i, ok := w.slotIdx[id]; ok {
		return i
	}
	i := uint32(len(w.hdr.Slots))
	w.hdr.Slots = append(w.hdr.Slots, s)
	w.slotIdx[id] = i
	return i
}

// Add appends a sealed blob under slot (an index from AddSlot). The header
// records t's stored type (blob.Type.Stored): a tree is recorded as content.
func (w *Writer) Add(t blob.Type, id blob.ID, sealed []byte, slot uint32) Entry {
	e := Entry{Type: t.Stored(), ID: id, Offset: uint32(w.n), Length: uint32(len(sealed)), Slot: slot}
	if w.sink != nil {
		w.write(sealed)
	} else {
		w.data = append(w.data, sealed...)
	}
	w.n += len(sealed)
	w.hdr.Entries = append(w.hdr.Entries, e)
	return e
}

// Size is the number of blob bytes so far.
func (w *Writer) Size() int { return w.n }

// Count is the number of blobs so far.
func (w *Writer) Count() int { return len(w.hdr.Entries) }

// Finish seals the header to the metadata recipient, pads a pack below its
// target size to a Padmé size class with random bytes, and returns the pack file and its
// plaintext header. A streaming writer returns no bytes: they went to its
// sink.
func (w *Writer) Finish(meta age.Recipient) ([]byte, *Header, error) {
	if w.err != nil {
		return nil, nil, w.err
	}
	if w.signer != nil {
		w.hdr.Sign(w.repoID, w.signer)
	}
	hdrPlain := w.hdr.Marshal()
	sealed, err := crypto.Seal(hdrPlain, meta)
	if err != nil {
		return nil, nil, fmt.Errorf("seal pack header: %w", err)
	}
	total := uint64(w.n + len(sealed) + TrailerSize)
	var pad uint64
	if w.target == 0 || w.n < w.target {
		pad = crypto.Padme(total) - total
	}
	if w.sink != nil {
		tail := make([]byte, int(pad), int(pad)+len(sealed)+TrailerSize)
		if _, err := rand.Read(tail); err != nil {
			return nil, nil, err
		}
		tail = append(tail, sealed...)
		tail = binary.LittleEndian.AppendUint32(tail, uint32(len(sealed)))
		tail = append(tail, trailerMagic...)
		if w.write(tail); w.err != nil {
			return nil, nil, w.err
		}
		h := w.hdr
		return nil, &h, nil
	}
	out := w.data
	if need := int(total + pad); cap(out) < need {
		out = append(make([]byte, 0, need), out...)
	}
	start := len(out)
	out = out[:start+int(pad)]
	if _, err := rand.Read(out[start:]); err != nil {
		return nil, nil, err
	}
	out = append(out, sealed...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(sealed)))
	out = append(out, trailerMagic...)
	h := w.hdr
	return out, &h, nil
}

// ParseTrailer reads the last TrailerSize bytes of a pack of fileSize bytes
// and returns where the sealed header is.
func ParseTrailer(trailer []byte, fileSize int64) (hdrOffset int64, hdrLen int, err error) {
	if len(trailer) != TrailerSize || string(trailer[4:]) != trailerMagic {
		return 0, 0, fmt.Errorf("%w: not a cairn pack (bad trailer)", ErrFormat)
	}
	l := int64(binary.LittleEndian.Uint32(trailer[:4]))
	if l > MaxHeaderSize || l+TrailerSize > fileSize {
		return 0, 0, fmt.Errorf("%w: header length %d does not fit a pack of %d bytes", ErrFormat, l, fileSize)
	}
	return fileSize - TrailerSize - l, int(l), nil
}

// OpenHeader decrypts a sealed pack header with the metadata identity and
// validates it against the pack's data area.
func OpenHeader(sealed []byte, dataLen int64, meta age.Identity) (*Header, []byte, error) {
	plain, err := crypto.Open(sealed, meta, crypto.ErrNeedsMetadata)
	if err != nil {
		return nil, nil, fmt.Errorf("pack header: %w", err)
	}
	h, err := ParseHeader(plain, uint64(dataLen))
	if err != nil {
		return nil, nil, err
	}
	return h, plain, nil
}
