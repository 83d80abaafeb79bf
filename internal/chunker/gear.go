package chunker

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
)

// gearTable derives the 256-entry gear table from the chunker key: the first
// 2048 bytes of the AES-256-CTR keystream under key with an all-zero 16-byte
// initial counter block, read as 256 little-endian uint64s.
func gearTable(key [32]byte) *[256]uint64 {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("chunker: " + err.Error()) // unreachable: the key is 32 bytes
	}
	var iv [aes.BlockSize]byte
	ks := make([]byte, 256*8)
	cipher.NewCTR(block, iv[:]).XORKeyStream(ks, ks)
	var g [256]uint64
	for i := range g {
		g[i] = binary.LittleEndian.Uint64(ks[8*i:])
	}
	return &g
}
