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
