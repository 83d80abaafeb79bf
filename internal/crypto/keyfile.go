package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// KDFParams are argon2id parameters. They are stored in the key file's
// header and authenticated as associated data of its AEAD.
type KDFParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultKDF is what new key files use (R19: at least m = 64 MiB, t = 3, p = 4).
var DefaultKDF = KDFParams{Memory: 64 * 1024, Time: 3, Threads: 4}

// Caps on parameters accepted when reading a key file, so a hostile file
// cannot make unlocking take unbounded memory or time.
const (
	MaxKDFMemory  = 4 * 1024 * 1024 // 4 GiB in KiB
	MaxKDFTime    = 64
	MaxKDFThreads = 64
	// MaxKeyFileSize bounds a key file read from storage.
	MaxKeyFileSize = 64 << 10
)

// MaxStoredKDF caps the argon2id parameters of a key file that is tried
// when a password unlocks a repository by scanning its keys/: 4× the
// default memory and 2× its passes, so one stored file costs at most 8×
// a default unlock. A file above it is skipped with a warning, never
// tried: anyone who can write to keys/ could otherwise make every unlock
// slow (e.g. three files at 512 MiB, t = 4). A key file given explicitly
// (--key-file, the kept owner key) is held only to the MaxKDF* caps.
var MaxStoredKDF = KDFParams{Memory: 256 * 1024, Time: 6, Threads: 16}

// WithinStoredCap reports whether p is within MaxStoredKDF.
func (p KDFParams) WithinStoredCap() bool {
	return p.Memory <= MaxStoredKDF.Memory && p.Time <= MaxStoredKDF.Time && p.Threads <= MaxStoredKDF.Threads
}

// ErrWrongPassword is returned when a key file does not open with the
// password given.
var ErrWrongPassword = errors.New("wrong password")

// ErrBadKeyFile is returned for a key file that is malformed.
var ErrBadKeyFile = errors.New("malformed key file")

const keyFileMagic = "CAIRNKEY"

// KeyFileHeader is the plaintext, authenticated part of a key file.
type KeyFileHeader struct {
	Version uint8 // 1
	KDF     KDFParams
	Salt    [16]byte
	Role    Role
	Created int64  // unix seconds
	Label   string // free text: host and user that created it (≤ 255 bytes)
}

// Key file layout (all integers little endian):
//
//	"CAIRNKEY" | version u8 | kdf alg u8 (1 = argon2id) | memory u32 | time u32 |
//	threads u8 | salt [16] | role u8 | created i64 | label len u8 | label |
//	nonce [24] | XChaCha20-Poly1305(k, payload, ad = everything before nonce)
//
// with k = HKDF(argon2id(password, salt, params), "cairn v1 key file").
func (h *KeyFileHeader) encode() []byte {
	var b bytes.Buffer
	b.WriteString(keyFileMagic)
	b.WriteByte(h.Version)
	b.WriteByte(1)
	binary.Write(&b, binary.LittleEndian, h.KDF.Memory)
	binary.Write(&b, binary.LittleEndian, h.KDF.Time)
	b.WriteByte(h.KDF.Threads)
	b.Write(h.Salt[:])
	b.WriteByte(byte(h.Role))
	binary.Write(&b, binary.LittleEndian, h.Created)
	b.WriteByte(byte(len(h.Label)))
	b.WriteString(h.Label)
	return b.Bytes()
}

