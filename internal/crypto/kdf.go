package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// HKDF labels. Every derived key has its own label; no key serves two
// algorithms. Changing a label changes the format.
const (
	LabelBlobID      = "cairn v1 blob id"      // K_id: HMAC-SHA-256 key for blob IDs
	LabelChunker     = "cairn v1 chunker"      // K_cdc: gear-table key of the chunker
	LabelCache       = "cairn v1 cache"        // K_cache: keys local cache entries by path
	LabelGroup       = "cairn v1 path group"   // K_group: path_group = HMAC(K_group, paths)
	LabelWriterDedup = "cairn v1 writer dedup" // K_wd: seals a writer's own dedup set
	LabelKeyFile     = "cairn v1 key file"     // key-file AEAD key from the argon2id output
)

// hkdfSalt is fixed: the inputs are uniformly random secrets.
var hkdfSalt = []byte("cairn hkdf salt v1")

// Derive returns a 32-byte key derived from secret under label with
// HKDF-SHA-256 (salt "cairn hkdf salt v1", info = label).
func Derive(secret []byte, label string) [32]byte {
	out, err := hkdf.Key(sha256.New, secret, hkdfSalt, label, 32)
	if err != nil {
		panic(fmt.Sprintf("hkdf: %v", err)) // only on absurd lengths
	}
	var k [32]byte
	copy(k[:], out)
	return k
}

// DedupKeys are the keys of one dedup generation, derived from its secret.
type DedupKeys struct {
	Gen   uint32
	ID    [32]byte // K_id
	CDC   [32]byte // K_cdc
	Cache [32]byte // K_cache
	Group [32]byte // K_group
}

// DeriveDedup derives a generation's keys from its 32-byte secret.
func DeriveDedup(gen uint32, secret []byte) DedupKeys {
	return DedupKeys{
		Gen:   gen,
		ID:    Derive(secret, LabelBlobID),
		CDC:   Derive(secret, LabelChunker),
		Cache: Derive(secret, LabelCache),
		Group: Derive(secret, LabelGroup),
	}
}
