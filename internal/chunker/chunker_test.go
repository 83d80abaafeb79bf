package chunker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

var testKey = [32]byte{'c', 'a', 'i', 'r', 'n'}

// randStream returns n seeded pseudo-random bytes.
func randStream(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	rand.NewChaCha8(s).Read(b)
	return b
}

// chunkAll chunks rd and returns the chunks, with Data copied.
func chunkAll(t testing.TB, c *Chunker) []Chunk {
	t.Helper()
	var out []Chunk
	buf := make([]byte, 0, 64<<10) // deliberately small: exercises growth
	for {
		ch, err := c.Next(buf)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		ch.Data = bytes.Clone(ch.Data)
		out = append(out, ch)
	}
}

// checkChunks verifies the chunk invariants against the input.
func checkChunks(t *testing.T, p Params, in []byte, chunks []Chunk) {
	t.Helper()
	var off uint64
	var cat []byte
	for i, ch := range chunks {
		if ch.Start != off {
			t.Fatalf("chunk %d: start %d, want %d", i, ch.Start, off)
		}
		if ch.Length != len(ch.Data) {
			t.Fatalf("chunk %d: length %d, len(data) %d", i, ch.Length, len(ch.Data))
		}
		last := i == len(chunks)-1
		if ch.Length > p.Max || ch.Length == 0 || (!last && ch.Length <= p.Min) {
			t.Fatalf("chunk %d of %d: length %d outside (%d, %d]", i, len(chunks), ch.Length, p.Min, p.Max)
		}
		off += uint64(ch.Length)
		cat = append(cat, ch.Data...)
	}
	if !bytes.Equal(cat, in) {
		t.Fatalf("concatenated chunks (%d bytes) differ from input (%d bytes)", len(cat), len(in))
	}
}

