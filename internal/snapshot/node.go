package snapshot

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
)

// NodeType is the kind of a file system object.
type NodeType uint8

// Node types. Values are part of the tree encoding; never renumber.
const (
	TypeFile    NodeType = 1
	TypeDir     NodeType = 2
	TypeSymlink NodeType = 3
	TypeFIFO    NodeType = 4
	TypeCharDev NodeType = 5
	TypeBlkDev  NodeType = 6
	TypeSocket  NodeType = 7
)

func (t NodeType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeCharDev:
		return "chardev"
	case TypeBlkDev:
		return "blockdev"
	case TypeSocket:
		return "socket"
	}
	return "unknown"
}

// Xattr is one extended attribute. POSIX ACLs are stored as their
// system.posix_acl_access / system.posix_acl_default attributes.
type Xattr struct {
	Name  string
	Value []byte
}

// Extent is a run of data in a sparse file: Length bytes at Offset. A file's
// content chunks concatenate the extents in order; everything between
// extents is a hole.
type Extent struct {
	Offset int64
	Length int64
}

// Node is one entry of a directory tree. Names are raw bytes held in a Go
// string (file names need not be UTF-8).
type Node struct {
	Name  string
	Type  NodeType
	Mode  uint32 // permission bits plus setuid/setgid/sticky (os.FileMode.Perm|special, as unix mode bits 07777)
	UID   uint32
	GID   uint32
	User  string // user name at backup time, if known
	Group string // group name at backup time, if known
	MTime time.Time
	ATime time.Time
	CTime time.Time // informational; cannot be restored
	Size  uint64    // logical size of a file

	// Inode and Device identify the object on the source system; with
	// Links > 1 they let restore recreate hard links. Only used to detect
	// hard links and unchanged files; not restored.
	Inode  uint64
	Device uint64
	Links  uint64

	Rdev       uint64   // device number for char/block devices
	LinkTarget string   // symlink target (raw bytes)
	Xattrs     []Xattr  // sorted by name
	Extents    []Extent // sparse files only: the data runs; nil means dense
	// HardLinkTo, when set, names the path (relative to the snapshot root,
	// '/'-separated) of an earlier node in the same snapshot this one is a
	// hard link of; Content is then empty.
	HardLinkTo string

	Content []blob.ID // data blob IDs, in order (files)
	Subtree *blob.ID  // tree blob ID (directories)
	// ContentHash is the SHA-256 of the whole logical content of a file of
	// two or more content blobs, and nil otherwise (SetContent,
	// ContentDigest).
	ContentHash *blob.ID
}

// SetContent records a file's content: its data blob IDs, in order, and
// the SHA-256 of its logical content. The hash is kept only for content of
// two or more blobs: one blob's ID already identifies exactly the file's
// bytes (ContentDigest), and the tree is 32 bytes a file smaller.
func (n *Node) SetContent(ids []blob.ID, sha blob.ID) {
	n.Content, n.ContentHash = ids, nil
	if len(ids) >= 2 {
		n.ContentHash = &sha
	}
}

// ContentDigest checks bytes against a file's content identity: write the
// file's logical content (the data of its extents, in order, for a sparse
// file) to it, then ask Matches. It is what restore --verify, restore
// --overwrite if-changed and drill compare files with.
//
// The identity depends on the number of content blobs, as the tree
// encoding does (DecodeTree refuses any other shape):
//   - none: the content is empty;
//   - one: the blob's ID, HMAC-SHA-256(K_id, 1 ‖ content) (format.md §8),
//     a keyed hash of exactly the file's bytes. It is recomputed under
//     every dedup generation given, since a tree may keep blob IDs of an
//     earlier generation (a file unchanged since), and as a data blob only;
//   - two or more: ContentHash, the SHA-256 of the content.
type ContentDigest struct {
	want   blob.ID
	sha    hash.Hash
	ids    []*crypto.BlobIDWriter
	wrote  bool
	noBlob bool
}

// ErrNoContent is ContentDigest's error for a node that has no content of
// its own: not a file, or a hard link.
var ErrNoContent = errors.New("not a file with content of its own")

// NewContentDigest starts checking content against n's identity; dedup
// holds the K_id of each dedup generation the reader has (only a file of
// one blob needs them).
func NewContentDigest(n *Node, dedup map[uint32]crypto.DedupKeys) (*ContentDigest, error) {
	if n.Type != TypeFile || n.HardLinkTo != "" {
		return nil, ErrNoContent
	}
	if err := checkContentShape(n); err != nil {
		return nil, err
	}
	d := &ContentDigest{}
	switch len(n.Content) {
	case 0:
		d.noBlob = true
	case 1:
		if len(dedup) == 0 {
			return nil, errors.New("no dedup key to recompute the content's blob ID")
		}
		d.want = n.Content[0]
		for _, k := range dedup {
			d.ids = append(d.ids, crypto.NewBlobIDWriter(&k.ID, uint8(blob.Data)))
		}
	default:
		d.want = *n.ContentHash
		d.sha = sha256.New()
	}
	return d, nil
}

// Write adds p to the content being checked; it never fails.
func (d *ContentDigest) Write(p []byte) (int, error) {
	if len(p) > 0 {
		d.wrote = true
	}
	if d.sha != nil {
		d.sha.Write(p)
	}
	for _, w := range d.ids {
		w.Write(p)
	}
	return len(p), nil
}

// Matches reports whether everything written is exactly the node's
// content.
func (d *ContentDigest) Matches() bool {
	switch {
	case d.noBlob:
		return !d.wrote
	case d.sha != nil:
		var got blob.ID
		d.sha.Sum(got[:0])
		return got == d.want
	}
	for _, w := range d.ids {
		if w.Sum() == d.want {
			return true
		}
	}
	return false
}

// checkContentShape enforces the shapes ContentDigest relies on, in Encode
// and DecodeTree alike: content blobs and a content hash only on a file
// with content of its own (not a hard link), and a content hash exactly
// when there are two or more content blobs. A tree that carried both a
// blob ID and a hash for one file would give it two identities, which a
// hostile writer could make disagree.
func checkContentShape(n *Node) error {
	switch own := n.Type == TypeFile && n.HardLinkTo == ""; {
	case !own && (len(n.Content) > 0 || n.ContentHash != nil):
		return errors.New("content on a node that is not a file or is a hard link")
	case len(n.Content) >= 2 && n.ContentHash == nil:
		return fmt.Errorf("file of %d content blobs without a content hash", len(n.Content))
	case len(n.Content) < 2 && n.ContentHash != nil:
		return fmt.Errorf("file of %d content blobs with a content hash (only a file of two or more has one)", len(n.Content))
	}
	return nil
}
