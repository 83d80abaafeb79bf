package archiver

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/gob"
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
	f, err := os.Open(fc.path)
	if err != nil {
		return fc
	}
	defer f.Close()
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&fc.old); err != nil {
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
	w := bufio.NewWriter(f)
	err = gob.NewEncoder(w).Encode(fc.new)
	err = errors.Join(err, w.Flush(), f.Sync(), f.Close())
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, fc.path)
}