func TestGearTableVector(t *testing.T) {
	// AES-256-CTR keystream, all-zero key and counter block, little-endian
	// words. Cross-checked with `openssl enc -aes-256-ctr` on zeros.
	want := []uint64{0x898940a278c095dc, 0x8720849214a248ad, 0xb93645c7fb8a0f53, 0x8b73cbc4f1b463a9}
	g := gearTable([32]byte{})
	for i, w := range want {
		if g[i] != w {
			t.Errorf("gear[%d] = %#016x, want %#016x", i, g[i], w)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Params
		ok bool
	}{
		{DefaultParams, true},
		{Params{64, 128, 256}, true},
		{Params{32, 128, 256}, false},
		{Params{128, 128, 256}, false},
		{Params{64, 256, 256}, false},
		{Params{64, 192, 256}, false},
		{Params{1 << 20, 2 << 20, MaxSize + 1}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%v.Validate() = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

func TestInvariantsAndDeterminism(t *testing.T) {
	small := Params{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}
	in := randStream(1, 8<<20)
	for _, p := range []Params{DefaultParams, small} {
		a := chunkAll(t, New(bytes.NewReader(in), testKey, p))
		checkChunks(t, p, in, a)
		// Same input through a reader returning 1..n bytes at a time.
		b := chunkAll(t, New(iotest.HalfReader(iotest.OneByteReader(bytes.NewReader(in[:1<<20]))), testKey, p))
		c := chunkAll(t, New(bytes.NewReader(in[:1<<20]), testKey, p))
		if len(b) != len(c) {
			t.Fatalf("%v: %d chunks with a slow reader, %d with a fast one", p, len(b), len(c))
		}
		for i := range b {
			if b[i].Start != c[i].Start || b[i].Length != c[i].Length {
				t.Fatalf("%v: chunk %d differs between readers", p, i)
			}
		}
	}
}

func TestKeyChangesBoundaries(t *testing.T) {
	p := Params{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}
	in := randStream(2, 4<<20)
	a := chunkAll(t, New(bytes.NewReader(in), testKey, p))
	other := testKey
	other[31] ^= 1
	b := chunkAll(t, New(bytes.NewReader(in), other, p))
	cuts := map[uint64]bool{}
	for _, ch := range a {
		cuts[ch.Start] = true
	}
	shared := 0
	for _, ch := range b[1:] {
		if cuts[ch.Start] {
			shared++
		}
	}
	if shared > len(b)/10 {
		t.Fatalf("two keys share %d of %d cut points", shared, len(b))
	}
}

func TestShiftResistance(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB")
	}
	in := randStream(3, 64<<20)
	hashes := func(data []byte) map[[32]byte]bool {
		m := map[[32]byte]bool{}
		c := New(bytes.NewReader(data), testKey, DefaultParams)
		buf := make([]byte, DefaultParams.Max)
		for {
			ch, err := c.Next(buf)
			if err == io.EOF {
				return m
			}
			if err != nil {
				t.Fatal(err)
			}
			m[sha256.Sum256(ch.Data)] = true
		}
	}
	before := hashes(in)
	after := hashes(append([]byte{0x42}, in...))
	shared := 0
	for h := range after {
		if before[h] {
			shared++
		}
	}
	t.Logf("%d chunks before, %d after, %d shared", len(before), len(after), shared)
	if len(after)-shared > 3 {
		t.Fatalf("inserting one byte changed %d of %d chunks", len(after)-shared, len(after))
	}
}

func TestAverageSize(t *testing.T) {
	if testing.Short() {
		t.Skip("256 MiB")
	}
	const size = 256 << 20
	var seed [32]byte
	seed[0] = 4
	c := New(io.LimitReader(rand.NewChaCha8(seed), size), testKey, DefaultParams)
	buf := make([]byte, DefaultParams.Max)
	n := 0
	for {
		_, err := c.Next(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	avg := float64(size) / float64(n)
	t.Logf("%d chunks, average %.0f bytes (avg param %d)", n, avg, DefaultParams.Avg)
	if lo, hi := 0.75*float64(DefaultParams.Avg), 1.25*float64(DefaultParams.Avg); avg < lo || avg > hi {
		t.Fatalf("average chunk size %.0f outside [%.0f, %.0f]", avg, lo, hi)
	}
}

func TestResetAndOffsets(t *testing.T) {
	p := Params{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}
	a, b := randStream(5, 300<<10), randStream(6, 200<<10)
	c := New(bytes.NewReader(a), testKey, p)
	ca := chunkAll(t, c)
	if _, err := c.Next(nil); err != io.EOF {
		t.Fatalf("Next after EOF: %v", err)
	}
	c.Reset(bytes.NewReader(b))
	cb := chunkAll(t, c)
	checkChunks(t, p, b, cb)
	fresh := chunkAll(t, New(bytes.NewReader(b), testKey, p))
	if len(cb) != len(fresh) {
		t.Fatalf("after Reset: %d chunks, fresh chunker: %d", len(cb), len(fresh))
	}
	for i := range cb {
		if cb[i].Start != fresh[i].Start || cb[i].Length != fresh[i].Length {
			t.Fatalf("after Reset chunk %d differs", i)
		}
	}
	c.Reset(bytes.NewReader(a))
	if again := chunkAll(t, c); len(again) != len(ca) {
		t.Fatalf("second pass: %d chunks, want %d", len(again), len(ca))
	}
}

func TestTinyInputs(t *testing.T) {
	c := New(bytes.NewReader(nil), testKey, DefaultParams)
	if _, err := c.Next(nil); err != io.EOF {
		t.Fatalf("empty input: %v, want io.EOF", err)
	}
	for _, n := range []int{1, 63, 64, DefaultParams.Min, DefaultParams.Min + 1, DefaultParams.Max, DefaultParams.Max + 1} {
		in := randStream(7, n)
		c.Reset(bytes.NewReader(in))
		chunks := chunkAll(t, c)
		checkChunks(t, DefaultParams, in, chunks)
		if n <= DefaultParams.Min && len(chunks) != 1 {
			t.Fatalf("%d bytes: %d chunks", n, len(chunks))
		}
	}
}

func TestMaxCut(t *testing.T) {
	// All-zero input never matches a mask (the hash settles at a non-zero
	// value for almost every key), so every chunk is cut at Max.
	p := Params{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}
	in := make([]byte, 5*p.Max+100)
	chunks := chunkAll(t, New(bytes.NewReader(in), testKey, p))
	checkChunks(t, p, in, chunks)
	for _, ch := range chunks[:len(chunks)-1] {
		if ch.Length != p.Max {
			t.Skipf("zero input cut at %d: this key's hash reaches zero bits on zeros", ch.Length)
		}
	}
}

func TestNoAllocPerChunk(t *testing.T) {
	in := randStream(8, 16<<20)
	c := New(bytes.NewReader(in), testKey, DefaultParams)
	buf := make([]byte, DefaultParams.Max)
	allocs := testing.AllocsPerRun(3, func() {
		c.Reset(bytes.NewReader(in))
		for {
			if _, err := c.Next(buf); err != nil {
				break
			}
		}
	})
	if allocs > 1 { // the bytes.Reader
		t.Fatalf("%.0f allocations per 16 MiB stream", allocs)
	}
}

type errReader struct{ n int }

var errBoom = errors.New("boom")

func (r *errReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errBoom
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestReadError(t *testing.T) {
	p := Params{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}
	c := New(&errReader{n: 1 << 20}, testKey, p)
	var err error
	for err == nil {
		_, err = c.Next(nil)
	}
	if !errors.Is(err, errBoom) {
		t.Fatalf("got %v, want the reader's error", err)
	}
	if _, err := c.Next(nil); !errors.Is(err, errBoom) {
		t.Fatalf("error not sticky: %v", err)
	}
}

// TestQuick is a property test: random params, random lengths, inputs with
// long runs (low entropy) and random bytes; invariants must hold.
func TestQuick(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 50 {
		avg := 1 << (7 + r.IntN(8))
		p := Params{Min: max(MinSize, avg/(2+r.IntN(6))), Avg: avg, Max: avg * (2 + r.IntN(6))}
		in := randStream(r.Uint64(), r.IntN(16*p.Max))
		for i := 0; i < len(in); i += 1 + r.IntN(4096) {
			n := r.IntN(2048)
			for j := i; j < min(len(in), i+n); j++ {
				in[j] = byte(i)
			}
			i += n
		}
		checkChunks(t, p, in, chunkAll(t, New(bytes.NewReader(in), testKey, p)))
	}
}

func BenchmarkChunker(b *testing.B) {
	in := randStream(10, 64<<20)
	c := New(bytes.NewReader(in), testKey, DefaultParams)
	buf := make([]byte, DefaultParams.Max)
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for b.Loop() {
		c.Reset(bytes.NewReader(in))
		for {
			if _, err := c.Next(buf); err != nil {
				break
			}
		}
	}
}

// cutRef is the definition that cut unrolls.
func cutRef(g *[256]uint64, b []byte, hp *uint64, mask uint64) (int, bool) {
	h := *hp
	for i, x := range b {
		h = h<<1 + g[x]
		if h&mask == 0 {
			*hp = h
			return i + 1, true
		}
	}
	*hp = h
	return len(b), false
}

func TestCutMatchesReference(t *testing.T) {
	g := gearTable(testKey)
	in := randStream(12, 1<<20)
	for bits := 1; bits <= 12; bits++ {
		mask := ^uint64(0) << (64 - bits)
		h1, h2 := uint64(0), uint64(0)
		for off := 0; off < len(in); {
			end := min(len(in), off+1+off%37)
			k1, ok1 := cut(g, in[off:end], &h1, mask)
			k2, ok2 := cutRef(g, in[off:end], &h2, mask)
			if k1 != k2 || ok1 != ok2 || h1 != h2 {
				t.Fatalf("mask bits %d offset %d: cut = %d %v %x, reference %d %v %x", bits, off, k1, ok1, h1, k2, ok2, h2)
			}
			off += k1
		}
	}
}
