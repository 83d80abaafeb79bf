package repository

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Cache is the per-repository local cache directory (mode 0700, files
// 0600). It holds no session key and no plaintext path: the highest config
// and roster versions seen (R3), this key's own snapshot log, the journal of
// uploaded packs, and whatever the archiver keeps (its file cache).
type Cache struct {
	dir string
	mu  sync.Mutex
}

// Dir returns the cache directory, or "" when caching is off.
func (c *Cache) Dir() string { return c.dir }

func (r *Repository) openCache() error {
	if r.cache.dir == "" {
		return nil
	}
	// One directory per repository and per key identity: an owner and a
	// writer on one machine share no journal, dedup set or file cache.
	var who string
	switch {
	case r.keys.Sign != nil:
		who = fmt.Sprintf("%x", r.keys.SignerID()[:8])
	case r.keys.CoordSign != nil:
		who = fmt.Sprintf("%x", r.keys.CoordSign.Public().(ed25519.PublicKey)[:8])
	default:
		who = "server"
	}
	r.cache.dir = filepath.Join(r.cache.dir, fmt.Sprintf("%x", r.keys.RepoID[:16]), who)
	if err := os.MkdirAll(r.cache.dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

type cacheState struct {
	Versions map[string]uint64 `json:"versions"`
}

func (c *Cache) loadState() (*cacheState, error) {
	st := &cacheState{Versions: map[string]uint64{}}
	if c.dir == "" {
		return st, nil
	}
	buf, err := os.ReadFile(filepath.Join(c.dir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(buf, st); err != nil || st.Versions == nil {
		return &cacheState{Versions: map[string]uint64{}}, nil // a damaged cache is rebuilt
	}
	return st, nil
}

// checkVersion enforces R3: a config or roster older than the newest one
// this machine has seen is refused; a newer one is remembered.
func (c *Cache) checkVersion(kind string, seq uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.loadState()
	if err != nil {
		return err
	}
	if seen := st.Versions[kind]; seq < seen {
		return fmt.Errorf("%s version %d is older than version %d seen before: the repository may have been rolled back", kind, seq, seen)
	}
	if seq == st.Versions[kind] || c.dir == "" {
		return nil
	}
	st.Versions[kind] = seq
	buf, _ := json.Marshal(st)
	return WriteFileAtomic(filepath.Join(c.dir, "state.json"), buf)
}

// WriteFileAtomic replaces a cache or state file durably under a unique
// temporary name (see package atomicfile), so processes sharing a cache
// never trip over each other's temporary files.
func WriteFileAtomic(path string, buf []byte) error {
	return atomicfile.WriteFile(path, buf, 0o600)
}

// saveLastRefs keeps this key's last committed snapshot's refs (a writer's
// dedup scope, R16).
func (c *Cache) saveLastRefs(refs []snapshot.Ref) error {
	if c.dir == "" {
		return nil
	}
	buf := make([]byte, 0, 33*len(refs))
	for _, r := range refs {
		buf = append(buf, byte(r.Type))
		buf = append(buf, r.ID[:]...)
	}
	return WriteFileAtomic(filepath.Join(c.dir, "lastrefs"), buf)
}

func (c *Cache) loadLastRefs() ([]snapshot.Ref, error) {
	if c.dir == "" {
		return nil, nil
	}
	buf, err := os.ReadFile(filepath.Join(c.dir, "lastrefs"))
	if err != nil {
		return nil, err
	}
	refs, err := decodeRefs(buf)
	if err != nil {
		return nil, err
	}
	return snapshot.SortRefs(refs), nil
}
