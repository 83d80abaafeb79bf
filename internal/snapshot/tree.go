package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
)

// ErrFormat reports malformed tree, statement or manifest bytes.
var ErrFormat = errors.New("malformed snapshot data")

// Bounds enforced when decoding (R18: stored trees are hostile input).
const (
	MaxTreeEntries = 1 << 20
	MaxNameLen     = 4096
	MaxXattrs      = 1 << 10
	MaxXattrValue  = 64 << 10
	MaxContentIDs  = 1 << 22
	MaxExtents     = 1 << 20
	treeMagic      = "CRT1"
)

// Tree is a directory's entries, sorted by name (bytewise), names unique.
type Tree struct {
	Nodes []Node
}

// Sort orders the nodes by name.
func (t *Tree) Sort() {
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
}

type enc struct{ b []byte }

func (e *enc) uv(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) sv(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)  { e.uv(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) raw(b []byte)  { e.uv(uint64(len(b))); e.b = append(e.b, b...) }
func (e *enc) id(id blob.ID) { e.b = append(e.b, id[:]...) }

// time encodes t as its Unix seconds and nanoseconds + 1, so that the zero
// time (0, 0) and the Unix epoch (0, 1) stay distinct: a file whose mtime is
// the epoch must not come back as "no time", which restore leaves unset.
func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.sv(0)
		e.uv(0)
		return
	}
	e.sv(t.Unix())
	e.uv(uint64(t.Nanosecond()) + 1)
}

// Encode returns the tree's canonical encoding. The same tree always
// encodes to the same bytes (R20): nodes sorted by name, fields in fixed
// order, no map iteration, no access times, no inode or device numbers.
//
//	"CRT1" | count uvarint | nodes
//
// Node: name str | type u8 | mode uv | uid uv | gid uv | user str | group str |
// mtime (sv sec, uv nsec+1; 0, 0 = no time) | ctime | size uv | links uv | rdev uv | target str |
// xattrs uv × (name str, value bytes) | extents uv × (offset uv, length uv) |
// hardlink str | content uv × id[32] | flags u8 (1 subtree, 2 content hash) |
// [subtree id] | [content hash]. str/bytes are uvarint length + bytes;
// varints are minimal. A content hash is present exactly when there are two
// or more content IDs (checkContentShape). Encode refuses a node
// DecodeTree would refuse, so no tree is stored that restore cannot read.
func (t *Tree) Encode() ([]byte, error) {
	if len(t.Nodes) > MaxTreeEntries {
		return nil, fmt.Errorf("tree of %d entries (limit %d)", len(t.Nodes), MaxTreeEntries)
	}
	e := &enc{b: make([]byte, 0, 128*len(t.Nodes)+8)}
	e.b = append(e.b, treeMagic...)
	e.uv(uint64(len(t.Nodes)))
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("tree not sorted or has duplicate name %q", n.Name)
		}
		if err := checkNode(n); err != nil {
			return nil, fmt.Errorf("node %q: %w", n.Name, err)
		}
		e.str(n.Name)
		e.b = append(e.b, byte(n.Type))
		e.uv(uint64(n.Mode))
		e.uv(uint64(n.UID))
		e.uv(uint64(n.GID))
		e.str(n.User)
		e.str(n.Group)
		e.time(n.MTime)
		e.time(n.CTime)
		e.uv(n.Size)
		e.uv(n.Links)
		e.uv(n.Rdev)
		e.str(n.LinkTarget)
		e.uv(uint64(len(n.Xattrs)))
		for _, x := range n.Xattrs {
			e.str(x.Name)
			e.raw(x.Value)
		}
		e.uv(uint64(len(n.Extents)))
		for _, x := range n.Extents {
			e.uv(uint64(x.Offset))
			e.uv(uint64(x.Length))
		}
		e.str(n.HardLinkTo)
		e.uv(uint64(len(n.Content)))
		for _, id := range n.Content {
			e.id(id)
		}
		var flags byte
		if n.Subtree != nil {
			flags |= 1
		}
		if n.ContentHash != nil {
			flags |= 2
		}
		e.b = append(e.b, flags)
		if n.Subtree != nil {
			e.id(*n.Subtree)
		}
		if n.ContentHash != nil {
			e.id(*n.ContentHash)
		}
	}
	return e.b, nil
}

