package snapshot_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func idp(b byte) *blob.ID { id := blob.ID{b, b, b}; return &id }

// sampleTree has every kind of node and every optional field.
func sampleTree() *snapshot.Tree {
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	t := &snapshot.Tree{Nodes: []snapshot.Node{
		{Name: "dir", Type: snapshot.TypeDir, Mode: 0o755, UID: 1000, GID: 1000, User: "alice", Group: "staff", MTime: mt, CTime: mt, Subtree: idp(1)},
		{Name: "file", Type: snapshot.TypeFile, Mode: 0o4644, UID: 0, GID: 0, MTime: mt, CTime: mt.Add(time.Second), Size: 3 << 20, Links: 2,
			Content: []blob.ID{{1}, {2}, {3}}, ContentHash: idp(9),
			Xattrs: []snapshot.Xattr{{Name: "system.posix_acl_access", Value: []byte{2, 0, 0, 0, 1, 0, 6, 0}}, {Name: "user.empty", Value: nil}, {Name: "user.mime", Value: []byte("text/plain")}}},
		{Name: "hardlink", Type: snapshot.TypeFile, Mode: 0o644, Links: 2, Size: 3 << 20, HardLinkTo: "file", MTime: mt},
		{Name: "link", Type: snapshot.TypeSymlink, Mode: 0o777, LinkTarget: "../\xff\xfe/target", MTime: mt},
		{Name: "null", Type: snapshot.TypeCharDev, Mode: 0o666, Rdev: 0x103},
		{Name: "pipe", Type: snapshot.TypeFIFO, Mode: 0o600},
		{Name: "sda", Type: snapshot.TypeBlkDev, Mode: 0o660, Rdev: 0x800},
		{Name: "sock", Type: snapshot.TypeSocket, Mode: 0o755},
		{Name: "sparse", Type: snapshot.TypeFile, Mode: 0o600, Size: 1 << 40,
			Extents: []snapshot.Extent{{Offset: 0, Length: 4096}, {Offset: 1 << 30, Length: 1 << 20}, {Offset: 1<<40 - 10, Length: 10}},
			Content: []blob.ID{{4}, {5}}, ContentHash: idp(8), MTime: time.Unix(-86400*365*100, 5).UTC()},
		{Name: "\xff\xfe latin-1 caf\xe9", Type: snapshot.TypeFile, Mode: 0o644, MTime: time.Unix(0, 0).UTC()},
		{Name: "\u00e9t\u00e9 utf-8", Type: snapshot.TypeFile, Mode: 0o644, MTime: time.Unix(0, 1).UTC(), CTime: time.Unix(-1, 999999999).UTC()},
	}}
	t.Sort()
	return t
}

// equalNode compares what the tree encoding keeps: everything but ATime,
// Inode and Device.
func equalNode(t *testing.T, got, want *snapshot.Node) {
	t.Helper()
	w := *want
	w.ATime, w.Inode, w.Device = time.Time{}, 0, 0
	g := *got
	if !g.MTime.Equal(w.MTime) || g.MTime.IsZero() != w.MTime.IsZero() || !g.CTime.Equal(w.CTime) || g.CTime.IsZero() != w.CTime.IsZero() {
		t.Errorf("%q: times %v %v, want %v %v", w.Name, g.MTime, g.CTime, w.MTime, w.CTime)
	}
	g.MTime, g.CTime, w.MTime, w.CTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(g.Xattrs) == len(w.Xattrs) {
		for i := range g.Xattrs {
			if !bytes.Equal(g.Xattrs[i].Value, w.Xattrs[i].Value) || g.Xattrs[i].Name != w.Xattrs[i].Name {
				t.Errorf("%q: xattr %d differs", w.Name, i)
			}
		}
		g.Xattrs, w.Xattrs = nil, nil
	}
	if gs, ws := fmtNode(&g), fmtNode(&w); gs != ws {
		t.Errorf("node differs:\n got %s\nwant %s", gs, ws)
	}
}

