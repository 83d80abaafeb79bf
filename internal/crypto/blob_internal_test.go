package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
)

// sealFrame seals an arbitrary frame, bypassing Seal's framing, so tests and
// the fuzzer reach the code that runs after authentication: a writer (or
// anyone holding the session key) can produce any frame.
func sealFrame(s *Sealer, ad *BlobAD, frame []byte) []byte {
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, frame, ad.bytes())
}

func frame(flag byte, payload []byte, pad int) []byte {
	f := []byte{flag, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(f[1:], uint32(len(payload)))
	f = append(f, payload...)
	return append(f, make([]byte, pad)...)
}

func TestOpenHostileFrames(t *testing.T) {
	var k [32]byte
	s := NewSealer(&k)
	ad := &BlobAD{Type: 1}
	e := encoder(CompressAuto)
	bomb := e.EncodeAll(make([]byte, MaxBlobPlaintext+1), nil)

	cases := map[string]struct {
		frame []byte
		ok    bool
		want  []byte
	}{
		"raw":             {frame(frameRaw, []byte("abc"), 3), true, []byte("abc")},
		"raw empty":       {frame(frameRaw, nil, 0), true, []byte{}},
		"length past end": {func() []byte { f := frame(frameRaw, []byte("abc"), 0); f[1] = 4; return f }(), false, nil},
		"length max u32": {func() []byte {
			f := frame(frameRaw, nil, 8)
			binary.LittleEndian.PutUint32(f[1:], 0xffffffff)
			return f
		}(), false, nil},
		"unknown flag":      {frame(2, []byte("abc"), 0), false, nil},
		"zstd garbage":      {frame(frameZstd, []byte("not zstd at all"), 0), false, nil},
		"zstd bomb":         {frame(frameZstd, bomb, 0), false, nil},
		"short frame":       {[]byte{0, 0, 0}, false, nil},
		"zstd ok with pad":  {frame(frameZstd, e.EncodeAll([]byte("hello hello hello"), nil), 7), true, []byte("hello hello hello")},
		"zstd empty output": {frame(frameZstd, e.EncodeAll(nil, nil), 0), true, nil},
	}
	for name, c := range cases {
		got, err := s.Open(ad, sealFrame(s, ad, c.frame))
		if c.ok {
			if err != nil || !bytes.Equal(got, c.want) {
				t.Errorf("%s: Open = %q, %v", name, got, err)
			}
		} else if err == nil {
			t.Errorf("%s: Open succeeded (%d bytes)", name, len(got))
		}
	}
	if len(bomb) > 4096 {
		t.Fatalf("bomb of %d bytes is not a bomb", len(bomb))
	}
}

// FuzzSealerOpen: Open never panics, neither on arbitrary sealed bytes nor
// on arbitrary frames that authenticate; whatever it returns is bounded.
func FuzzSealerOpen(f *testing.F) {
	var k [32]byte
	s := NewSealer(&k)
	ad := &BlobAD{Type: 1} // a stored type: content (docs/format.md §8)
	e := encoder(CompressAuto)
	f.Add(s.Seal(nil, ad, []byte("plain"), false), false)
	f.Add(s.SealPadded(nil, ad, []byte("CRT1 a small tree"), true, PadTree), false)
	f.Add(s.Seal(nil, ad, bytes.Repeat([]byte("compressible "), 100), true), false)
	f.Add(frame(frameRaw, []byte("abc"), 2), true)
	f.Add(frame(frameZstd, e.EncodeAll(bytes.Repeat([]byte("z"), 1000), nil), 0), true)
	f.Fuzz(func(t *testing.T, b []byte, asFrame bool) {
		in := b
		if asFrame {
			in = sealFrame(s, ad, b)
		}
		out, err := s.Open(ad, in)
		if err != nil {
			if !asFrame && !errors.Is(err, ErrDecrypt) {
				t.Fatalf("unauthenticated input: err = %v, want ErrDecrypt", err)
			}
			return
		}
		if len(out) > MaxBlobPlaintext {
			t.Fatalf("Open returned %d bytes", len(out))
		}
		if asFrame && b[0] == frameRaw && !bytes.Equal(out, b[frameHdr:frameHdr+len(out)]) {
			t.Fatal("raw frame payload differs")
		}
	})
}
