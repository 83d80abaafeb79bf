package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// Errors a caller maps to "you hold the wrong key" messages and exit codes.
var (
	// ErrNeedsOwner: the operation opens content, which only the owner's
	// identity can do.
	ErrNeedsOwner = errors.New("needs the owner key")
	// ErrNeedsMetadata: the operation opens metadata, which only the
	// metadata identity (server or owner) can do.
	ErrNeedsMetadata = errors.New("needs the owner or server key")
	// ErrDecrypt: authenticated decryption failed: the bytes were changed,
	// truncated, or are not what they claim to be.
	ErrDecrypt = errors.New("authentication failed (corrupted or forged data)")
)

// Wrap algorithms for session-key slots; the value is recorded per slot.
const (
	WrapHybrid uint8 = 1 // age mlkem768x25519 recipient (default)
	WrapX25519 uint8 = 2 // age X25519 recipient
)

// maxSealed bounds what OpenSealed will decrypt, so hostile input cannot
// make a reader allocate without limit.
const maxSealed = 256 << 20

// Seal encrypts plaintext to recipients with age. Used for session-key slots
// (to the owner) and for metadata (to the metadata identity).
func Seal(plaintext []byte, recipients ...age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		return nil, fmt.Errorf("age encrypt: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Open decrypts an age file with identity. A nil identity or one that does
// not match yields notMine (ErrNeedsOwner or ErrNeedsMetadata); any other
// failure is ErrDecrypt.
func Open(ct []byte, identity age.Identity, notMine error) ([]byte, error) {
	if identity == nil {
		return nil, notMine
	}
	r, err := age.Decrypt(bytes.NewReader(ct), identity)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, notMine
		}
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	// The plaintext is shorter than the ciphertext: one buffer of that
	// size, not io.ReadAll's doubling (a multi-MiB index fragment).
	buf := bytes.NewBuffer(make([]byte, 0, min(len(ct), maxSealed+1)+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(r, maxSealed+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	out := buf.Bytes()
	if len(out) > maxSealed {
		return nil, fmt.Errorf("%w: sealed object larger than %d bytes", ErrDecrypt, maxSealed)
	}
	return out, nil
}

// WrapSessionKey makes a key slot: the session key sealed to the owner.
func WrapSessionKey(key *[32]byte, owner age.Recipient) ([]byte, error) {
	return Seal(key[:], owner)
}

// UnwrapSessionKey opens a key slot with the owner identity.
func UnwrapSessionKey(slot []byte, owner age.Identity, notMine error) ([32]byte, error) {
	var k [32]byte
	pt, err := Open(slot, owner, notMine)
	if err != nil {
		return k, err
	}
	if len(pt) != 32 {
		return k, fmt.Errorf("%w: key slot holds %d bytes, want 32", ErrDecrypt, len(pt))
	}
	copy(k[:], pt)
	return k, nil
}
