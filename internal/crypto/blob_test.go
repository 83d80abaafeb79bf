package crypto_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
)

func testAD() *crypto.BlobAD {
	ad := &crypto.BlobAD{Type: uint8(blob.Data)}
	for i := range 32 {
		ad.ID[i], ad.SlotID[i], ad.RepoID[i] = byte(i), byte(i+32), byte(i+64)
	}
	return ad
}

func testSealer(b byte) *crypto.Sealer {
	var k [32]byte
	for i := range k {
		k[i] = b
	}
	return crypto.NewSealer(&k)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestBlobRoundTrip(t *testing.T) {
	s := testSealer(1)
	ad := testAD()
	cases := map[string][]byte{
		"empty":      {},
		"one byte":   {42},
		"64 zeros":   make([]byte, 64),
		"65 zeros":   make([]byte, 65),
		"text":       bytes.Repeat([]byte("the quick brown fox "), 500),
		"random 1k":  randomBytes(1000),
		"random 1M":  randomBytes(1 << 20),
		"zeros 4MiB": make([]byte, 4<<20),
	}
	for name, pt := range cases {
		for _, compress := range []bool{true, false} {
			sealed := s.Seal([]byte("prefix"), ad, pt, compress)
			if !bytes.HasPrefix(sealed, []byte("prefix")) {
				t.Fatalf("%s: Seal did not append to dst", name)
			}
			sealed = sealed[len("prefix"):]
			got, err := s.Open(ad, sealed)
			if err != nil {
				t.Fatalf("%s (compress %v): %v", name, compress, err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("%s (compress %v): plaintext differs", name, compress)
			}
		}
	}
}

// TestBlobSizes: a raw blob's stored length is nonce + Padmé(5 + len) + tag;
// compression is skipped for random data and used for compressible data.
func TestBlobSizes(t *testing.T) {
	s := testSealer(1)
	ad := testAD()
	for _, n := range []int{0, 1, 10, 64, 65, 1000, 4096, 1 << 20} {
		pt := randomBytes(n)
		sealed := s.Seal(nil, ad, pt, true)
		if want := crypto.BlobOverhead + int(crypto.Padme(uint64(5+n))); len(sealed) != want {
			t.Errorf("random %d bytes: sealed %d, want %d (compression must be skipped)", n, len(sealed), want)
		}
	}
	zeros := make([]byte, 1<<20)
	if sealed := s.Seal(nil, ad, zeros, true); len(sealed) > 4096 {
		t.Errorf("1 MiB of zeros sealed to %d bytes: not compressed", len(sealed))
	}
	if sealed := s.Seal(nil, ad, zeros, false); len(sealed) != crypto.BlobOverhead+int(crypto.Padme(5+1<<20)) {
		t.Errorf("compress=false: sealed %d bytes", len(sealed))
	}
	// Compression must save at least 1/32: data that compresses by less is
	// stored raw. 3/4 random + 1/4 zeros saves ~25%; 31/32 random + 1/32
	// zeros saves just under 1/32.
	barely := append(randomBytes(31*1024), make([]byte, 1024-60)...)
	if sealed := s.Seal(nil, ad, barely, true); len(sealed) != crypto.BlobOverhead+int(crypto.Padme(uint64(5+len(barely)))) {
		t.Errorf("data saving < 1/32 was compressed (%d → %d)", len(barely), len(sealed))
	}
	worth := append(randomBytes(24*1024), make([]byte, 8*1024)...)
	if sealed := s.Seal(nil, ad, worth, true); len(sealed) >= len(worth) {
		t.Errorf("data saving 1/4 was not compressed (%d → %d)", len(worth), len(sealed))
	}
}

func TestBlobNonceFresh(t *testing.T) {
	s := testSealer(1)
	a, b := s.Seal(nil, testAD(), []byte("same"), true), s.Seal(nil, testAD(), []byte("same"), true)
	if bytes.Equal(a[:12], b[:12]) || bytes.Equal(a, b) {
		t.Fatal("two seals share a nonce")
	}
}

// TestBlobTamper: flipping any bit of any byte of a sealed blob, truncating
// it or extending it makes Open fail with ErrDecrypt.
func TestBlobTamper(t *testing.T) {
	s := testSealer(1)
	ad := testAD()
	sealed := s.Seal(nil, ad, bytes.Repeat([]byte("abc"), 100), true)
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(sealed)
			b[i] ^= bit
			if _, err := s.Open(ad, b); !errors.Is(err, crypto.ErrDecrypt) {
				t.Fatalf("flip %#x at %d: err = %v", bit, i, err)
			}
		}
	}
	for _, b := range [][]byte{sealed[:len(sealed)-1], sealed[1:], append(bytes.Clone(sealed), 0), nil, sealed[:32]} {
		if _, err := s.Open(ad, b); !errors.Is(err, crypto.ErrDecrypt) {
			t.Fatalf("%d bytes: err = %v", len(b), err)
		}
	}
}

