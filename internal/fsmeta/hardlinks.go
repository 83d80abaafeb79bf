package fsmeta

import (
	"sync"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// HardLinks remembers, during one backup, the first path seen for every
// non-directory with more than one link, so later occurrences can be stored
// as snapshot.Node.HardLinkTo. It is safe for concurrent use, but "first"
// means first call to Link: call it in the deterministic traversal order.
type HardLinks struct {
	mu   sync.Mutex
	seen map[devIno]*linkEntry
}

type devIno struct{ dev, ino uint64 }

type linkEntry struct {
	path string
	left uint64 // occurrences still expected; the entry is dropped at 0
}

// NewHardLinks returns an empty HardLinks.
func NewHardLinks() *HardLinks {
	return &HardLinks{seen: map[devIno]*linkEntry{}}
}

// Link records n, found at path (relative to the snapshot root,
// '/'-separated, as HardLinkTo wants it). If an earlier occurrence of the
// same (device, inode) was recorded, Link returns its path and true: the
// caller stores n with HardLinkTo set and no content. Directories and nodes
// with one link are never recorded. An entry is forgotten once all its
// links have been seen, which bounds memory to hard-linked files whose
// links are not all inside the backup.
func (h *HardLinks) Link(n snapshot.Node, path string) (string, bool) {
	if n.Type == snapshot.TypeDir || n.Links < 2 {
		return "", false
	}
	k := devIno{n.Device, n.Inode}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.seen[k]; ok {
		e.left--
		if e.left == 0 {
			delete(h.seen, k)
		}
		return e.path, true
	}
	h.seen[k] = &linkEntry{path: path, left: n.Links - 1}
	return "", false
}

// Changed reports whether a file changed between two captures of it, for
// a caller that stats again after reading the content: it compares type,
// size, mtime, ctime, inode and device.
func Changed(before, after snapshot.Node) bool {
	return before.Type != after.Type ||
		before.Size != after.Size ||
		!before.MTime.Equal(after.MTime) ||
		!before.CTime.Equal(after.CTime) ||
		before.Inode != after.Inode ||
		before.Device != after.Device
}
