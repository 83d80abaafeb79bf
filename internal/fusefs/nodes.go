package fusefs

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
)

// entry is what every node below a snapshot directory shares: the tree
// node that describes it.
type entry struct {
	fs.Inode
	info
}

type info struct {
	fsys *FS
	snap *repository.Snapshot
	node snapshot.Node
}

// typeBits is the S_IF* file type of a node type.
func typeBits(t snapshot.NodeType) uint32 {
	switch t {
	case snapshot.TypeDir:
		return fuse.S_IFDIR
	case snapshot.TypeSymlink:
		return fuse.S_IFLNK
	case snapshot.TypeFIFO:
		return fuse.S_IFIFO
	case snapshot.TypeCharDev:
		return syscall.S_IFCHR
	case snapshot.TypeBlkDev:
		return syscall.S_IFBLK
	case snapshot.TypeSocket:
		return syscall.S_IFSOCK
	}
	return fuse.S_IFREG
}

func (e *entry) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(&out.Attr, &e.node)
	return 0
}

func fillAttr(a *fuse.Attr, n *snapshot.Node) {
	a.Mode = typeBits(n.Type) | n.Mode&0o7777
	a.Size = n.Size
	if n.Type == snapshot.TypeSymlink {
		a.Size = uint64(len(n.LinkTarget))
	}
	a.Blocks = (a.Size + 511) / 512
	a.Owner = fuse.Owner{Uid: n.UID, Gid: n.GID}
	a.Rdev = uint32(n.Rdev)
	a.Nlink = 1
	m, c := n.MTime, n.CTime
	if c.IsZero() {
		c = m
	}
	if !m.IsZero() {
		a.SetTimes(&m, &m, &c)
	}
}

func (e *entry) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	for _, x := range e.node.Xattrs {
		if x.Name == attr {
			if len(dest) < len(x.Value) {
				return uint32(len(x.Value)), syscall.ERANGE
			}
			return uint32(copy(dest, x.Value)), 0
		}
	}
	return 0, syscall.ENODATA
}