// Field limits shared by Encode and DecodeTree.
const (
	maxUserLen      = 256
	maxXattrNameLen = 255
	maxTargetLen    = MaxNameLen * 4
	maxHardLinkLen  = MaxNameLen * 16
	maxExtentValue  = 1 << 62
)

// checkNode enforces on encoding what DecodeTree enforces on decoding.
func checkNode(n *Node) error {
	if err := ValidName(n.Name); err != nil {
		return err
	}
	switch {
	case n.Type < TypeFile || n.Type > TypeSocket:
		return fmt.Errorf("unknown type %d", n.Type)
	case n.Type == TypeDir && n.Subtree == nil:
		return errors.New("directory without subtree")
	case n.Mode > 07777:
		return fmt.Errorf("mode %#o has bits beyond 07777", n.Mode)
	case len(n.User) > maxUserLen || len(n.Group) > maxUserLen:
		return fmt.Errorf("user or group name longer than %d bytes", maxUserLen)
	case len(n.LinkTarget) > maxTargetLen:
		return fmt.Errorf("link target of %d bytes (limit %d)", len(n.LinkTarget), maxTargetLen)
	case len(n.HardLinkTo) > maxHardLinkLen:
		return fmt.Errorf("hard link path of %d bytes (limit %d)", len(n.HardLinkTo), maxHardLinkLen)
	case len(n.Xattrs) > MaxXattrs:
		return fmt.Errorf("%d xattrs (limit %d)", len(n.Xattrs), MaxXattrs)
	case len(n.Extents) > MaxExtents:
		return fmt.Errorf("%d extents (limit %d)", len(n.Extents), MaxExtents)
	case len(n.Content) > MaxContentIDs:
		return fmt.Errorf("%d content blobs (limit %d)", len(n.Content), MaxContentIDs)
	}
	if err := checkContentShape(n); err != nil {
		return err
	}
	for _, x := range n.Xattrs {
		if len(x.Name) > maxXattrNameLen || len(x.Value) > MaxXattrValue {
			return fmt.Errorf("xattr %q: name or value too long", x.Name)
		}
	}
	for _, x := range n.Extents {
		if x.Offset < 0 || x.Length < 0 || x.Offset > maxExtentValue || x.Length > maxExtentValue {
			return fmt.Errorf("extent (%d, %d) out of range", x.Offset, x.Length)
		}
	}
	return nil
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, a...))
	}
}

