package archiver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// cacheKey identifies a path in the file cache without storing it:
// HMAC-SHA-256(K_cache, path), truncated.
type cacheKey [20]byte

// cachedFile is what the file cache remembers of a file's last backup.
type cachedFile struct {
	Size    uint64
	MTime   int64
	CTime   int64
	Inode   uint64
	Content []blob.ID
	Hash    blob.ID // the content hash of a file of two or more blobs (Node.SetContent); zero otherwise
	Extents []snapshot.Extent
	Xattrs  []snapshot.Xattr
	// anyInode marks an entry taken from a parent snapshot's tree, which
	// records no inode; it is never stored.
	anyInode bool
}

// fileCache is the parent of a backup: per path, the stat tuple and content.
//
// It is kept encoded, since a backup of many files holds two of them (the
// last backup's and this one's): the loaded cache file stays as its bytes
// with an offset per key, and this backup's entries are appended, encoded,
// to a buffer that save writes out as it is. That is about a third of the
// memory of a map of decoded entries.
type fileCache struct {
	key  [32]byte
	path string

	raw []byte              // the cache file as loaded, or the entries seeded
	at  map[cacheKey]uint32 // offset in raw of each entry's fields (after its key)
	// fromParent marks entries taken from a parent snapshot when there was
	// no cache file (seedFromParent), encoded into raw as a file's would be.
	fromParent bool

	mu    sync.Mutex
	enc   [][]byte // this backup's entries, encoded, in blocks of about encBlock
	count int      // entries in enc
	dirty bool     // enc differs from raw in some entry
	macs  sync.Pool
}

// encBlock is the size of the blocks a backup's cache entries are encoded
// into: one growing buffer would be copied again at every growth.
const encBlock = 1 << 20

func loadFileCache(repo *repository.Repository) *fileCache {
	fc := &fileCache{key: repo.DedupKeys().Cache}
	dir := repo.Cache().Dir()
	if dir == "" {
		return fc
	}
	// One cache per signing key: a writer and the owner on one machine do
	// not share what they know.
	fc.path = filepath.Join(dir, "files-"+shortHex(repo.Keys().SignerID()))
	buf, err := os.ReadFile(fc.path)
	if err != nil {
		return fc
	}
	if fc.at, err = indexFileCache(buf); err != nil {
		fc.at = nil // a damaged cache only costs a re-read
		return fc
	}
	fc.raw = buf
	return fc
}

// empty reports whether the cache knows no file at all.
func (fc *fileCache) empty() bool { return len(fc.at) == 0 }

// seed adds an entry from a parent snapshot to an empty cache. It is
// encoded as a loaded cache file's entries are: decoded, a parent of
// 300k files held ~200 bytes per entry, twice what this costs.
func (fc *fileCache) seed(k cacheKey, c cachedFile) {
	if fc.at == nil {
		fc.at = map[cacheKey]uint32{}
	}
	fc.fromParent = true
	start := len(fc.raw)
	fc.raw = appendEntry(fc.raw, k, &c)
	if len(fc.raw) > 1<<32-1 {
		fc.raw = fc.raw[:start] // beyond what offsets reach: re-read instead
		return
	}
	fc.at[k] = uint32(start + len(k))
}

// old returns the last backup's entry for k.
func (fc *fileCache) old(k cacheKey) (cachedFile, bool) {
	off, ok := fc.at[k]
	if !ok {
		return cachedFile{}, false
	}
	c, _, err := decodeEntry(fc.raw[off:])
	c.anyInode = fc.fromParent
	return c, err == nil
}

func shortHex(b []byte) string {
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 16)
	for _, c := range b[:min(8, len(b))] {
		out = append(out, hexd[c>>4], hexd[c&15])
	}
	return string(out)
}

