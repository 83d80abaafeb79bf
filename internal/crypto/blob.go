package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Blob frame flags (first byte of the padded plaintext).
const (
	frameRaw  = 0
	frameZstd = 1
)

const (
	nonceSize = 12
	tagSize   = 16
	frameHdr  = 5 // flag byte + uint32 payload length
	// BlobOverhead is the fixed cost of sealing: nonce and tag.
	BlobOverhead = nonceSize + tagSize
	// MaxBlobPlaintext bounds a blob's uncompressed size when reading.
	MaxBlobPlaintext = 16 << 20
)

// BlobAD is the associated data of a blob's AEAD: everything that names the
// blob, nothing positional, so a repack copies sealed blobs verbatim.
type BlobAD struct {
	Type   uint8
	ID     [32]byte
	SlotID [32]byte
	RepoID [32]byte
}

func (a *BlobAD) bytes() []byte {
	b := make([]byte, 0, 14+1+96)
	b = append(b, "cairn blob v1\x00"...)
	b = append(b, a.Type)
	b = append(b, a.ID[:]...)
	b = append(b, a.SlotID[:]...)
	return append(b, a.RepoID[:]...)
}

// BlobID computes a blob ID: HMAC-SHA-256(K_id, type ‖ plaintext).
func BlobID(kid *[32]byte, typ uint8, plaintext []byte) [32]byte {
	m := hmacPool(kid)
	m.Reset()
	m.Write([]byte{typ})
	m.Write(plaintext)
	var id [32]byte
	m.Sum(id[:0])
	hmacPut(kid, m)
	return id
}

// BlobIDWriter computes a blob ID of content streamed to it rather than
// held in memory: after writes of p1, p2, …, Sum is
// BlobID(kid, typ, p1 ‖ p2 ‖ …).
type BlobIDWriter struct{ m hash.Hash }

// NewBlobIDWriter starts a blob ID of type typ under kid.
func NewBlobIDWriter(kid *[32]byte, typ uint8) *BlobIDWriter {
	m := hmac.New(sha256.New, kid[:])
	m.Write([]byte{typ})
	return &BlobIDWriter{m: m}
}

// Write adds p to the content; it never fails.
func (w *BlobIDWriter) Write(p []byte) (int, error) { return w.m.Write(p) }

// Sum returns the ID of everything written so far.
func (w *BlobIDWriter) Sum() [32]byte {
	var id [32]byte
	w.m.Sum(id[:0])
	return id
}

var (
	hmacMu    sync.Mutex
	hmacPools = map[[32]byte]*sync.Pool{}
)

func hmacPool(k *[32]byte) hash.Hash {
	hmacMu.Lock()
	p, ok := hmacPools[*k]
	if !ok {
		key := *k
		p = &sync.Pool{New: func() any { return hmac.New(sha256.New, key[:]) }}
		hmacPools[*k] = p
	}
	hmacMu.Unlock()
	return p.Get().(hash.Hash)
}

func hmacPut(k *[32]byte, h hash.Hash) {
	hmacMu.Lock()
	p := hmacPools[*k]
	hmacMu.Unlock()
	p.Put(h)
}

// Sealer seals and opens blobs under one session key. Safe for concurrent
// use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for key.
func NewSealer(key *[32]byte) *Sealer {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Sealer{aead: aead}
}

// Compression is how hard Seal compresses a blob (backup --compression).
// The zero value is CompressAuto.
type Compression uint8

const (
	// CompressAuto is zstd's default level (about zstd 3). At every
	// level a blob that does not shrink by 1/32 is stored raw.
	CompressAuto    Compression = iota
	CompressOff                 // stored raw
	CompressFastest             // zstd's fastest level (about zstd 1)
	CompressMax                 // zstd's best compression (about zstd 11): slow
	numCompressions
)

var compressionNames = [numCompressions]string{"auto", "off", "fastest", "max"}

