package snapshot

import (
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
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

	Content     []blob.ID // data blob IDs, in order (files)
	Subtree     *blob.ID  // tree blob ID (directories)
	ContentHash *blob.ID  // SHA-256 of the whole logical content (files), checked by restore --verify
}
