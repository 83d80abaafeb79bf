package archiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
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
}

// fileCache is the parent of a backup: per path, the stat tuple and content.
type fileCache struct {
	key  [32]byte
	path string

	old map[cacheKey]cachedFile
	mu  sync.Mutex
	new map[cacheKey]cachedFile
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
	m := hmac.New(sha256.New, fc.key[:])
	m.Write([]byte(path))
	var k cacheKey
	copy(k[:], m.Sum(nil))
	return k
}

func (fc *fileCache) lookup(k cacheKey, n *snapshot.Node) (cachedFile, bool) {
	c, ok := fc.old[k]
	if !ok || c.Size != n.Size || c.MTime != n.MTime.UnixNano() || c.CTime != n.CTime.UnixNano() || c.Inode != n.Inode {
		return cachedFile{}, false
	}
	return c, true
}

func (fc *fileCache) record(k cacheKey, n *snapshot.Node) {
	c := cachedFile{Size: n.Size, MTime: n.MTime.UnixNano(), CTime: n.CTime.UnixNano(), Inode: n.Inode,
		Content: n.Content, Extents: n.Extents}
	if n.ContentHash != nil {
		c.Hash = *n.ContentHash
	}
	fc.mu.Lock()
	fc.new[k] = c
	fc.mu.Unlock()
}

// save replaces the cache with what this backup saw, after its commit.
func (fc *fileCache) save() error {
	if fc.path == "" {
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

const fileCacheMagic = "CRFC1"

// encodeFileCache writes the cache compactly (gob spent more time than the
// rest of a no-change backup's bookkeeping):
//
//	"CRFC1" | count uv | per entry: key [20] | size uv | mtime sv | ctime sv |
//	inode uv | content count uv | ids [32]… | hash [32] | extents uv × (off uv, len uv)
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
		m[k] = c
	}
	if bad || len(b) != 0 {
		return nil, errBadCache
	}
	return m, nil
}
