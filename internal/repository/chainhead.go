package repository

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
)

// A key's next statement follows its last one: seq + 1, prev = that
// statement's hash (R17). The last one is the highest seq the key signed,
// whether its snapshot file is still stored or was forgotten (the owner's
// `cairn forget`, a server's retention): a forget leaves a tombstone with
// the statement's seq and hash, so chaining to it is no gap, and reusing
// its seq would be a fork (and a server refuses it). Tombstones are signed
// in the clear, so a writer key, which reads no metadata, reads them too;
// only those signed by the owner or a roster coordinator count.

// chainHead is the statement a key's next commit chains to.
type chainHead struct {
	seq  uint64
	hash [32]byte
}

// chainHead returns the last statement this key signed, from the snapshot
// files and the tombstones of forgotten ones; nil if it signed none.
func (r *Repository) chainHead(ctx context.Context) (*chainHead, error) {
	pub := r.keys.SignerID()
	// Snapshots first: a forget stores the tombstone before it removes the
	// snapshot file, so a statement missed here is in the listing below.
	head, err := r.lastStatement(ctx, pub)
	if err != nil {
		return nil, err
	}
	ts, err := r.ownTombstones(ctx, pub)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if head == nil || t.Seq > head.seq {
			head = &chainHead{seq: t.Seq}
			copy(head.hash[:], t.Hash)
		}
	}
	return head, nil
}

// statementCacheFile remembers, per key cache, the statement of every
// snapshot file read (lastStatement): who signed it, its seq and its hash.
const statementCacheFile = "statements.json"

// cachedStatement is what a snapshot file's validly signed statement
// says that a chain head needs.
type cachedStatement struct {
	Writer []byte `json:"writer"`
	Seq    uint64 `json:"seq"`
	Hash   []byte `json:"hash"`
}

func (c *Cache) loadStatements() map[string]cachedStatement {
	m := map[string]cachedStatement{}
	if c.dir == "" {
		return m
	}
	buf, err := os.ReadFile(filepath.Join(c.dir, statementCacheFile))
	if err != nil || json.Unmarshal(buf, &m) != nil {
		return map[string]cachedStatement{} // read them all again
	}
	return m
}

func (c *Cache) saveStatements(m map[string]cachedStatement) error {
	if c.dir == "" {
		return nil
	}
	buf, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(c.dir, statementCacheFile), buf)
}

// tombstoneCacheFile remembers, per key cache, which tombstones were read:
// they never change, and a repository under retention collects one per
// forgotten snapshot, which each commit would otherwise load again.
const tombstoneCacheFile = "tombstones.json"

// tombstoneCache is the cached result of reading tombstones: the names of
// every valid tombstone read, and the records of those naming this key's
// statements.
type tombstoneCache struct {
	Seen []string             `json:"seen"`
	Own  []forgottenStatement `json:"own"`
}

// forgottenStatement is one of this key's statements whose snapshot was
// forgotten, as its tombstone records it.
type forgottenStatement struct {
	Name   string `json:"name"`
	Seq    uint64 `json:"seq"`
	Hash   []byte `json:"hash"`
	Signer []byte `json:"signer"`
}

func (c *Cache) loadTombstones() tombstoneCache {
	var tc tombstoneCache
	if c.dir == "" {
		return tc
	}
	buf, err := os.ReadFile(filepath.Join(c.dir, tombstoneCacheFile))
	if err != nil || json.Unmarshal(buf, &tc) != nil {
		return tombstoneCache{} // read them all again
	}
	return tc
}

func (c *Cache) saveTombstones(tc tombstoneCache) error {
	if c.dir == "" {
		return nil
	}
	buf, err := json.Marshal(tc)
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(c.dir, tombstoneCacheFile), buf)
}

// ownTombstones returns the records of pub's forgotten statements: every
// valid tombstone naming one, loading only those not read before.
func (r *Repository) ownTombstones(ctx context.Context, pub ed25519.PublicKey) ([]forgottenStatement, error) {
	tc := r.cache.loadTombstones()
	seen := make(map[string]bool, len(tc.Seen))
	for _, n := range tc.Seen {
		seen[n] = true
	}
	var fresh []backend.FileInfo
	if err := r.be.List(ctx, backend.Tombstones, func(fi backend.FileInfo) error {
		if !seen[fi.Name] {
			fresh = append(fresh, fi)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list tombstones: %w", err)
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, fi := range fresh {
		g.Go(func() error {
			buf, err := backend.LoadAll(gctx, r.be, fi.Handle)
			if errors.Is(err, backend.ErrNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("load %s: %w", fi.Handle, err)
			}
			var t Tombstone
			signer, err := r.openSigned(buf, tombstoneMagic, crypto.SigTombstone, &t)
			if err != nil || backend.NameOf(buf) != fi.Name || !bytes.Equal(t.RepoID, r.keys.RepoID[:]) || len(t.StatementHash) != 32 {
				return nil // not counted, and read again next time; check reports it
			}
			mu.Lock()
			defer mu.Unlock()
			tc.Seen = append(tc.Seen, fi.Name)
			if bytes.Equal(t.Writer, pub) {
				tc.Own = append(tc.Own, forgottenStatement{Name: fi.Name, Seq: t.Seq, Hash: t.StatementHash, Signer: signer})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("read tombstones: %w", err)
	}
	if len(fresh) > 0 {
		if err := r.cache.saveTombstones(tc); err != nil {
			return nil, fmt.Errorf("cache tombstones: %w", err)
		}
	}
	// A cached record counts only while its signer still does.
	var own []forgottenStatement
	for _, o := range tc.Own {
		if len(o.Hash) == 32 && (bytes.Equal(o.Signer, r.keys.OwnerSignPub) || r.roster.IsCoordinator(o.Signer)) {
			own = append(own, o)
		}
	}
	return own, nil
}
