package crypto

import "math/bits"

// Padme returns the Padmé padded length of l (Nikitin et al., PETS 2019):
// at most about 12% overhead, leaking O(log log l) bits of the length.
func Padme(l uint64) uint64 {
	if l < 2 {
		return l
	}
	e := uint64(bits.Len64(l) - 1) // floor(log2 l)
	s := uint64(bits.Len64(e))     // floor(log2 e) + 1
	lastBits := e - s
	mask := uint64(1)<<lastBits - 1
	return (l + mask) &^ mask
}

// TreePadMin is the smallest padded frame of a tree blob (PadTree).
const TreePadMin = 512

// treePadPow2Max is the largest tree frame PadTree pads to a power of two.
const treePadPow2Max = 16 << 10

// PadTree is the padded frame length of a tree blob of frame length l:
// TreePadMin for l up to it, else the next power of two up to 16 KiB,
// else Padmé. Padmé alone leaves a small directory's entry count in its
// size (one entry ≈ 96 frame bytes, two ≈ 160, three ≈ 304); with
// PadTree every directory of up to about five entries looks the same, and
// beyond that a size says only the power of two its encoding falls under.
func PadTree(l uint64) uint64 {
	switch {
	case l <= TreePadMin:
		return TreePadMin
	case l <= treePadPow2Max:
		return 1 << bits.Len64(l-1)
	}
	return Padme(l)
}