func fmtNode(n *snapshot.Node) string {
	var b strings.Builder
	b.WriteString(strings.Join([]string{n.Name, n.Type.String(), n.User, n.Group, n.LinkTarget, n.HardLinkTo}, "|"))
	for _, v := range []uint64{uint64(n.Mode), uint64(n.UID), uint64(n.GID), n.Size, n.Links, n.Rdev, n.Inode, n.Device, uint64(len(n.Xattrs))} {
		b.WriteString("|")
		b.WriteString(strings.TrimSpace(string(binary.AppendUvarint(nil, v))))
	}
	for _, e := range n.Extents {
		b.WriteString("|e")
		b.Write(binary.AppendVarint(binary.AppendVarint(nil, e.Offset), e.Length))
	}
	for _, id := range n.Content {
		b.WriteString("|c" + id.String())
	}
	if n.Subtree != nil {
		b.WriteString("|s" + n.Subtree.String())
	}
	if n.ContentHash != nil {
		b.WriteString("|h" + n.ContentHash.String())
	}
	return b.String()
}

func TestTreeRoundTrip(t *testing.T) {
	tree := sampleTree()
	enc, err := tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(enc, []byte("CRT1")) {
		t.Fatalf("tree starts %q", enc[:4])
	}
	got, err := snapshot.DecodeTree(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != len(tree.Nodes) {
		t.Fatalf("%d nodes, want %d", len(got.Nodes), len(tree.Nodes))
	}
	for i := range got.Nodes {
		equalNode(t, &got.Nodes[i], &tree.Nodes[i])
	}
	re, err := got.Encode()
	if err != nil || !bytes.Equal(re, enc) {
		t.Fatalf("decoded tree does not re-encode to the same bytes (%v)", err)
	}
	empty, _ := (&snapshot.Tree{}).Encode()
	if et, err := snapshot.DecodeTree(empty); err != nil || len(et.Nodes) != 0 {
		t.Fatalf("empty tree: %v", err)
	}
}

// TestTreeTimes: the zero time and the Unix epoch are different times, and
// both survive a round trip (a file whose mtime is 1970-01-01T00:00:00Z
// must not come back as "no time", which restore would leave unset).
func TestTreeTimes(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(-1, 0),
		time.Unix(-1, 999999999),
		time.Unix(1, 0),
		time.Unix(1700000000, 999999999),
		time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		tree := &snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, MTime: tm, CTime: tm}}}
		enc, err := tree.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := snapshot.DecodeTree(enc)
		if err != nil {
			t.Fatalf("%v: %v", tm, err)
		}
		n := got.Nodes[0]
		if n.MTime.IsZero() != tm.IsZero() || !n.MTime.Equal(tm) || !n.CTime.Equal(tm) {
			t.Errorf("time %v (zero %v) came back as %v (zero %v)", tm, tm.IsZero(), n.MTime, n.MTime.IsZero())
		}
	}
}

// TestTreeDeterministic (R20): the same tree encodes to the same bytes,
// whatever the order its nodes were gathered in, the time zone of its
// times, and the fields the encoding leaves out (atime, inode, device).
func TestTreeDeterministic(t *testing.T) {
	a, _ := sampleTree().Encode()
	b, _ := sampleTree().Encode()
	if !bytes.Equal(a, b) {
		t.Fatal("two encodings of the same tree differ")
	}
	shuffled := sampleTree()
	n := shuffled.Nodes
	for i := range n {
		j := (i*7 + 3) % len(n)
		n[i], n[j] = n[j], n[i]
	}
	for i := range n {
		n[i].ATime = time.Now()
		n[i].Inode, n[i].Device = uint64(i+100), 42
		n[i].MTime = n[i].MTime.In(time.FixedZone("X", 5*3600))
	}
	if _, err := shuffled.Encode(); err == nil {
		t.Fatal("Encode accepted an unsorted tree")
	}
	shuffled.Sort()
	c, err := shuffled.Encode()
	if err != nil || !bytes.Equal(a, c) {
		t.Fatalf("reordered tree encodes differently (%v)", err)
	}
}