func (d *dec) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != uvarintLen(v) {
		d.fail("bad or non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// u32 reads a uvarint that must fit 32 bits.
func (d *dec) u32() uint32 {
	v := d.uv()
	if v > math.MaxUint32 {
		d.fail("value %d exceeds 32 bits", v)
		return 0
	}
	return uint32(v)
}

func (d *dec) sv() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || n != len(binary.AppendVarint(nil, v)) {
		d.fail("bad or non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes(max int) []byte {
	l := d.uv()
	if d.err != nil {
		return nil
	}
	if l > uint64(max) || l > uint64(len(d.b)) {
		d.fail("field of %d bytes (limit %d, %d left)", l, max, len(d.b))
		return nil
	}
	out := d.b[:l]
	d.b = d.b[l:]
	return out
}

func (d *dec) u8() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) id() blob.ID {
	var id blob.ID
	if d.err != nil {
		return id
	}
	if len(d.b) < 32 {
		d.fail("truncated ID")
		return id
	}
	copy(id[:], d.b)
	d.b = d.b[32:]
	return id
}

func (d *dec) time() time.Time {
	s, ns := d.sv(), d.uv()
	if d.err != nil {
		return time.Time{}
	}
	if ns == 0 {
		if s != 0 {
			d.fail("time without nanoseconds field")
		}
		return time.Time{}
	}
	if ns > 1e9 {
		d.fail("nanoseconds %d out of range", ns-1)
		return time.Time{}
	}
	t := time.Unix(s, int64(ns-1)).UTC()
	if t.IsZero() {
		d.fail("zero time encoded as a time")
	}
	return t
}

func (d *dec) count(max int, minSize int) int {
	c := d.uv()
	if d.err != nil {
		return 0
	}
	if c > uint64(max) || c*uint64(minSize) > uint64(len(d.b)) {
		d.fail("count %d exceeds limit or remaining data", c)
		return 0
	}
	return int(c)
}

// ValidName reports whether a node name is safe to create on restore (R18).
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("name %q", name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("name of %d bytes", len(name))
	case bytes.IndexByte([]byte(name), '/') >= 0:
		return fmt.Errorf("name %q contains '/'", name)
	case bytes.IndexByte([]byte(name), 0) >= 0:
		return fmt.Errorf("name %q contains NUL", name)
	}
	return nil
}

// DecodeTree decodes and validates a tree blob: names valid (R18), sorted
// and unique, types known, counts bounded.
func DecodeTree(buf []byte) (*Tree, error) {
	if len(buf) < 4 || string(buf[:4]) != treeMagic {
		return nil, fmt.Errorf("%w: bad tree magic", ErrFormat)
	}
	d := &dec{b: buf[4:]}
	n := d.count(MaxTreeEntries, 20)
	t := &Tree{Nodes: make([]Node, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		var nd Node
		nd.Name = string(d.bytes(MaxNameLen))
		if err := ValidName(nd.Name); err != nil && d.err == nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrFormat, i, err)
		}
		if i > 0 && d.err == nil && t.Nodes[i-1].Name >= nd.Name {
			return nil, fmt.Errorf("%w: entry %q out of order or duplicate", ErrFormat, nd.Name)
		}
		nd.Type = NodeType(d.u8())
		if d.err == nil && (nd.Type < TypeFile || nd.Type > TypeSocket) {
			return nil, fmt.Errorf("%w: entry %q has unknown type %d", ErrFormat, nd.Name, nd.Type)
		}
		if nd.Mode = d.u32(); nd.Mode > 07777 {
			d.fail("entry %q: mode %#o has bits beyond 07777", nd.Name, nd.Mode)
		}
		nd.UID = d.u32()
		nd.GID = d.u32()
		nd.User = string(d.bytes(maxUserLen))
		nd.Group = string(d.bytes(maxUserLen))
		nd.MTime = d.time()
		nd.CTime = d.time()
		nd.Size = d.uv()
		nd.Links = d.uv()
		nd.Rdev = d.uv()
		nd.LinkTarget = string(d.bytes(maxTargetLen))
		if c := d.count(MaxXattrs, 2); c > 0 {
			nd.Xattrs = make([]Xattr, c)
			for j := range nd.Xattrs {
				nd.Xattrs[j].Name = string(d.bytes(maxXattrNameLen))
				nd.Xattrs[j].Value = append([]byte(nil), d.bytes(MaxXattrValue)...)
			}
		}
		if c := d.count(MaxExtents, 2); c > 0 {
			nd.Extents = make([]Extent, c)
			for j := range nd.Extents {
				off, l := d.uv(), d.uv()
				if off > maxExtentValue || l > maxExtentValue {
					d.fail("extent out of range")
				}
				nd.Extents[j] = Extent{Offset: int64(off), Length: int64(l)}
			}
		}
		nd.HardLinkTo = string(d.bytes(maxHardLinkLen))
		if c := d.count(MaxContentIDs, 32); c > 0 {
			nd.Content = make([]blob.ID, c)
			for j := range nd.Content {
				nd.Content[j] = d.id()
			}
		}
		flags := d.u8()
		if flags&^3 != 0 {
			d.fail("unknown node flags %#x", flags)
		}
		if flags&1 != 0 {
			id := d.id()
			nd.Subtree = &id
		}
		if flags&2 != 0 {
			id := d.id()
			nd.ContentHash = &id
		}
		if d.err == nil && nd.Type == TypeDir && nd.Subtree == nil {
			d.fail("directory %q without subtree", nd.Name)
		}
		if d.err == nil {
			if err := checkContentShape(&nd); err != nil {
				d.fail("entry %q: %v", nd.Name, err)
			}
		}
		t.Nodes = append(t.Nodes, nd)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in tree", ErrFormat, len(d.b))
	}
	return t, nil
}
