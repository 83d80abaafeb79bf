package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify")

// Signing contexts: a signature made for one kind of object never verifies
// as another.
const (
	SigConfig    = "cairn v1 config"
	SigRoster    = "cairn v1 roster"
	SigSnapshot  = "cairn v1 snapshot statement"
	SigReceipt   = "cairn v1 receipt"
	SigTombstone = "cairn v1 tombstone"
	// SigPackHeader and SigIndex sign a pack header and an index fragment
	// by their uploader (R23, format version 2).
	SigPackHeader = "cairn v2 pack header"
	SigIndex      = "cairn v2 index fragment"
)

// Sign signs msg under a context label with priv.
func Sign(priv ed25519.PrivateKey, context string, msg []byte) []byte {
	return ed25519.Sign(priv, signInput(context, msg))
}

// Verify checks sig over msg under context with pub.
func Verify(pub ed25519.PublicKey, context string, msg, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return ErrBadSignature
	}
	if !ed25519.Verify(pub, signInput(context, msg), sig) {
		return ErrBadSignature
	}
	return nil
}

func signInput(context string, msg []byte) []byte {
	b := make([]byte, 0, len(context)+1+len(msg))
	b = append(b, context...)
	b = append(b, 0)
	return append(b, msg...)
}

// Fingerprint is a short, human-comparable digest of public key material:
// "SHA256:" and the first 16 bytes of SHA-256 in hex, in groups of four.
func Fingerprint(pub ...[]byte) string {
	h := sha256.New()
	for _, p := range pub {
		h.Write(p)
	}
	sum := hex.EncodeToString(h.Sum(nil)[:16])
	out := "SHA256:"
	for i := 0; i < len(sum); i += 4 {
		if i > 0 {
			out += "-"
		}
		out += sum[i : i+4]
	}
	return out
}
