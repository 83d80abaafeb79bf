package snapshot

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
)

// Statement is what a writer signs for a snapshot. Everything the server
// may learn about the snapshot's contents is here or in the metadata header
// (whose hash is here); everything else is sealed to the owner.
type Statement struct {
	RepoID       [32]byte
	Writer       [32]byte // Ed25519 public key of the signer
	Seq          uint64   // 1, 2, 3, … per writer
	Prev         [32]byte // SHA-256 of the writer's previous statement; zero for seq 1
	Root         blob.ID  // root tree blob
	ManifestRoot [32]byte // SHA-256 over the manifest page IDs, in order
	Time         time.Time
	DedupGen     uint32
	MetaHash     [32]byte // SHA-256 of the sealed metadata header
	SealedHash   [32]byte // SHA-256 of the owner-sealed header
	DedupHash    [32]byte // SHA-256 of the writer-sealed dedup set (zero if absent)
}

const (
	statementVersion = 1
	StatementSize    = 1 + 32*3 + 8 + 32*2 + 8 + 4 + 32*3
)

// Marshal encodes the statement (fixed layout, little endian):
//
//	version u8 (1) | repo [32] | writer [32] | seq u64 | prev [32] | root [32] |
//	manifest root [32] | time i64 (unix ns) | dedup gen u32 | meta hash [32] |
//	sealed hash [32] | dedup hash [32]
func (s *Statement) Marshal() []byte {
	b := make([]byte, 0, StatementSize)
	b = append(b, statementVersion)
	b = append(b, s.RepoID[:]...)
	b = append(b, s.Writer[:]...)
	b = binary.LittleEndian.AppendUint64(b, s.Seq)
	b = append(b, s.Prev[:]...)
	b = append(b, s.Root[:]...)
	b = append(b, s.ManifestRoot[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.Time.UnixNano()))
	b = binary.LittleEndian.AppendUint32(b, s.DedupGen)
	b = append(b, s.MetaHash[:]...)
	b = append(b, s.SealedHash[:]...)
	b = append(b, s.DedupHash[:]...)
	return b
}

// Hash is the SHA-256 of the encoded statement; the next statement's Prev.
func (s *Statement) Hash() [32]byte { return sha256.Sum256(s.Marshal()) }

// ParseStatement decodes a statement.
func ParseStatement(b []byte) (*Statement, error) {
	if len(b) != StatementSize {
		return nil, fmt.Errorf("%w: statement of %d bytes, want %d", ErrFormat, len(b), StatementSize)
	}
	if b[0] != statementVersion {
		return nil, fmt.Errorf("%w: statement version %d", ErrFormat, b[0])
	}
	s := &Statement{}
	p := b[1:]
	take := func(dst []byte) { copy(dst, p); p = p[len(dst):] }
	take(s.RepoID[:])
	take(s.Writer[:])
	s.Seq = binary.LittleEndian.Uint64(p)
	p = p[8:]
	take(s.Prev[:])
	take(s.Root[:])
	take(s.ManifestRoot[:])
	s.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(p))).UTC()
	p = p[8:]
	s.DedupGen = binary.LittleEndian.Uint32(p)
	p = p[4:]
	take(s.MetaHash[:])
	take(s.SealedHash[:])
	take(s.DedupHash[:])
	if s.Seq == 0 {
		return nil, fmt.Errorf("%w: statement with seq 0", ErrFormat)
	}
	return s, nil
}

// File is a stored snapshot: the signed statement and the sections it
// hashes.
type File struct {
	Statement    *Statement
	StatementRaw []byte
	Signature    []byte
	MetaSealed   []byte // sealed to the metadata identity
	OwnerSealed  []byte // sealed to the owner
	DedupSealed  []byte // sealed to the writer itself (may be empty)
}

const fileMagic = "CRS1"

// MaxSnapshotFile bounds a snapshot file read from storage.
const MaxSnapshotFile = 512 << 20

// Marshal encodes a snapshot file:
//
//	"CRS1" | u32 len | statement | signature [64] | u32 len | meta sealed |
//	u32 len | owner sealed | u32 len | dedup sealed
func (f *File) Marshal() []byte {
	b := []byte(fileMagic)
	for i, part := range [][]byte{f.StatementRaw, f.Signature, f.MetaSealed, f.OwnerSealed, f.DedupSealed} {
		if i != 1 {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(part)))
		}
		b = append(b, part...)
	}
	return b
}