// ParseKeyFileHeader decodes the header of a key file and returns it with
// the offset where the nonce starts. It enforces the KDF caps.
func ParseKeyFileHeader(buf []byte) (KeyFileHeader, int, error) {
	var h KeyFileHeader
	if len(buf) > MaxKeyFileSize {
		return h, 0, fmt.Errorf("%w: %d bytes is larger than any key file", ErrBadKeyFile, len(buf))
	}
	const fixed = 8 + 1 + 1 + 4 + 4 + 1 + 16 + 1 + 8 + 1
	if len(buf) < fixed || string(buf[:8]) != keyFileMagic {
		return h, 0, fmt.Errorf("%w: not a cairn key file", ErrBadKeyFile)
	}
	p := buf[8:]
	h.Version = p[0]
	if h.Version != 1 {
		return h, 0, fmt.Errorf("%w: unsupported version %d", ErrBadKeyFile, h.Version)
	}
	if p[1] != 1 {
		return h, 0, fmt.Errorf("%w: unknown KDF %d", ErrBadKeyFile, p[1])
	}
	h.KDF.Memory = binary.LittleEndian.Uint32(p[2:])
	h.KDF.Time = binary.LittleEndian.Uint32(p[6:])
	h.KDF.Threads = p[10]
	copy(h.Salt[:], p[11:27])
	h.Role = Role(p[27])
	h.Created = int64(binary.LittleEndian.Uint64(p[28:]))
	ll := int(p[36])
	if len(buf) < fixed+ll {
		return h, 0, fmt.Errorf("%w: truncated header", ErrBadKeyFile)
	}
	h.Label = string(buf[fixed : fixed+ll])
	if err := h.KDF.check(); err != nil {
		return h, 0, err
	}
	if !h.Role.Valid() {
		return h, 0, fmt.Errorf("%w: unknown role %d", ErrBadKeyFile, h.Role)
	}
	return h, fixed + ll, nil
}

// check enforces the accepted range of argon2id parameters, on reading and
// on writing alike, so no key file is written that would be refused when
// read (and argon2 never sees zero threads, on which it panics).
func (p KDFParams) check() error {
	if p.Memory < 8 || p.Memory > MaxKDFMemory || p.Time < 1 || p.Time > MaxKDFTime ||
		p.Threads < 1 || p.Threads > MaxKDFThreads {
		return fmt.Errorf("%w: argon2id parameters m=%d KiB t=%d p=%d are outside the accepted range (8 ≤ m ≤ %d, 1 ≤ t ≤ %d, 1 ≤ p ≤ %d)",
			ErrBadKeyFile, p.Memory, p.Time, p.Threads, MaxKDFMemory, MaxKDFTime, MaxKDFThreads)
	}
	return nil
}

func keyFileKey(password []byte, h *KeyFileHeader) []byte {
	raw := argon2.IDKey(password, h.Salt[:], h.KDF.Time, h.KDF.Memory, h.KDF.Threads, 32)
	k := Derive(raw, LabelKeyFile)
	clear(raw)
	return k[:]
}

// SealKeyFile encrypts payload under password with params and returns the
// key file's bytes.
func SealKeyFile(password []byte, params KDFParams, role Role, created int64, label string, payload []byte) ([]byte, error) {
	if err := params.check(); err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, fmt.Errorf("%w: unknown role %d", ErrBadKeyFile, role)
	}
	if len(label) > 255 {
		label = label[:255]
	}
	h := KeyFileHeader{Version: 1, KDF: params, Role: role, Created: created, Label: label}
	if _, err := rand.Read(h.Salt[:]); err != nil {
		return nil, err
	}
	hdr := h.encode()
	aead, err := chacha20poly1305.NewX(keyFileKey(password, &h))
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(hdr, nonce...)
	return aead.Seal(out, nonce, payload, hdr), nil
}

// OpenKeyFile decrypts a key file with password. A wrong password (or a
// changed header or body) yields ErrWrongPassword.
func OpenKeyFile(buf, password []byte) (KeyFileHeader, []byte, error) {
	h, k, err := deriveFileKey(buf, password)
	if err != nil {
		return h, nil, err
	}
	defer clear(k[:])
	h, pt, err := OpenKeyFileWith(buf, k)
	if errors.Is(err, ErrWrongFileKey) {
		return h, nil, ErrWrongPassword
	}
	return h, pt, err
}

// ReadKeyFile reads a key file kept outside a repository (--key-file, an
// owner key kept on this machine, the agent's key_file), refusing one
// larger than MaxKeyFileSize before reading it all.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(buf) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadKeyFile, path, MaxKeyFileSize)
	}
	return buf, nil
}

// FileKey is the key that opens one key file: HKDF of argon2id(password,
// the file's salt and parameters). Whoever holds it opens that file
// without the password and without argon2id; it opens no other file, as
// each has its own salt. It is never stored (docs/threat-model.md, "R19
// and the agent"): it only travels from the agent to its backup child.
type FileKey [32]byte

// ErrWrongFileKey is returned when a FileKey does not open a key file.
var ErrWrongFileKey = errors.New("the key does not open this key file")

