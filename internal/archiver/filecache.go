package archiver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"sync"

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
	Hash    blob.ID
	Extents []snapshot.Extent
	Xattrs  []snapshot.Xattr
	// anyInode marks an entry taken from a parent snapshot's tree, which
	// records no inode; it is never stored.
	anyInode bool
}

// fileCache is the parent of a backup: per path, the stat tuple and content.
type fileCache struct {
	key  [32]byte
	path string

	old   map[cacheKey]cachedFile
	mu    sync.Mutex
	new   map[cacheKey]cachedFile
	dirty bool // new differs from old in some entry
	macs  sync.Pool
}

func loadFileCache(repo *repository.Repository) *fileCache {
	fc := &fileCache{key: repo.DedupKeys().Cache, old: map[cacheKey]cachedFile{}, new: map[cacheKey]cachedFile{}}
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
	if fc.old, err = decodeFileCache(buf); err != nil {
		fc.old = map[cacheKey]cachedFile{} // a damaged cache only costs a re-read
	}
	return fc
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
	c, ok := fc.old[k]
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
	fc.mu.Lock()
	fc.new[k] = c
	if old, ok := fc.old[k]; !ok || !sameCached(&old, &c) {
		fc.dirty = true
	}
	fc.mu.Unlock()
}

// save replaces the cache with what this backup saw, after its commit. An
// unchanged cache (same entries, none gone) is not rewritten.
func (fc *fileCache) save() error {
	if fc.path == "" || (!fc.dirty && len(fc.new) == len(fc.old)) {
		return nil
	}
	tmp := fc.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(encodeFileCache(fc.new))
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, fc.path)
}

const fileCacheMagic = "CRFC2"

// encodeFileCache writes the cache compactly (gob spent more time than the
// rest of a no-change backup's bookkeeping):
//
//	"CRFC1" | count uv | per entry: key [20] | size uv | mtime sv | ctime sv |
//	inode uv | content count uv | ids [32]… | hash [32] | extents (uv count+1, 0 = dense)
//	× (off uv, len uv) | xattrs uv × (name bytes, value bytes); bytes = uv length ‖ data
func encodeFileCache(m map[cacheKey]cachedFile) []byte {
	b := make([]byte, 0, 16+len(m)*100)
	b = append(b, fileCacheMagic...)
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, c := range m {
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
	}
	return b
}

var errBadCache = errors.New("damaged file cache")

func decodeFileCache(b []byte) (map[cacheKey]cachedFile, error) {
	if len(b) < len(fileCacheMagic) || string(b[:len(fileCacheMagic)]) != fileCacheMagic {
		return nil, errBadCache
	}
	b = b[len(fileCacheMagic):]
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
	n := uv()
	if n > uint64(len(b))/20 {
		return nil, errBadCache
	}
	m := make(map[cacheKey]cachedFile, n)
	for i := uint64(0); i < n && !bad; i++ {
		var k cacheKey
		var c cachedFile
		take(k[:])
		c.Size, c.MTime, c.CTime, c.Inode = uv(), sv(), sv(), uv()
		nc := uv()
		if nc > uint64(len(b))/32 {
			return nil, errBadCache
		}
		c.Content = make([]blob.ID, nc)
		for j := range c.Content {
			take(c.Content[j][:])
		}
		take(c.Hash[:])
		if ne := uv(); ne > 0 {
			if ne-1 > uint64(len(b))/2 {
				return nil, errBadCache
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
				return nil, errBadCache
			}
			c.Xattrs = make([]snapshot.Xattr, nx)
			for j := range c.Xattrs {
				c.Xattrs[j].Name = string(raw())
				c.Xattrs[j].Value = bytes.Clone(raw())
			}
		}
		m[k] = c
	}
	if bad || len(b) != 0 {
		return nil, errBadCache
	}
	return m, nil
}