// TestBlobAD: a blob opened under a different type, ID, key slot or
// repository, or with another session key, fails.
func TestBlobAD(t *testing.T) {
	s := testSealer(1)
	ad := testAD()
	sealed := s.Seal(nil, ad, []byte("content"), true)
	mods := map[string]func(a *crypto.BlobAD){
		"type tree":     func(a *crypto.BlobAD) { a.Type = uint8(blob.Tree) },
		"type manifest": func(a *crypto.BlobAD) { a.Type = uint8(blob.ManifestPage) },
		"id":            func(a *crypto.BlobAD) { a.ID[31] ^= 1 },
		"slot":          func(a *crypto.BlobAD) { a.SlotID[0] ^= 1 },
		"repo":          func(a *crypto.BlobAD) { a.RepoID[17] ^= 1 },
	}
	for name, mod := range mods {
		other := *ad
		mod(&other)
		if _, err := s.Open(&other, sealed); !errors.Is(err, crypto.ErrDecrypt) {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
	}
	if _, err := testSealer(2).Open(ad, sealed); !errors.Is(err, crypto.ErrDecrypt) {
		t.Errorf("other session key: err = %v", err)
	}
	if _, err := s.Open(ad, sealed); err != nil {
		t.Fatal(err)
	}
}

func TestBlobID(t *testing.T) {
	var kid [32]byte
	copy(kid[:], vectorSecret())
	pt := []byte("hello, cairn")
	data := crypto.BlobID(&kid, uint8(blob.Data), pt)
	tree := crypto.BlobID(&kid, uint8(blob.Tree), pt)
	if data == tree {
		t.Fatal("BlobID does not depend on the type")
	}
	m := hmac.New(sha256.New, kid[:])
	m.Write([]byte{1})
	m.Write(pt)
	if !bytes.Equal(m.Sum(nil), data[:]) {
		t.Fatal("BlobID is not HMAC-SHA-256(K_id, type ‖ plaintext)")
	}
	other := kid
	other[0] ^= 1
	if crypto.BlobID(&other, uint8(blob.Data), pt) == data {
		t.Fatal("BlobID does not depend on K_id")
	}
	// Pooled HMAC state must not leak between calls or keys.
	for range 3 {
		if crypto.BlobID(&kid, uint8(blob.Data), pt) != data {
			t.Fatal("BlobID is not deterministic")
		}
		crypto.BlobID(&other, uint8(blob.Data), []byte("x"))
	}
	// Vector for docs/format.md: K_id = 0x00..0x1f, type 1, "hello, cairn".
	if got := hex.EncodeToString(data[:]); got != "16938ffe1a9e8827816ff736cbc16e45aba077b8559567f05890f6bd12e27130" {
		t.Errorf("BlobID vector = %s", got)
	}
}

// TestBlobIDWriter: an ID computed from streamed pieces is the ID of their
// concatenation, and a second Sum sees the same content.
func TestBlobIDWriter(t *testing.T) {
	var kid [32]byte
	copy(kid[:], vectorSecret())
	w := crypto.NewBlobIDWriter(&kid, uint8(blob.Data))
	w.Write([]byte("hello, "))
	w.Write([]byte("cairn"))
	if got, want := w.Sum(), crypto.BlobID(&kid, uint8(blob.Data), []byte("hello, cairn")); got != want {
		t.Fatalf("streamed ID %x, want %x", got, want)
	}
	if w.Sum() != crypto.BlobID(&kid, uint8(blob.Data), []byte("hello, cairn")) {
		t.Fatal("a second Sum differs")
	}
	if crypto.NewBlobIDWriter(&kid, uint8(blob.Tree)).Sum() != crypto.BlobID(&kid, uint8(blob.Tree), nil) {
		t.Fatal("empty streamed tree ID differs")
	}
}

func TestPadmeTable(t *testing.T) {
	table := []struct{ in, want uint64 }{
		{0, 0}, {1, 1}, {2, 2}, {3, 3}, {7, 7}, {8, 8}, {9, 10}, {15, 16}, {16, 16}, {17, 18},
		{33, 36}, {100, 104}, {129, 144}, {257, 272}, {1000, 1024}, {1025, 1088},
		{4096, 4096}, {4097, 4352}, {1<<20 + 1, 1<<20 + 1<<15}, {16 << 20, 16 << 20},
		{16<<20 + 1, 16<<20 + 1<<19}, {1<<32 + 1, 1<<32 + 1<<26},
	}
	for _, c := range table {
		if got := crypto.Padme(c.in); got != c.want {
			t.Errorf("Padme(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestPadmeBound: Padmé never shrinks, is idempotent and monotonic, and
// adds at most 12% (the worst case is 129 → 144, 11.6%).
func TestPadmeBound(t *testing.T) {
	var prev uint64
	check := func(l uint64) {
		p := crypto.Padme(l)
		if p < l || crypto.Padme(p) != p || p < prev {
			t.Fatalf("Padme(%d) = %d (prev %d, Padme(p) = %d)", l, p, prev, crypto.Padme(p))
		}
		if float64(p-l) > 0.12*float64(l) {
			t.Fatalf("Padme(%d) = %d: %.1f%% overhead", l, p, 100*float64(p-l)/float64(l))
		}
		prev = p
	}
	for l := uint64(0); l <= 1<<20; l++ {
		check(l)
	}
	prev = 0
	for e := 21; e < 63; e++ {
		for _, d := range []uint64{0, 1, 2, 1000} {
			prev = 0
			check(1<<e + d)
		}
	}
}

// TestPadTree: tree frames are padded to at least TreePadMin, then to a
// power of two up to 16 KiB, then by Padmé; never shrinking and monotonic,
// and a tree sealed with it opens and is exactly that long.
func TestPadTree(t *testing.T) {
	for _, c := range []struct{ in, want uint64 }{
		{0, 512}, {96, 512}, {160, 512}, {304, 512}, {512, 512}, {513, 1024},
		{544, 1024}, {4096, 4096}, {4097, 8192}, {16 << 10, 16 << 10}, {16<<10 + 1, 17 << 10},
	} {
		if got := crypto.PadTree(c.in); got != c.want {
			t.Errorf("PadTree(%d) = %d, want %d", c.in, got, c.want)
		}
	}
	var prev uint64
	for l := uint64(0); l <= 1<<20; l++ {
		p := crypto.PadTree(l)
		if p < l || p < prev {
			t.Fatalf("PadTree(%d) = %d (prev %d)", l, p, prev)
		}
		prev = p
	}
	s := testSealer(1)
	ad := testAD()
	for _, n := range []int{1, 100, 600, 5000} {
		pt := make([]byte, n)
		rand.Read(pt)
		sealed := s.SealPadded(nil, ad, pt, true, crypto.PadTree)
		if want := crypto.BlobOverhead + int(crypto.PadTree(uint64(5+n))); len(sealed) != want {
			t.Errorf("%d-byte tree sealed to %d bytes, want %d", n, len(sealed), want)
		}
		got, err := s.Open(ad, sealed)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d-byte tree: %v", n, err)
		}
	}
}

// TestOpenInto: opening in place gives the same plaintext as Open, in dst's
// memory for a compressed blob and in the sealed buffer for a raw one, and
// refuses a tampered blob like Open.
func TestOpenInto(t *testing.T) {
	s := testSealer(1)
	ad := testAD()
	dst := make([]byte, 0, 8<<20)
	for name, c := range map[string]struct {
		pt     []byte
		inDst  bool
		reseal bool
	}{
		"text (compressed)": {pt: bytes.Repeat([]byte("the quick brown fox "), 50_000), inDst: true},
		"random (raw)":      {pt: randomBytes(1 << 20)},
		"empty":             {pt: []byte{}},
	} {
		sealed := s.Seal(nil, ad, c.pt, true)
		got, inDst, err := s.OpenInto(dst, ad, bytes.Clone(sealed))
		if err != nil || !bytes.Equal(got, c.pt) {
			t.Fatalf("%s: %v, plaintext equal %v", name, err, bytes.Equal(got, c.pt))
		}
		if inDst != c.inDst {
			t.Fatalf("%s: inDst %v, want %v", name, inDst, c.inDst)
		}
		if inDst && len(got) > 0 && &got[0] != &dst[:1][0] {
			t.Fatalf("%s: a plaintext that fits dst was not decompressed into it", name)
		}
		bad := bytes.Clone(sealed)
		bad[len(bad)/2] ^= 1
		if _, _, err := s.OpenInto(dst, ad, bad); !errors.Is(err, crypto.ErrDecrypt) {
			t.Fatalf("%s: tampered blob: %v", name, err)
		}
	}
}

// TestSealLevels seals source code at every level: each opens to the
// plaintext, off stores it raw (larger than any other level), max no
// larger than auto and auto no larger than fastest; random bytes are
// stored raw at every level.
func TestSealLevels(t *testing.T) {
	s := testSealer(1)
	ad := testAD()
	// Source code: this package's own, as it is at this commit.
	var text bytes.Buffer
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no source files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(b)
	}
	size := map[crypto.Compression]int{}
	for _, c := range []crypto.Compression{crypto.CompressAuto, crypto.CompressOff, crypto.CompressFastest, crypto.CompressMax} {
		sealed := s.SealLevel(nil, ad, text.Bytes(), c)
		got, err := s.Open(ad, sealed)
		if err != nil || !bytes.Equal(got, text.Bytes()) {
			t.Fatalf("%v: does not open to the plaintext: %v", c, err)
		}
		size[c] = len(sealed)
		random := randomBytes(100 << 10)
		if sealed := s.SealLevel(nil, ad, random, c); len(sealed) != crypto.BlobOverhead+int(crypto.Padme(uint64(5+len(random)))) {
			t.Fatalf("%v: random bytes sealed to %d bytes, not stored raw", c, len(sealed))
		}
	}
	t.Logf("sealed sizes of %d bytes of text: %v", text.Len(), size)
	if !(size[crypto.CompressOff] > size[crypto.CompressFastest] && size[crypto.CompressFastest] >= size[crypto.CompressAuto] && size[crypto.CompressAuto] >= size[crypto.CompressMax]) {
		t.Fatalf("sealed sizes %v: want off > fastest >= auto >= max", size)
	}
	if a, b := s.Seal(nil, ad, text.Bytes(), true), s.SealLevel(nil, ad, text.Bytes(), crypto.CompressAuto); len(a) != len(b) {
		t.Fatalf("Seal compressing: %d bytes, SealLevel auto: %d", len(a), len(b))
	}
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]crypto.Compression{
		"auto": crypto.CompressAuto, "default": crypto.CompressAuto, "off": crypto.CompressOff,
		"fastest": crypto.CompressFastest, "max": crypto.CompressMax,
	} {
		if got, err := crypto.ParseCompression(in); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "zstd", "Max", "9"} {
		if _, err := crypto.ParseCompression(in); err == nil {
			t.Errorf("ParseCompression(%q) accepted", in)
		}
	}
}