// ParseFile decodes a snapshot file and checks that the section hashes in
// its statement match. It does not verify the signature (see Verify).
func ParseFile(b []byte) (*File, error) {
	if len(b) > MaxSnapshotFile {
		return nil, fmt.Errorf("%w: snapshot file of %d bytes", ErrFormat, len(b))
	}
	if len(b) < 4 || string(b[:4]) != fileMagic {
		return nil, fmt.Errorf("%w: not a snapshot file", ErrFormat)
	}
	p := b[4:]
	next := func() ([]byte, error) {
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: truncated snapshot file", ErrFormat)
		}
		l := binary.LittleEndian.Uint32(p)
		if uint64(l) > uint64(len(p)-4) {
			return nil, fmt.Errorf("%w: truncated snapshot file", ErrFormat)
		}
		out := p[4 : 4+l]
		p = p[4+l:]
		return out, nil
	}
	f := &File{}
	var err error
	if f.StatementRaw, err = next(); err != nil {
		return nil, err
	}
	if len(p) < ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: truncated signature", ErrFormat)
	}
	f.Signature, p = p[:ed25519.SignatureSize], p[ed25519.SignatureSize:]
	if f.MetaSealed, err = next(); err != nil {
		return nil, err
	}
	if f.OwnerSealed, err = next(); err != nil {
		return nil, err
	}
	if f.DedupSealed, err = next(); err != nil {
		return nil, err
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrFormat, len(p))
	}
	if f.Statement, err = ParseStatement(f.StatementRaw); err != nil {
		return nil, err
	}
	if sha256.Sum256(f.MetaSealed) != f.Statement.MetaHash || sha256.Sum256(f.OwnerSealed) != f.Statement.SealedHash {
		return nil, fmt.Errorf("%w: sealed headers do not match the signed statement", ErrFormat)
	}
	var dh [32]byte
	if len(f.DedupSealed) > 0 {
		dh = sha256.Sum256(f.DedupSealed)
	}
	if dh != f.Statement.DedupHash {
		return nil, fmt.Errorf("%w: dedup section does not match the signed statement", ErrFormat)
	}
	return f, nil
}

// Sign fills in the statement's section hashes, encodes and signs it.
func (f *File) Sign(priv ed25519.PrivateKey) {
	s := f.Statement
	s.MetaHash = sha256.Sum256(f.MetaSealed)
	s.SealedHash = sha256.Sum256(f.OwnerSealed)
	s.DedupHash = [32]byte{}
	if len(f.DedupSealed) > 0 {
		s.DedupHash = sha256.Sum256(f.DedupSealed)
	}
	copy(s.Writer[:], priv.Public().(ed25519.PublicKey))
	f.StatementRaw = s.Marshal()
	f.Signature = crypto.Sign(priv, crypto.SigSnapshot, f.StatementRaw)
}

// Verify checks the statement's signature by its writer key.
func (f *File) Verify() error {
	if err := crypto.Verify(ed25519.PublicKey(f.Statement.Writer[:]), crypto.SigSnapshot, f.StatementRaw, f.Signature); err != nil {
		return fmt.Errorf("snapshot statement: %w", err)
	}
	return nil
}

// HeadSize is how many bytes at the start of a snapshot file hold its
// statement and signature: what HeadStatement needs.
const HeadSize = 4 + 4 + StatementSize + ed25519.SignatureSize

// HeadStatement decodes the statement at the head of a snapshot file (the
// first HeadSize bytes, or the whole file if shorter) and verifies its
// signature by the statement's writer key; it does not look at the rest
// of the file. A reader that only follows chains (the server) needs no
// more.
func HeadStatement(head []byte) (*Statement, error) {
	if len(head) < 8 || string(head[:4]) != fileMagic {
		return nil, fmt.Errorf("%w: not a snapshot file", ErrFormat)
	}
	l := uint64(binary.LittleEndian.Uint32(head[4:]))
	if l+ed25519.SignatureSize > uint64(len(head)-8) {
		return nil, fmt.Errorf("%w: truncated snapshot file", ErrFormat)
	}
	raw, sig := head[8:8+l], head[8+l:8+l+ed25519.SignatureSize]
	st, err := ParseStatement(raw)
	if err != nil {
		return nil, err
	}
	if err := crypto.Verify(ed25519.PublicKey(st.Writer[:]), crypto.SigSnapshot, raw, sig); err != nil {
		return nil, err
	}
	return st, nil
}