func (c Compression) String() string {
	if c < numCompressions {
		return compressionNames[c]
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// ParseCompression parses auto, default (auto's level, named), fastest,
// max or off.
func ParseCompression(s string) (Compression, error) {
	if s == "default" {
		return CompressAuto, nil
	}
	for c, name := range compressionNames {
		if s == name {
			return Compression(c), nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q (auto, fastest, default, max or off)", s)
}

var (
	encOnce [numCompressions]sync.Once
	encs    [numCompressions]*zstd.Encoder
	decOnce sync.Once
	dec     *zstd.Decoder
)

var zstdLevels = [numCompressions]zstd.EncoderLevel{
	CompressAuto:    zstd.SpeedDefault,
	CompressFastest: zstd.SpeedFastest,
	CompressMax:     zstd.SpeedBestCompression,
}

// encoder returns the shared zstd encoder of level c (not CompressOff).
// EncodeAll is safe for concurrent use; the encoder keeps one state per
// core so compression, the heaviest stage of a backup, runs on every core.
func encoder(c Compression) *zstd.Encoder {
	encOnce[c].Do(func() {
		var err error
		// No zstd checksum: the AEAD authenticates the frame already, and
		// the four bytes it saves per blob are 1% of a small file's blob.
		encs[c], err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevels[c]), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithWindowSize(4<<20), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
		if err != nil {
			panic(err)
		}
	})
	return encs[c]
}

// decoder returns the shared zstd decoder; DecodeAll is safe for
// concurrent use.
func decoder() *zstd.Decoder {
	decOnce.Do(func() {
		var err error
		dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxBlobPlaintext))
		if err != nil {
			panic(err)
		}
	})
	return dec
}

// Seal compresses plaintext with zstd unless that does not save at least
// 1/32 of it, frames and Padmé-pads it, and seals it under a random nonce.
// dst is appended to; the result is nonce ‖ ciphertext ‖ tag. Everything is
// built in dst's spare capacity and encrypted in place, so a caller that
// reuses dst allocates nothing per blob.
func (s *Sealer) Seal(dst []byte, ad *BlobAD, plaintext []byte, compress bool) []byte {
	return s.SealPadded(dst, ad, plaintext, compress, Padme)
}

// SealLevel is Seal at compression level c.
func (s *Sealer) SealLevel(dst []byte, ad *BlobAD, plaintext []byte, c Compression) []byte {
	return s.SealPaddedLevel(dst, ad, plaintext, c, Padme)
}

// SealPadded is Seal with the frame padded to pad(frame length) bytes
// instead of Padmé(frame length); pad must not return less than its
// argument, and must not shrink when its argument grows. Tree blobs use
// PadTree. Open reads any padding.
func (s *Sealer) SealPadded(dst []byte, ad *BlobAD, plaintext []byte, compress bool, pad func(uint64) uint64) []byte {
	c := CompressOff
	if compress {
		c = CompressAuto
	}
	return s.SealPaddedLevel(dst, ad, plaintext, c, pad)
}

// SealPaddedLevel is SealPadded at compression level c.
func (s *Sealer) SealPaddedLevel(dst []byte, ad *BlobAD, plaintext []byte, c Compression, pad func(uint64) uint64) []byte {
	start := len(dst)
	// Room for the largest outcome: a raw frame padded, or zstd's worst-case
	// expansion of incompressible input before it is discarded.
	room := nonceSize + max(int(pad(uint64(frameHdr+len(plaintext)))), frameHdr+len(plaintext)+len(plaintext)/128+1024) + tagSize
	dst = slices.Grow(dst, room)
	dst = dst[:start+nonceSize+frameHdr]
	if _, err := rand.Read(dst[start : start+nonceSize]); err != nil {
		panic(err)
	}
	fs := start + nonceSize // frame start
	flag := byte(frameRaw)
	n := len(plaintext)
	if c != CompressOff && c < numCompressions && len(plaintext) > 64 {
		z := encoder(c).EncodeAll(plaintext, dst[:fs+frameHdr])
		if cl := len(z) - fs - frameHdr; cl < len(plaintext)-len(plaintext)/32 && &z[0] == &dst[0] {
			flag, n = frameZstd, cl
		}
	}
	if flag == frameRaw {
		copy(dst[fs+frameHdr:fs+frameHdr+n], plaintext)
	}
	padded := max(int(pad(uint64(frameHdr+n))), frameHdr+n)
	dst = dst[:fs+padded]
	clear(dst[fs+frameHdr+n:])
	dst[fs] = flag
	binary.LittleEndian.PutUint32(dst[fs+1:fs+5], uint32(n))
	frame := dst[fs:]
	s.aead.Seal(frame[:0], dst[start:fs], frame, ad.bytes())
	return dst[:fs+padded+tagSize]
}

// Open authenticates and decrypts a sealed blob and returns its plaintext.
// It does not check the blob ID; callers re-hash with BlobID (R6).
func (s *Sealer) Open(ad *BlobAD, sealed []byte) ([]byte, error) {
	return s.open(nil, ad, sealed, false)
}

// OpenInto is Open for a caller that reuses memory, as a restore of a
// large file does: it decrypts sealed in place (overwriting it) and
// decompresses into dst's capacity. The plaintext lies in sealed (a blob
// stored uncompressed) or, with inDst set, in dst's memory or in a larger
// buffer made for it, which the caller may keep as its next dst. It is
// valid until the memory it lies in is reused.
func (s *Sealer) OpenInto(dst []byte, ad *BlobAD, sealed []byte) (plain []byte, inDst bool, err error) {
	plain, err = s.open(dst, ad, sealed, true)
	if err != nil {
		return nil, false, err
	}
	return plain, sealed[nonceSize] == frameZstd, nil
}

func (s *Sealer) open(dst []byte, ad *BlobAD, sealed []byte, inPlace bool) ([]byte, error) {
	if len(sealed) < BlobOverhead+frameHdr {
		return nil, fmt.Errorf("%w: sealed blob of %d bytes is too short", ErrDecrypt, len(sealed))
	}
	var out []byte
	if inPlace {
		out = sealed[nonceSize:nonceSize]
	}
	frame, err := s.aead.Open(out, sealed[:nonceSize], sealed[nonceSize:], ad.bytes())
	if err != nil {
		return nil, ErrDecrypt
	}
	n := binary.LittleEndian.Uint32(frame[1:5])
	if uint64(n) > uint64(len(frame)-frameHdr) {
		return nil, fmt.Errorf("%w: blob frame length %d exceeds %d", ErrDecrypt, n, len(frame)-frameHdr)
	}
	payload := frame[frameHdr : frameHdr+int(n)]
	switch frame[0] {
	case frameRaw:
		return payload, nil
	case frameZstd:
		d := decoder()
		out, err := d.DecodeAll(payload, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("decompress blob: %w", err)
		}
		if len(out) > MaxBlobPlaintext {
			return nil, errors.New("decompressed blob exceeds the size limit")
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown blob frame flag %d", ErrDecrypt, frame[0])
}