func (fc *fileCache) keyOf(path string) cacheKey {
	m, ok := fc.macs.Get().(hash.Hash)
	if !ok {
		m = hmac.New(sha256.New, fc.key[:])
	}
	m.Reset()
	m.Write([]byte(path))
	var sum [32]byte
	m.Sum(sum[:0])
	fc.macs.Put(m)
	var k cacheKey
	copy(k[:], sum[:])
	return k
}

func sameCached(a, b *cachedFile) bool {
	if a.Size != b.Size || a.MTime != b.MTime || a.CTime != b.CTime || a.Inode != b.Inode || a.Hash != b.Hash ||
		!slices.Equal(a.Content, b.Content) || !slices.Equal(a.Extents, b.Extents) || len(a.Xattrs) != len(b.Xattrs) {
		return false
	}
	for i := range a.Xattrs {
		if a.Xattrs[i].Name != b.Xattrs[i].Name || !bytes.Equal(a.Xattrs[i].Value, b.Xattrs[i].Value) {
			return false
		}
	}
	return true
}

func (fc *fileCache) lookup(k cacheKey, n *snapshot.Node) (cachedFile, bool) {
	c, ok := fc.old(k)
	if !ok || c.Size != n.Size || c.MTime != n.MTime.UnixNano() || c.CTime != n.CTime.UnixNano() || (c.Inode != n.Inode && !c.anyInode) {
		return cachedFile{}, false
	}
	return c, true
}

func (fc *fileCache) record(k cacheKey, n *snapshot.Node) {
	c := cachedFile{Size: n.Size, MTime: n.MTime.UnixNano(), CTime: n.CTime.UnixNano(), Inode: n.Inode,
		Content: n.Content, Extents: n.Extents, Xattrs: n.Xattrs}
	if n.ContentHash != nil {
		c.Hash = *n.ContentHash
	}
	old, ok := fc.old(k)
	same := ok && !old.anyInode && sameCached(&old, &c)
	fc.mu.Lock()
	if len(fc.enc) == 0 || len(fc.enc[len(fc.enc)-1]) >= encBlock {
		fc.enc = append(fc.enc, make([]byte, 0, encBlock+4<<10))
	}
	last := &fc.enc[len(fc.enc)-1]
	*last = appendEntry(*last, k, &c)
	fc.count++
	if !same {
		fc.dirty = true
	}
	fc.mu.Unlock()
}

