// Package backend defines the storage interface every repository store
// implements: a typed, write-once file store. Backends know nothing of what
// the files hold; they store bytes under a Handle and hand them back.
//
// Invariants every backend keeps (checked by package backendtest):
//   - Files are write-once: Save of an existing handle fails with ErrExists
//     and leaves the stored file untouched.
//   - A file is either wholly visible or absent; a crash or an error mid-Save
//     never leaves a partial file visible under its name.
//   - For every type but Config, the name is the lowercase hex SHA-256 of the
//     file's exact bytes (see ValidName); backends that can, verify it while
//     writing and refuse a mismatch with ErrHashMismatch.
package backend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// FileType is the kind of a repository file; it is also its directory name.
type FileType string

// The repository's file types. Only Config has a fixed name ("config");
// every other file is named by the hex SHA-256 of its bytes.
const (
	Config     FileType = "config"     // fixed name "config": the newest owner-signed config
	Configs    FileType = "configs"    // every config version, content-named
	Keys       FileType = "keys"       // password-protected key files
	Rosters    FileType = "rosters"    // owner-signed writer rosters
	Snapshots  FileType = "snapshots"  // signed snapshot statements + sealed headers
	Index      FileType = "index"      // index fragments (copies of pack headers)
	Data       FileType = "data"       // packs, sharded by the first two hex digits
	Receipts   FileType = "receipts"   // coordinator-signed arrival receipts
	Tombstones FileType = "tombstones" // coordinator-signed deletion records
	Plans      FileType = "plans"      // condemnation plans of a running prune
	Locks      FileType = "locks"      // restic repositories only; cairn takes no locks
	Claims     FileType = "claims"     // sequence claims: one per (writer, seq) a commit took
)

// AllTypes lists every FileType, in a stable order.
var AllTypes = []FileType{Config, Configs, Keys, Rosters, Snapshots, Index, Data, Receipts, Tombstones, Plans, Locks, Claims}

// Handle names one file.
type Handle struct {
	Type FileType
	Name string
}

func (h Handle) String() string {
	if h.Type == Config {
		return "config"
	}
	return string(h.Type) + "/" + h.Name
}

// FileInfo describes a stored file.
type FileInfo struct {
	Handle
	Size    int64
	ModTime time.Time // the storage's own time for the file, where it has one
}

// Sentinel errors; backends wrap provider errors into these so callers can
// use errors.Is.
var (
	ErrNotFound     = errors.New("file not found")
	ErrExists       = errors.New("file already exists")
	ErrHashMismatch = errors.New("content does not hash to its name")
	ErrInvalidName  = errors.New("invalid file name")
	ErrNoSpace      = errors.New("no space left on storage")
	ErrPermission   = errors.New("permission denied by storage")
	// ErrSequence: a cairn server refused a snapshot, roster or config
	// that does not follow the last one it recorded (409 bad-sequence).
	ErrSequence = errors.New("out of sequence")
)

// ServerSequenced reports whether be (or a backend it wraps) is a server
// that orders each writer's commits itself and refuses a duplicate seq with
// ErrSequence, so a client takes no sequence claims of its own.
func ServerSequenced(be Backend) bool {
	for be != nil {
		if s, ok := be.(interface{ SequencesCommits() bool }); ok {
			return s.SequencesCommits()
		}
		u, ok := be.(interface{ Unwrap() Backend })
		if !ok {
			return false
		}
		be = u.Unwrap()
	}
	return false
}

// RewindReader is a reader of known length that can start over, so a save
// can be retried.
type RewindReader interface {
	io.Reader
	Length() int64
	Rewind() error
}

// Properties tell callers what a backend is like.
type Properties struct {
	// Connections is a sensible number of concurrent requests.
	Connections int
	// Location is a human-readable description (a path or URL without secrets).
	Location string
}

// Backend is the storage interface. Implementations are safe for
// concurrent use.
type Backend interface {
	// Save stores rd under h. It fails with ErrExists if h exists, with
	// ErrHashMismatch if the bytes do not hash to h.Name (non-config types),
	// and with ErrInvalidName if h is not a valid handle.
	Save(ctx context.Context, h Handle, rd RewindReader) error
	// Load calls fn with a reader of length bytes at offset of h; length 0
	// means to the end. The reader is only valid during fn. A range that
	// runs past the end of the file is an error (io.ErrUnexpectedEOF).
	Load(ctx context.Context, h Handle, length int, offset int64, fn func(rd io.Reader) error) error
	// Stat returns information about h, or ErrNotFound.
	Stat(ctx context.Context, h Handle) (FileInfo, error)
	// List calls fn for every file of type t, in no particular order.
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error
	// Remove deletes h, or fails with ErrNotFound.
	Remove(ctx context.Context, h Handle) error
	Properties() Properties
	Close() error
}

// ValidType reports whether t is one of the known file types.
func ValidType(t FileType) bool {
	for _, k := range AllTypes {
		if k == t {
			return true
		}
	}
	return false
}

// ValidName reports whether h is well formed: a known type, and either the
// fixed name "config" for Config or 64 lowercase hex digits otherwise.
func ValidName(h Handle) error {
	if !ValidType(h.Type) {
		return fmt.Errorf("%w: unknown type %q", ErrInvalidName, h.Type)
	}
	if h.Type == Config {
		if h.Name != "config" {
			return fmt.Errorf("%w: config must be named \"config\"", ErrInvalidName)
		}
		return nil
	}
	if len(h.Name) != 64 {
		return fmt.Errorf("%w: %q is not 64 hex digits", ErrInvalidName, h.Name)
	}
	for i := 0; i < len(h.Name); i++ {
		c := h.Name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: %q is not lowercase hex", ErrInvalidName, h.Name)
		}
	}
	return nil
}

// ContentNamed reports whether files of type t are named by their hash.
func ContentNamed(t FileType) bool { return t != Config }

// NameOf returns the content name of buf: its lowercase hex SHA-256.
func NameOf(buf []byte) string {
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// ByteReader is a RewindReader over a byte slice.
type ByteReader struct {
	buf []byte
	off int
}

// NewByteReader returns a RewindReader over buf.
func NewByteReader(buf []byte) *ByteReader { return &ByteReader{buf: buf} }

func (b *ByteReader) Read(p []byte) (int, error) {
	if b.off >= len(b.buf) {
		return 0, io.EOF
	}
	n := copy(p, b.buf[b.off:])
	b.off += n
	return n, nil
}

// Length returns the total length.
func (b *ByteReader) Length() int64 { return int64(len(b.buf)) }

// Rewind starts over.
func (b *ByteReader) Rewind() error { b.off = 0; return nil }

// Bytes returns the underlying slice.
func (b *ByteReader) Bytes() []byte { return b.buf }

// LoadAll reads a whole file.
func LoadAll(ctx context.Context, be Backend, h Handle) ([]byte, error) {
	var out []byte
	err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		// A reader that knows its length (ExactReader) is read into one
		// buffer of that size: io.ReadAll's doubling costs several
		// copies and clears of a multi-MiB index file. The hint comes
		// from the store (a remote one may lie), so it is capped.
		hint := int64(0)
		if r, ok := rd.(interface{ Remaining() int64 }); ok {
			hint = min(r.Remaining(), maxLoadHint)
		}
		buf := bytes.NewBuffer(make([]byte, 0, max(hint, 0)+bytes.MinRead))
		_, err := buf.ReadFrom(rd)
		out = buf.Bytes()
		return err
	})
	return out, err
}

// maxLoadHint caps what LoadAll allocates up front on a store's word.
const maxLoadHint = 64 << 20
