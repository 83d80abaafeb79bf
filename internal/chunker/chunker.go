package chunker

import "io"

// ID names this algorithm and its table derivation in the repository config.
// Any change to either needs a new ID.
const ID = "fastcdc-gear-v1"

// readSize is how much the chunker asks its reader for at a time.
const readSize = 256 << 10

// Chunk is one content-defined piece of the stream.
type Chunk struct {
	Start  uint64 // offset of the chunk's first byte in the stream
	Length int    // len(Data)
	Data   []byte // the chunk's bytes; reuses the buffer given to Next
}

// Chunker splits a stream into content-defined chunks. It is not safe for
// concurrent use; give each worker its own and reuse it with Reset.
type Chunker struct {
	gear          [256]uint64
	min, avg, max int
	maskS, maskL  uint64
	rd            io.Reader
	rbuf          []byte
	rpos, rend    int
	eof           bool
	err           error // sticky: io.EOF or the reader's error
	off           uint64
}

// New returns a chunker reading rd, with the gear table derived from key.
// It panics if p is invalid; check p.Validate first when p comes from
// storage.
func New(rd io.Reader, key [32]byte, p Params) *Chunker {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	c := &Chunker{
		gear: *gearTable(key),
		min:  p.Min,
		avg:  p.Avg,
		max:  p.Max,
		rbuf: make([]byte, readSize),
	}
	c.maskS, c.maskL = p.masks()
	c.Reset(rd)
	return c
}

// Reset makes c chunk rd from its beginning, as a new stream: offsets start
// at zero and the first chunk starts at rd's first byte. The table and the
// read buffer are kept.
func (c *Chunker) Reset(rd io.Reader) {
	c.rd = rd
	c.rpos, c.rend = 0, 0
	c.eof = false
	c.err = nil
	c.off = 0
}

// Next returns the next chunk. Its Data is buf[:Length] when cap(buf) is at
// least Length (pass a buffer of cap Params.Max to never allocate), and a
// new slice otherwise; either way it is valid until buf is reused. At the
// end of the stream Next returns io.EOF; a read error is returned as is and
// stays: the current chunk is lost and every later call returns it too.
func (c *Chunker) Next(buf []byte) (Chunk, error) {
	if c.err != nil {
		return Chunk{}, c.err
	}
	data := buf[:0]
	n := 0
	var h uint64
	for {
		if c.rpos == c.rend {
			if err := c.fill(); err != nil {
				c.err = err
				if err == io.EOF && n > 0 {
					break
				}
				return Chunk{}, err
			}
		}
		seg := c.rbuf[c.rpos:c.rend]
		k, done := c.scan(seg, n, &h)
		data = append(data, seg[:k]...)
		c.rpos += k
		n += k
		if done {
			break
		}
	}
	ch := Chunk{Start: c.off, Length: n, Data: data}
	c.off += uint64(n)
	return ch, nil
}

// fill reads the next block into rbuf. It returns nil with at least one
// byte buffered, or io.EOF, or the reader's error.
func (c *Chunker) fill() error {
	if c.eof {
		return io.EOF
	}
	for range 100 {
		n, err := c.rd.Read(c.rbuf)
		c.rpos, c.rend = 0, n
		if err == io.EOF {
			c.eof = true
			if n > 0 {
				return nil
			}
			return io.EOF
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// scan consumes bytes of seg, which continue a chunk that already has n
// bytes and hash *h. It returns how many bytes it consumed and whether the
// chunk ends after them.
func (c *Chunker) scan(seg []byte, n int, h *uint64) (int, bool) {
	i := 0
	if n < c.min {
		// Cut-point skipping: no cut can fall below Min, so no hashing.
		i = min(c.min-n, len(seg))
		if n+i < c.min {
			return i, false
		}
	}
	if n+i < c.avg {
		end := min(len(seg), i+c.avg-(n+i))
		k, found := cut(&c.gear, seg[i:end], h, c.maskS)
		if found {
			return i + k, true
		}
		i = end
		if n+i < c.avg {
			return i, false
		}
	}
	end := min(len(seg), i+c.max-(n+i))
	k, found := cut(&c.gear, seg[i:end], h, c.maskL)
	if found {
		return i + k, true
	}
	return end, n+end == c.max
}

// cut rolls the gear hash over b and returns the length of the prefix after
// which the hash has all mask bits zero.
//
// The loop takes four bytes a step. The hash after the step is computed
// from the hash before it in one shift and one add,
// h<<4 + (g0<<3 + g1<<2 + g2<<1 + g3), which equals four single-byte steps
// modulo 2^64; the three intermediate hashes branch off that chain. This
// halves the length of the dependency chain compared with h = h<<1 + g[x].
func cut(gp *[256]uint64, b []byte, hp *uint64, mask uint64) (int, bool) {
	g := gp[:]
	h := *hp
	rest := b
	for len(rest) >= 4 {
		g0, g1, g2, g3 := g[rest[0]], g[rest[1]], g[rest[2]], g[rest[3]]
		h1 := h<<1 + g0
		h2 := h1<<1 + g1
		h3 := h2<<1 + g2
		if h1&mask == 0 || h2&mask == 0 || h3&mask == 0 {
			break // rare: the byte loop below finds the exact position
		}
		h = h<<4 + (((g0<<1+g1)<<1+g2)<<1 + g3)
		if h&mask == 0 {
			*hp = h
			return len(b) - len(rest) + 4, true
		}
		rest = rest[4:]
	}
	for i, x := range rest {
		h = h<<1 + g[x]
		if h&mask == 0 {
			*hp = h
			return len(b) - len(rest) + i + 1, true
		}
	}
	*hp = h
	return len(b), false
}