// save replaces the cache with what this backup saw, after its commit. An
// unchanged cache (same entries, none gone) is not rewritten.
func (fc *fileCache) save() error {
	if fc.path == "" || (!fc.dirty && fc.count == len(fc.at)) {
		return nil
	}
	return atomicfile.Write(fc.path, 0o600, func(w io.Writer) error {
		head := binary.AppendUvarint([]byte(fileCacheMagic), uint64(fc.count))
		if _, err := w.Write(head); err != nil {
			return err
		}
		for _, b := range fc.enc {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}

const fileCacheMagic = "CRFC2"

// The cache file is written compactly (gob spent more time than the rest
// of a no-change backup's bookkeeping):
//
//	"CRFC2" | count uv | per entry: key [20] | size uv | mtime sv | ctime sv |
//	inode uv | content count uv | ids [32]… | hash [32] | extents (uv count+1, 0 = dense)
//	× (off uv, len uv) | xattrs uv × (name bytes, value bytes); bytes = uv length ‖ data
//
// A key that appears twice means its last entry.

// encodeFileCache encodes a whole cache (tests build caches with it).
func encodeFileCache(m map[cacheKey]cachedFile) []byte {
	b := make([]byte, 0, 16+len(m)*100)
	b = append(b, fileCacheMagic...)
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, c := range m {
		b = appendEntry(b, k, &c)
	}
	return b
}

func appendEntry(b []byte, k cacheKey, c *cachedFile) []byte {
	b = append(b, k[:]...)
	b = binary.AppendUvarint(b, c.Size)
	b = binary.AppendVarint(b, c.MTime)
	b = binary.AppendVarint(b, c.CTime)
	b = binary.AppendUvarint(b, c.Inode)
	b = binary.AppendUvarint(b, uint64(len(c.Content)))
	for _, id := range c.Content {
		b = append(b, id[:]...)
	}
	b = append(b, c.Hash[:]...)
	if c.Extents == nil {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(c.Extents))+1)
	}
	for _, e := range c.Extents {
		b = binary.AppendUvarint(b, uint64(e.Offset))
		b = binary.AppendUvarint(b, uint64(e.Length))
	}
	b = binary.AppendUvarint(b, uint64(len(c.Xattrs)))
	for _, x := range c.Xattrs {
		b = binary.AppendUvarint(b, uint64(len(x.Name)))
		b = append(b, x.Name...)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b
}

var errBadCache = errors.New("damaged file cache")

// indexFileCache checks a whole cache file and returns the offset of each
// key's (last) entry fields.
func indexFileCache(b []byte) (map[cacheKey]uint32, error) {
	if len(b) < len(fileCacheMagic) || string(b[:len(fileCacheMagic)]) != fileCacheMagic || len(b) > 1<<32-1 {
		return nil, errBadCache
	}
	rest := b[len(fileCacheMagic):]
	n, l := binary.Uvarint(rest)
	if l <= 0 || n > uint64(len(rest))/20 {
		return nil, errBadCache
	}
	rest = rest[l:]
	at := make(map[cacheKey]uint32, n)
	for i := uint64(0); i < n; i++ {
		if len(rest) < len(cacheKey{}) {
			return nil, errBadCache
		}
		k := cacheKey(rest[:len(cacheKey{})])
		rest = rest[len(k):]
		off := uint32(len(b) - len(rest))
		_, next, err := decodeEntry(rest)
		if err != nil {
			return nil, err
		}
		at[k], rest = off, next
	}
	if len(rest) != 0 {
		return nil, errBadCache
	}
	return at, nil
}

// decodeFileCache decodes a whole cache file (tests, and fuzzing).
func decodeFileCache(b []byte) (map[cacheKey]cachedFile, error) {
	at, err := indexFileCache(b)
	if err != nil {
		return nil, err
	}
	m := make(map[cacheKey]cachedFile, len(at))
	for k, off := range at {
		if m[k], _, err = decodeEntry(b[off:]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// decodeEntry decodes the fields of one entry (after its key) and returns
// what follows it.
func decodeEntry(b []byte) (cachedFile, []byte, error) {
	var c cachedFile
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	take := func(dst []byte) {
		if len(b) < len(dst) {
			bad = true
			return
		}
		copy(dst, b)
		b = b[len(dst):]
	}
	c.Size, c.MTime, c.CTime, c.Inode = uv(), sv(), sv(), uv()
	nc := uv()
	if bad || nc > uint64(len(b))/32 {
		return c, nil, errBadCache
	}
	c.Content = make([]blob.ID, nc)
	for j := range c.Content {
		take(c.Content[j][:])
	}
	take(c.Hash[:])
	if ne := uv(); ne > 0 {
		if ne-1 > uint64(len(b))/2 {
			return c, nil, errBadCache
		}
		c.Extents = make([]snapshot.Extent, ne-1)
		for j := range c.Extents {
			c.Extents[j] = snapshot.Extent{Offset: int64(uv()), Length: int64(uv())}
		}
	}
	raw := func() []byte {
		l := uv()
		if bad || l > uint64(len(b)) {
			bad = true
			return nil
		}
		out := b[:l]
		b = b[l:]
		return out
	}
	if nx := uv(); nx > 0 {
		if nx > uint64(len(b))/2 {
			return c, nil, errBadCache
		}
		c.Xattrs = make([]snapshot.Xattr, nx)
		for j := range c.Xattrs {
			c.Xattrs[j].Name = string(raw())
			c.Xattrs[j].Value = bytes.Clone(raw())
		}
	}
	if bad {
		return c, nil, errBadCache
	}
	return c, b, nil
}
