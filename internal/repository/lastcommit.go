package repository

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// lastCommitFile holds, per key cache, the statement this machine last
// committed with that key: its writer, seq and hash. It is public
// information (the statement is stored in the clear), kept so that a check
// can tell when the repository was rolled back behind it (R17).
const lastCommitFile = "laststatement.json"

// Committed is a statement this machine committed.
type Committed struct {
	Writer string `json:"writer"` // hex Ed25519 public key
	Seq    uint64 `json:"seq"`
	Hash   string `json:"hash"` // hex SHA-256 of the statement
}

func (c *Cache) saveLastStatement(st *snapshot.Statement) error {
	if c.dir == "" {
		return nil
	}
	// Never backwards: of two commits finishing at once, the lower seq
	// may be the later to get here.
	if old, err := os.ReadFile(filepath.Join(c.dir, lastCommitFile)); err == nil {
		var prev Committed
		if json.Unmarshal(old, &prev) == nil && prev.Writer == hex.EncodeToString(st.Writer[:]) && prev.Seq >= st.Seq {
			return nil
		}
	}
	h := st.Hash()
	buf, _ := json.Marshal(Committed{Writer: hex.EncodeToString(st.Writer[:]), Seq: st.Seq, Hash: hex.EncodeToString(h[:])})
	return WriteFileAtomic(filepath.Join(c.dir, lastCommitFile), buf)
}

// LastCommitted returns, per writer (hex public key), the newest statement
// any key of this machine committed to this repository, from the caches of
// every key identity under the repository's cache directory. It is empty
// when caching is off.
func (r *Repository) LastCommitted() (map[string]Committed, error) {
	out := map[string]Committed{}
	if r.cache.dir == "" {
		return out, nil
	}
	dirs, err := os.ReadDir(filepath.Dir(r.cache.dir))
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		buf, err := os.ReadFile(filepath.Join(filepath.Dir(r.cache.dir), d.Name(), lastCommitFile))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var c Committed
		if json.Unmarshal(buf, &c) != nil || c.Writer == "" {
			continue // a damaged cache file proves nothing
		}
		if old, ok := out[c.Writer]; !ok || c.Seq > old.Seq {
			out[c.Writer] = c
		}
	}
	return out, nil
}
