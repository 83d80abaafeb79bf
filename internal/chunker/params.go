package chunker

import (
	"fmt"
	"math/bits"
)

// Limits on Params. MinSize keeps the 64-byte hash window inside a chunk's
// hashed region; MaxSize keeps chunk lengths far inside the index's uint32.
const (
	MinSize = 64
	MaxSize = 256 << 20
)

// Params are the chunk size bounds. They are part of the repository config:
// changing them changes every cut point.
type Params struct {
	Min, Avg, Max int
}

// DefaultParams are the sizes cairn repositories are created with.
var DefaultParams = Params{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20}

// Validate reports whether p can be used: MinSize <= Min < Avg < Max <=
// MaxSize and Avg a power of two.
func (p Params) Validate() error {
	switch {
	case p.Min < MinSize:
		return fmt.Errorf("chunker params %v: min must be at least %d", p, MinSize)
	case p.Min >= p.Avg || p.Avg >= p.Max:
		return fmt.Errorf("chunker params %v: want min < avg < max", p)
	case p.Max > MaxSize:
		return fmt.Errorf("chunker params %v: max must be at most %d", p, MaxSize)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker params %v: avg must be a power of two", p)
	}
	return nil
}

func (p Params) String() string {
	return fmt.Sprintf("{min %d, avg %d, max %d}", p.Min, p.Avg, p.Max)
}

// masks returns the normalized-chunking masks (level 2): before Avg a cut
// needs log2(Avg)+2 zero bits, from Avg on log2(Avg)-2. The masks select the
// top bits of the hash, the bits that depend on all 64 bytes of the window.
func (p Params) masks() (small, large uint64) {
	b := bits.TrailingZeros(uint(p.Avg))
	return ^uint64(0) << (64 - (b + 2)), ^uint64(0) << (64 - (b - 2))
}