func (e *entry) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	var b []byte
	for _, x := range e.node.Xattrs {
		b = append(append(b, x.Name...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// treeDir is a directory of a snapshot; root marks the snapshot's own
// directory, where the snapshot's bound is checked first.
type treeDir struct {
	entry
	id   blob.ID
	root bool
}

var (
	_ = (fs.NodeLookuper)((*treeDir)(nil))
	_ = (fs.NodeReaddirer)((*treeDir)(nil))
)

func (d *treeDir) load(ctx context.Context) (*snapshot.Tree, syscall.Errno) {
	if err := d.fsys.check(ctx, d.snap); err != nil {
		return nil, syscall.EIO
	}
	t, err := d.fsys.tree(ctx, d.snap, d.id)
	if err != nil {
		return nil, syscall.EIO
	}
	return t, 0
}

func (d *treeDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	t, errno := d.load(ctx)
	if errno != 0 {
		return nil, errno
	}
	list := make([]fuse.DirEntry, 0, len(t.Nodes))
	for i := range t.Nodes {
		list = append(list, fuse.DirEntry{Name: t.Nodes[i].Name, Mode: typeBits(t.Nodes[i].Type)})
	}
	return fs.NewListDirStream(list), 0
}

func (d *treeDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, errno := d.load(ctx)
	if errno != 0 {
		return nil, errno
	}
	i, found := findNode(t, name)
	if !found {
		return nil, syscall.ENOENT
	}
	n := t.Nodes[i]
	if ch := d.GetChild(name); ch != nil {
		fillAttr(&out.Attr, &n)
		return ch, 0
	}
	base := info{fsys: d.fsys, snap: d.snap, node: n}
	var child fs.InodeEmbedder
	switch n.Type {
	case snapshot.TypeDir:
		if n.Subtree == nil {
			return nil, syscall.EIO
		}
		child = &treeDir{entry: entry{info: base}, id: *n.Subtree}
	case snapshot.TypeFile:
		content := n
		if n.HardLinkTo != "" {
			// A hard link's content is its first path's.
			target, err := walker.FindNode(repository.ReadFor(ctx, d.snap.Signer()), d.fsys.repo, d.snap.File.Statement.Root, n.HardLinkTo)
			if err != nil || target.Type != snapshot.TypeFile {
				d.fsys.warn("snapshot " + d.snap.ID.Short() + ": hard link target of " + name + " is missing")
				return nil, syscall.EIO
			}
			content = *target
			base.node.Size = target.Size
		}
		child = &fileNode{entry: entry{info: base}, content: content}
	case snapshot.TypeSymlink:
		child = &linkNode{entry{info: base}}
	default:
		child = &entry{info: base}
	}
	fillAttr(&out.Attr, &base.node)
	return d.NewInode(ctx, child, fs.StableAttr{Mode: typeBits(n.Type)}), 0
}

func findNode(t *snapshot.Tree, name string) (int, bool) {
	lo, hi := 0, len(t.Nodes)
	for lo < hi {
		m := (lo + hi) / 2
		if t.Nodes[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(t.Nodes) && t.Nodes[lo].Name == name
}

type linkNode struct{ entry }

var _ = (fs.NodeReadlinker)((*linkNode)(nil))

func (l *linkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(l.node.LinkTarget), 0
}

// fileNode is a regular file, read lazily: its chunks are loaded as reads
// reach them (through the FS cache), and their plaintext lengths, which
// trees do not record, are learnt on the way.
type fileNode struct {
	entry
	content snapshot.Node // the node holding the content (a hard link's target)

	mu   sync.Mutex
	ends []uint64 // ends[i]: end of chunk i in the data stream, known for a prefix
}

var (
	_ = (fs.NodeOpener)((*fileNode)(nil))
	_ = (fs.NodeReader)((*fileNode)(nil))
)

func (f *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_APPEND|syscall.O_TRUNC) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (f *fileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := f.readAt(ctx, dest, off)
	if err != nil {
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// readAt fills dest from the logical offset off: holes of a sparse file
// (between its extents) read as zeros.
func (f *fileNode) readAt(ctx context.Context, dest []byte, off int64) (int, error) {
	size := int64(f.content.Size)
	if off >= size {
		return 0, nil
	}
	dest = dest[:min(int64(len(dest)), size-off)]
	if len(f.content.Extents) == 0 {
		return len(dest), f.readData(ctx, dest, uint64(off))
	}
	clear(dest)
	var stream int64 // data-stream offset of the current extent
	for _, x := range f.content.Extents {
		lo, hi := max(off, x.Offset), min(off+int64(len(dest)), x.Offset+x.Length)
		if lo < hi {
			if err := f.readData(ctx, dest[lo-off:hi-off], uint64(stream+lo-x.Offset)); err != nil {
				return 0, err
			}
		}
		stream += x.Length
	}
	return len(dest), nil
}

// readData fills dest from the concatenated chunks at stream offset pos.
func (f *fileNode) readData(ctx context.Context, dest []byte, pos uint64) error {
	for len(dest) > 0 {
		i, start, err := f.chunkAt(ctx, pos)
		if err != nil {
			return err
		}
		b, err := f.fsys.chunk(ctx, f.snap, f.content.Content[i])
		if err != nil {
			return err
		}
		n := copy(dest, b[pos-start:])
		dest, pos = dest[n:], pos+uint64(n)
	}
	return nil
}

// chunkAt returns the chunk holding stream offset pos and its start,
// loading chunks in order until their lengths reach pos.
func (f *fileNode) chunkAt(ctx context.Context, pos uint64) (int, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		i := sortSearch(f.ends, pos)
		if i < len(f.ends) {
			start := uint64(0)
			if i > 0 {
				start = f.ends[i-1]
			}
			return i, start, nil
		}
		next := len(f.ends)
		if next >= len(f.content.Content) {
			return 0, 0, errShort
		}
		b, err := f.fsys.chunk(ctx, f.snap, f.content.Content[next])
		if err != nil {
			return 0, 0, err
		}
		if len(b) == 0 {
			return 0, 0, errShort
		}
		end := uint64(len(b))
		if next > 0 {
			end += f.ends[next-1]
		}
		f.ends = append(f.ends, end)
	}
}

// sortSearch is the first i with ends[i] > pos.
func sortSearch(ends []uint64, pos uint64) int {
	lo, hi := 0, len(ends)
	for lo < hi {
		m := (lo + hi) / 2
		if ends[m] > pos {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

type shortError struct{}

func (shortError) Error() string { return "file content is shorter than its size" }

var errShort error = shortError{}