// UnlockKeyFile derives the FileKey of the key file buf from password
// (argon2id with the file's parameters) and checks that it opens the
// file: ErrWrongPassword when it does not.
func UnlockKeyFile(buf, password []byte) (KeyFileHeader, FileKey, error) {
	h, k, err := deriveFileKey(buf, password)
	if err != nil {
		return h, k, err
	}
	_, pt, err := OpenKeyFileWith(buf, k)
	clear(pt)
	if err != nil {
		clear(k[:])
		if errors.Is(err, ErrWrongFileKey) {
			err = ErrWrongPassword
		}
		return h, FileKey{}, err
	}
	return h, k, nil
}

// deriveFileKey is the argon2id step of opening buf: its header, checked,
// and the key derived from password under it.
func deriveFileKey(buf, password []byte) (KeyFileHeader, FileKey, error) {
	var k FileKey
	h, off, err := ParseKeyFileHeader(buf)
	if err != nil {
		return h, k, err
	}
	if len(buf) < off+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return h, k, fmt.Errorf("%w: truncated", ErrBadKeyFile)
	}
	raw := keyFileKey(password, &h)
	copy(k[:], raw)
	clear(raw)
	// argon2id's memory (64 MiB or more) is garbage from here on: collect
	// it and give it back to the kernel now. A collection alone leaves the
	// pages resident, and a backup's heap then grows beside them rather
	// than into them, so they would count twice in its peak memory.
	debug.FreeOSMemory()
	return h, k, nil
}

// OpenKeyFileWith decrypts the key file buf with k, a FileKey derived for
// it earlier (UnlockKeyFile): no argon2id. A key that does not open it (a
// key for another file, or the file changed) yields ErrWrongFileKey.
func OpenKeyFileWith(buf []byte, k FileKey) (KeyFileHeader, []byte, error) {
	h, off, err := ParseKeyFileHeader(buf)
	if err != nil {
		return h, nil, err
	}
	if len(buf) < off+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return h, nil, fmt.Errorf("%w: truncated", ErrBadKeyFile)
	}
	aead, err := chacha20poly1305.NewX(k[:])
	if err != nil {
		return h, nil, err
	}
	nonce := buf[off : off+chacha20poly1305.NonceSizeX]
	pt, err := aead.Open(nil, nonce, buf[off+chacha20poly1305.NonceSizeX:], buf[:off])
	if err != nil {
		return h, nil, ErrWrongFileKey
	}
	return h, pt, nil
}

// A key handed over (the agent to its backup child, `backup --key-fd`) is
// HandoffSize bytes: "CAIRNFK1", the SHA-256 of the key file's bytes (its
// ID: which file the key opens), the FileKey.
const (
	handoffMagic = "CAIRNFK1"
	// HandoffSize is the length of an encoded Handoff.
	HandoffSize = len(handoffMagic) + 32 + 32
)

// ErrBadHandoff is returned for bytes that are not an encoded Handoff.
var ErrBadHandoff = errors.New("not a key hand-over")

// Handoff is an unlocked key file's key with the ID of the file it opens.
type Handoff struct {
	FileID [32]byte // SHA-256 of the key file
	Key    FileKey
}

// NewHandoff is the hand-over of k, the FileKey of the key file buf.
func NewHandoff(buf []byte, k FileKey) Handoff {
	return Handoff{FileID: sha256.Sum256(buf), Key: k}
}

// Matches reports whether buf is the key file h's key was made for.
func (h *Handoff) Matches(buf []byte) bool { return sha256.Sum256(buf) == h.FileID }

// Encode is h's HandoffSize bytes; the caller clears them once sent.
func (h *Handoff) Encode() []byte {
	b := make([]byte, 0, HandoffSize)
	b = append(b, handoffMagic...)
	b = append(b, h.FileID[:]...)
	return append(b, h.Key[:]...)
}

// DecodeHandoff parses an encoded Handoff: exactly HandoffSize bytes.
func DecodeHandoff(b []byte) (Handoff, error) {
	var h Handoff
	if len(b) != HandoffSize || string(b[:len(handoffMagic)]) != handoffMagic {
		return h, fmt.Errorf("%w: %d bytes, want %d starting %q", ErrBadHandoff, len(b), HandoffSize, handoffMagic)
	}
	copy(h.FileID[:], b[len(handoffMagic):])
	copy(h.Key[:], b[len(handoffMagic)+32:])
	return h, nil
}

// Clear overwrites h's key.
func (h *Handoff) Clear() { clear(h.Key[:]) }