func TestTreeEncodeRefuses(t *testing.T) {
	file := func(name string) snapshot.Node {
		return snapshot.Node{Name: name, Type: snapshot.TypeFile, Mode: 0o644}
	}
	long := strings.Repeat("x", 5000)
	cases := map[string][]snapshot.Node{
		"duplicate":            {file("a"), file("a")},
		"unsorted":             {file("b"), file("a")},
		"empty name":           {file("")},
		"dot":                  {file(".")},
		"dotdot":               {file("..")},
		"slash":                {file("a/b")},
		"nul":                  {file("a\x00b")},
		"name too long":        {file(long)},
		"unknown type":         {{Name: "x", Type: 8}},
		"type zero":            {{Name: "x"}},
		"dir without subtree":  {{Name: "d", Type: snapshot.TypeDir}},
		"mode beyond 07777":    {{Name: "x", Type: snapshot.TypeFile, Mode: 0o10644}},
		"user too long":        {{Name: "x", Type: snapshot.TypeFile, User: long}},
		"xattr name too long":  {{Name: "x", Type: snapshot.TypeFile, Xattrs: []snapshot.Xattr{{Name: long}}}},
		"xattr value too long": {{Name: "x", Type: snapshot.TypeFile, Xattrs: []snapshot.Xattr{{Name: "user.a", Value: make([]byte, snapshot.MaxXattrValue+1)}}}},
		"too many xattrs":      {{Name: "x", Type: snapshot.TypeFile, Xattrs: make([]snapshot.Xattr, snapshot.MaxXattrs+1)}},
		"negative extent":      {{Name: "x", Type: snapshot.TypeFile, Extents: []snapshot.Extent{{Offset: -1, Length: 1}}}},
		"negative length":      {{Name: "x", Type: snapshot.TypeFile, Extents: []snapshot.Extent{{Offset: 0, Length: -1}}}},
		"one chunk and a hash": {{Name: "x", Type: snapshot.TypeFile, Content: []blob.ID{{1}}, ContentHash: idp(1)}},
		"no chunk and a hash":  {{Name: "x", Type: snapshot.TypeFile, ContentHash: idp(1)}},
		"two chunks, no hash":  {{Name: "x", Type: snapshot.TypeFile, Content: []blob.ID{{1}, {2}}}},
		"hard link content":    {{Name: "x", Type: snapshot.TypeFile, HardLinkTo: "y", Content: []blob.ID{{1}}}},
		"symlink content":      {{Name: "x", Type: snapshot.TypeSymlink, Content: []blob.ID{{1}}}},
		"directory hash":       {{Name: "d", Type: snapshot.TypeDir, Subtree: idp(1), ContentHash: idp(2)}},
	}
	for name, nodes := range cases {
		if _, err := (&snapshot.Tree{Nodes: nodes}).Encode(); err == nil {
			t.Errorf("%s: Encode accepted a tree DecodeTree would refuse", name)
		}
	}
}

// rawNode encodes one node by hand so tests can produce what Encode
// refuses.
type rawNode struct {
	name  string
	typ   byte
	mode  uint64
	uid   uint64
	flags byte
	sec   int64
	nsec  uint64
	// chunks content IDs ({1}, {2}, …) and a hard-link path, before the
	// flags; tail follows the flags (subtree, content hash).
	chunks   int
	hardlink string
	tail     []byte
}

func (r rawNode) bytes() []byte {
	b := binary.AppendUvarint(nil, uint64(len(r.name)))
	b = append(b, r.name...)
	b = append(b, r.typ)
	b = binary.AppendUvarint(b, r.mode)
	b = binary.AppendUvarint(b, r.uid)
	b = binary.AppendUvarint(b, 0)      // gid
	b = append(b, 0, 0)                 // user, group
	b = binary.AppendVarint(b, r.sec)   // mtime sec
	b = binary.AppendUvarint(b, r.nsec) // mtime nsec
	b = append(b, 0, 0)                 // ctime
	b = append(b, 0, 0, 0)              // size, links, rdev
	b = append(b, 0, 0, 0)              // target, xattrs, extents
	b = binary.AppendUvarint(b, uint64(len(r.hardlink)))
	b = append(b, r.hardlink...)
	b = binary.AppendUvarint(b, uint64(r.chunks))
	for i := range r.chunks {
		id := blob.ID{byte(i + 1)}
		b = append(b, id[:]...)
	}
	b = append(b, r.flags)
	return append(b, r.tail...)
}

func rawTree(nodes ...rawNode) []byte {
	b := binary.AppendUvarint([]byte("CRT1"), uint64(len(nodes)))
	for _, n := range nodes {
		b = append(b, n.bytes()...)
	}
	return b
}

func TestDecodeTreeRefuses(t *testing.T) {
	ok := rawNode{name: "a", typ: 1, mode: 0o644}
	for _, n := range []rawNode{ok, {name: "a", typ: 1, chunks: 1}, {name: "a", typ: 1, chunks: 2, flags: 2, tail: make([]byte, 32)},
		{name: "a", typ: 1, hardlink: "b"}, {name: "a", typ: 2, flags: 1, tail: make([]byte, 32)}} {
		if _, err := snapshot.DecodeTree(rawTree(n)); err != nil {
			t.Fatalf("hand-made node %+v: %v", n, err)
		}
	}
	mod := func(f func(n *rawNode)) []byte { n := ok; f(&n); return rawTree(n) }
	good, _ := sampleTree().Encode()
	cases := map[string][]byte{
		"bad magic":           append([]byte("CRT2"), good[4:]...),
		"empty":               nil,
		"trailing":            append(bytes.Clone(good), 0),
		"truncated":           good[:len(good)-1],
		"count lies":          binary.AppendUvarint([]byte("CRT1"), 5),
		"dot":                 mod(func(n *rawNode) { n.name = "." }),
		"dotdot":              mod(func(n *rawNode) { n.name = ".." }),
		"empty name":          mod(func(n *rawNode) { n.name = "" }),
		"slash":               mod(func(n *rawNode) { n.name = "../etc/passwd" }),
		"nul":                 mod(func(n *rawNode) { n.name = "a\x00" }),
		"duplicate":           rawTree(ok, ok),
		"unsorted":            rawTree(rawNode{name: "b", typ: 1}, ok),
		"unknown type":        mod(func(n *rawNode) { n.typ = 8 }),
		"dir without subtree": mod(func(n *rawNode) { n.typ = 2 }),
		"unknown flag":        mod(func(n *rawNode) { n.flags = 4 }),
		"subtree missing":     mod(func(n *rawNode) { n.flags = 1 }),
		"nsec out of range":   mod(func(n *rawNode) { n.nsec = 1e9 + 1 }),
		"mode beyond 07777":   mod(func(n *rawNode) { n.mode = 0o100644 }),
		"uid beyond 32 bits":  mod(func(n *rawNode) { n.uid = 1 << 32 }),
		"time without nsec":   mod(func(n *rawNode) { n.sec = 5 }),
		"zero time as a time": mod(func(n *rawNode) { n.sec, n.nsec = -62135596800, 1 }),
		"non-minimal varint":  []byte("CRT1\x80\x00"),
		"hash flag, no hash":  mod(func(n *rawNode) { n.chunks, n.flags = 2, 2 }),
	}
	for name, b := range cases {
		if _, err := snapshot.DecodeTree(b); !errors.Is(err, snapshot.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

// TestDecodeTreeRefusesContentShapes: content blobs and a content hash
// only on a file with content of its own, and a content hash exactly when
// there are two or more blobs (a hostile writer's tree could otherwise
// give a file two identities that disagree).
func TestDecodeTreeRefusesContentShapes(t *testing.T) {
	ok := rawNode{name: "a", typ: 1, mode: 0o644}
	mod := func(f func(n *rawNode)) []byte { n := ok; f(&n); return rawTree(n) }
	cases := map[string][]byte{
		"one chunk and a hash":   mod(func(n *rawNode) { n.chunks, n.flags, n.tail = 1, 2, make([]byte, 32) }),
		"no chunk and a hash":    mod(func(n *rawNode) { n.flags, n.tail = 2, make([]byte, 32) }),
		"two chunks, no hash":    mod(func(n *rawNode) { n.chunks = 2 }),
		"many chunks, no hash":   mod(func(n *rawNode) { n.chunks = 9 }),
		"content of a hard link": mod(func(n *rawNode) { n.hardlink, n.chunks = "b", 1 }),
		"hash of a hard link":    mod(func(n *rawNode) { n.hardlink, n.chunks, n.flags, n.tail = "b", 2, 2, make([]byte, 32) }),
		"content of a symlink":   mod(func(n *rawNode) { n.typ, n.chunks = 3, 1 }),
		"hash of a directory":    mod(func(n *rawNode) { n.typ, n.flags, n.tail = 2, 3, make([]byte, 64) }),
		"content of a directory": mod(func(n *rawNode) { n.typ, n.chunks, n.flags, n.tail = 2, 1, 1, make([]byte, 32) }),
	}
	for name, b := range cases {
		_, err := snapshot.DecodeTree(b)
		if !errors.Is(err, snapshot.ErrFormat) || !strings.Contains(err.Error(), "content") {
			t.Errorf("%s: err = %v, want ErrFormat about the content", name, err)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "...", ".a", "a.", "\xff", "with space", strings.Repeat("x", snapshot.MaxNameLen)} {
		if err := snapshot.ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "/", "a/", "/a", "a\x00", strings.Repeat("x", snapshot.MaxNameLen+1)} {
		if err := snapshot.ValidName(n); err == nil {
			t.Errorf("ValidName(%q) accepted", n)
		}
	}
}

// FuzzDecodeTree: never panics; an accepted tree has valid, sorted names
// and re-encodes to exactly its bytes (the encoding is canonical, so a tree
// blob's ID is a function of the tree).
func FuzzDecodeTree(f *testing.F) {
	enc, _ := sampleTree().Encode()
	f.Add(enc)
	empty, _ := (&snapshot.Tree{}).Encode()
	f.Add(empty)
	f.Add(rawTree(rawNode{name: "a", typ: 1, mode: 0o644}, rawNode{name: "b", typ: 2, flags: 1, tail: make([]byte, 32)}))
	// Content shapes at the edge of what is accepted: one blob without a
	// hash, two with one; and the refused ones, a mutation away.
	f.Add(rawTree(rawNode{name: "a", typ: 1, chunks: 1}, rawNode{name: "b", typ: 1, chunks: 2, flags: 2, tail: make([]byte, 32)}))
	f.Add(rawTree(rawNode{name: "a", typ: 1, chunks: 1, flags: 2, tail: make([]byte, 32)}))
	f.Add(rawTree(rawNode{name: "a", typ: 1, chunks: 2}))
	f.Add(rawTree(rawNode{name: "a", typ: 1, hardlink: "b", chunks: 1}))
	f.Add(rawTree(rawNode{name: "b", typ: 2, flags: 3, tail: make([]byte, 64)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := snapshot.DecodeTree(b)
		if err != nil {
			return
		}
		for i, n := range tree.Nodes {
			if snapshot.ValidName(n.Name) != nil || i > 0 && tree.Nodes[i-1].Name >= n.Name {
				t.Fatalf("accepted name %q", n.Name)
			}
			own := n.Type == snapshot.TypeFile && n.HardLinkTo == ""
			if !own && (n.Content != nil || n.ContentHash != nil) || (len(n.Content) >= 2) != (n.ContentHash != nil) {
				t.Fatalf("accepted %s %q of %d content blobs, content hash %v", n.Type, n.Name, len(n.Content), n.ContentHash != nil)
			}
		}
		re, err := tree.Encode()
		if err != nil {
			t.Fatalf("accepted tree does not encode: %v", err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("accepted tree re-encodes differently:\n in %x\nout %x", b, re)
		}
	})
}
