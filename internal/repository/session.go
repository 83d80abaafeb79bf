package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func blobIDOfPage(p []byte) blob.ID { return snapshot.PageID(p) }

// sessionKey is one fresh key and its slot.
type sessionKey struct {
	sealer *crypto.Sealer
	slot   pack.Slot
	slotID [32]byte
}

func newSessionKey(kind uint8, wrap func(*[32]byte) ([]byte, error)) (*sessionKey, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	data, err := wrap(&k)
	if err != nil {
		return nil, err
	}
	s := &sessionKey{sealer: crypto.NewSealer(&k), slot: pack.Slot{Kind: kind, Data: data}}
	s.slotID = s.slot.ID()
	return s, nil
}

// maxUploads bounds packs being finished and uploaded at once: two keep
// the disk or connection busy while the next pack fills. On a local
// repository a pack is spooled to its temporary file as it fills, so an
// upload holds no pack in memory; elsewhere each holds one.
const maxUploads = 2

// Session saves blobs into packs under fresh per-session keys (R8: a
// resumed backup uses a fresh one; session keys never leave memory).
type Session struct {
	repo    *Repository
	content *sessionKey
	meta    *sessionKey
	journal *journal
	known   Known

	mu      sync.Mutex
	cur     *pack.Writer              // the pack being filled, writing to spool
	spool   backend.Spool             // where cur's bytes go
	pending map[snapshot.Ref]struct{} // added in this session, by stored type
	packs   []pack.IndexPack          // stored, not yet in an index fragment
	stats   SessionStats

	// trees (under mu) are the sealed tree blobs waiting for a tree pack:
	// trees never share a pack with other blobs, and a tree pack is
	// written in ID order when it is full or at Flush (docs/format.md
	// §10), so the server, which opens pack headers, learns neither which
	// blobs are directories nor the order the walk made them in.
	trees     []sealedTree
	treeBytes int

	uploads *errgroup.Group
	upctx   context.Context

	lease *leaseKeeper // the server's backup session, if it keeps them (lease.go)

	compression crypto.Compression // SetCompression

	// Reused buffers: memory that is touched for the first time is slow to
	// get from the kernel, and a backup moves its whole size through these.
	// Kept across collections, they grow to the largest blob once.
	sealedBufs *BufferList // one sealed blob each
	queueBufs  *BufferList // one blob queued to a spool each
}

// SessionStats counts what a session stored.
type SessionStats struct {
	Blobs       uint64
	BlobBytes   uint64 // plaintext bytes of new blobs
	StoredBytes uint64 // sealed bytes of new blobs
	Packs       uint64
}

// sealedTree is a tree blob sealed and waiting for its pack.
type sealedTree struct {
	id     blob.ID
	sealed []byte
}

// Known answers whether a blob is already stored (dedup scope, R16).
type Known interface {
	Has(id blob.ID, t blob.Type) bool
}

// SetCompression sets how hard the blobs the session stores from now on are
// compressed (backup --compression); the default is crypto.CompressAuto.
// The level is not recorded: any level opens with any reader.
func (s *Session) SetCompression(c crypto.Compression) { s.compression = c }

// NewSession starts a backup session. The dedup scope is the full index
// when the key reads metadata, else known (the writer's own last snapshot
// and journal); known may be nil.
func (r *Repository) NewSession(ctx context.Context, known Known) (*Session, error) {
	content, err := newSessionKey(pack.SlotOwner, func(k *[32]byte) ([]byte, error) {
		return crypto.WrapSessionKey(k, r.keys.OwnerRecipient)
	})
	if err != nil {
		return nil, err
	}
	content.slot.Wrap = crypto.WrapHybrid
	content.slotID = content.slot.ID()
	meta, err := newSessionKey(pack.SlotMetadata, func(k *[32]byte) ([]byte, error) {
		return crypto.WrapSessionKey(k, r.keys.MetaRecipient)
	})
	if err != nil {
		return nil, err
	}
	meta.slot.Wrap = crypto.WrapX25519
	meta.slotID = meta.slot.ID()
	j, err := r.cache.openJournal()
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxUploads)
	if known == nil {
		known = r.idx.In(r.Domain()) // only its own uploads stand for its blobs (R23)
	}
	lease := r.openLease(ctx) // before the plans are read (R12)
	if known, err = r.withoutCondemned(ctx, known); err != nil {
		lease.end()
		return nil, err
	}
	s := &Session{repo: r, content: content, meta: meta, journal: j, known: known,
		pending: map[snapshot.Ref]struct{}{}, uploads: g, upctx: gctx, lease: lease,
		// One per core sealing at once, a full queue of sealed blobs and
		// the one that waits to enter it; queueBufs holds copies of the
		// rest the spool is written (trees, a pack's header).
		sealedBufs: NewBufferList(sealedCap(r.cfg.ChunkMax), runtime.GOMAXPROCS(0)+spoolQueue+1), queueBufs: NewBufferList(0, spoolQueue+1)}
	if err := s.recoverJournal(ctx); err != nil {
		lease.end()
		j.release()
		return nil, err
	}
	return s, nil
}

// recoverJournal indexes packs a killed session stored but never indexed.
func (s *Session) recoverJournal(ctx context.Context) error {
	recs, err := s.repo.cache.adoptDead(s.journal)
	if err != nil || len(recs) == 0 {
		return err
	}
	for _, rec := range recs {
		if _, err := s.repo.be.Stat(ctx, backend.Handle{Type: backend.Data, Name: rec.Pack.String()}); err != nil {
			continue // never fully stored, or removed since
		}
		h, err := pack.ParseHeader(rec.Header, 1<<32-1)
		if err != nil || s.repo.packIndexed(rec.Pack, h) {
			continue // unreadable, or its session indexed it before it died
		}
		s.repo.addPack(rec.Pack, h)
		for _, e := range h.Entries {
			s.pending[snapshot.Ref{Type: e.Type.Stored(), ID: e.ID}] = struct{}{}
		}
		s.packs = append(s.packs, rec)
	}
	return nil
}

// Has reports whether a blob is stored or pending in this session.
func (s *Session) Has(t blob.Type, id blob.ID) bool {
	s.mu.Lock()
	_, ok := s.pending[snapshot.Ref{Type: t.Stored(), ID: id}]
	s.mu.Unlock()
	return ok || s.known.Has(id, t)
}

// SaveBlob stores plaintext as a blob of type t unless it is already known.
// It returns the blob ID and whether it was new. Safe for concurrent use.
func (s *Session) SaveBlob(ctx context.Context, t blob.Type, plain []byte) (blob.ID, bool, error) {
	id := s.repo.BlobID(t, plain)
	return id, s.saveWithID(ctx, t, id, plain), s.err()
}

// SaveBlobID is SaveBlob for a caller that already computed the ID.
func (s *Session) SaveBlobID(ctx context.Context, t blob.Type, id blob.ID, plain []byte) (bool, error) {
	return s.saveWithID(ctx, t, id, plain), s.err()
}

func (s *Session) err() error {
	select {
	case <-s.upctx.Done():
		return fmt.Errorf("upload failed: %w", context.Cause(s.upctx))
	default:
		return nil
	}
}

func (s *Session) saveWithID(ctx context.Context, t blob.Type, id blob.ID, plain []byte) bool {
	ref := snapshot.Ref{Type: t.Stored(), ID: id}
	s.mu.Lock()
	if _, ok := s.pending[ref]; ok {
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	if s.known.Has(id, t) {
		return false
	}
	s.mu.Lock()
	if _, ok := s.pending[ref]; ok {
		s.mu.Unlock()
		return false
	}
	s.pending[ref] = struct{}{}
	s.mu.Unlock()

	key := s.content
	if t == blob.ManifestPage {
		key = s.meta
	}
	// The AD names the stored type, as the header does: whoever opens the
	// blob needs only its header entry. The ID still binds the real type.
	ad := &crypto.BlobAD{Type: uint8(t.Stored()), ID: id, SlotID: key.slotID, RepoID: s.repo.keys.RepoID}
	bp := s.sealedBufs.Get()
	if t == blob.Tree {
		sealed := key.sealer.SealPaddedLevel((*bp)[:0], ad, plain, s.compression, crypto.PadTree)
		s.addTree(id, bytes.Clone(sealed), len(plain)) // held until its pack is written: no spare capacity
		*bp = sealed
		s.sealedBufs.Put(bp)
		return true
	}
	sealed := key.sealer.SealLevel((*bp)[:0], ad, plain, s.compression)

	s.mu.Lock()
	if s.cur == nil {
		sp, err := s.newSpool()
		if err != nil {
			s.mu.Unlock()
			s.fail(err)
			return false
		}
		s.cur, s.spool = pack.NewStreamWriter(s.repo.packSize, sp), sp
	}
	slot := s.cur.AddSlot(key.slot)
	// The sealed blob's buffer goes into the spool's queue as it is, not
	// copied, and back to sealedBufs once written.
	*bp = sealed
	q, _ := s.spool.(*queuedSpool)
	if q != nil {
		q.give(bp, s.sealedBufs)
	}
	s.cur.Add(t, id, sealed, slot) // a write error surfaces in upload
	if q == nil || !q.taken() {
		defer s.sealedBufs.Put(bp)
	}
	s.stats.Blobs++
	s.stats.BlobBytes += uint64(len(plain))
	s.stats.StoredBytes += uint64(len(sealed))
	var full *pack.Writer
	var fullSpool backend.Spool
	if s.cur.Size() >= s.repo.packSize || s.cur.Err() != nil {
		full, fullSpool, s.cur, s.spool = s.cur, s.spool, nil, nil
	}
	s.mu.Unlock()
	if full != nil {
		s.upload(full, fullSpool)
	}
	return true
}

// addTree queues a sealed tree for a tree pack and writes the pack once
// the queued trees reach the pack size.
func (s *Session) addTree(id blob.ID, sealed []byte, plainLen int) {
	s.mu.Lock()
	s.trees = append(s.trees, sealedTree{id, sealed})
	s.treeBytes += len(sealed)
	s.stats.Blobs++
	s.stats.BlobBytes += uint64(plainLen)
	s.stats.StoredBytes += uint64(len(sealed))
	var full []sealedTree
	if s.treeBytes >= s.repo.packSize {
		full, s.trees, s.treeBytes = s.trees, nil, 0
	}
	s.mu.Unlock()
	s.writeTrees(full)
}

// writeTrees writes trees as one pack, sorted by ID: their order says
// nothing about the walk that made them.
func (s *Session) writeTrees(trees []sealedTree) {
	if len(trees) == 0 {
		return
	}
	slices.SortFunc(trees, func(a, b sealedTree) int { return bytes.Compare(a.id[:], b.id[:]) })
	sp, err := s.newSpool()
	if err != nil {
		s.fail(err)
		return
	}
	w := pack.NewStreamWriter(s.repo.packSize, sp)
	slot := w.AddSlot(s.content.slot)
	for _, t := range trees {
		w.Add(blob.Tree, t.id, t.sealed, slot) // a write error surfaces in upload
	}
	s.upload(w, sp)
}

// sealedCap is the size of a sealed-blob buffer: room for a chunk of up
// to max bytes sealed (zstd's worst case or Padmé's padding, each well
// under a sixteenth, and the frame), so the sealer never grows one. A
// buffer grown again later is taken from the heap and cleared first; one
// made at this size once is zero from the kernel and touched only as far
// as blobs reach into it.
func sealedCap(max int) int { return max + max/16 + 4096 }

// newSpool returns a spool for the next pack (on local storage, or in the
// cache directory, a file), behind a queue since its writes may block.
func (s *Session) newSpool() (backend.Spool, error) {
	sp, err := backend.NewSpool(s.repo.be, backend.Data, pack.BufferSize(s.repo.packSize), s.repo.Cache().Dir())
	if err != nil {
		return nil, err
	}
	return newQueuedSpool(sp, s.queueBufs), nil
}

// fail ends the session's uploads with err.
func (s *Session) fail(err error) {
	s.uploads.Go(func() error { return err })
}

// upload finishes a full pack and stores it.
func (s *Session) upload(w *pack.Writer, sp backend.Spool) {
	s.uploads.Go(func() error {
		defer sp.Discard()
		w.SetSigner(s.repo.keys.RepoID, s.repo.Domain(), s.repo.uploadSigner())
		_, hdr, err := w.Finish(s.repo.keys.MetaRecipient)
		if err != nil {
			return err
		}
		name, err := sp.Save(s.upctx)
		if err != nil && !errors.Is(err, backend.ErrExists) {
			return fmt.Errorf("save pack: %w", err)
		}
		id, _ := blob.ParseID(name)
		plainHdr := hdr.Marshal()
		if err := s.journal.add(id, plainHdr); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		s.repo.addPack(id, hdr)
		s.mu.Lock()
		s.packs = append(s.packs, pack.IndexPack{Pack: id, Header: plainHdr})
		s.stats.Packs++
		s.mu.Unlock()
		return nil
	})
}

// Flush uploads the open pack, waits for all uploads and writes an index
// fragment for the session's packs.
func (s *Session) Flush(ctx context.Context) error {
	s.mu.Lock()
	cur, sp := s.cur, s.spool
	s.cur, s.spool = nil, nil
	trees := s.trees
	s.trees, s.treeBytes = nil, 0
	s.mu.Unlock()
	s.writeTrees(trees)
	if cur != nil && cur.Count() > 0 {
		s.upload(cur, sp)
	} else if sp != nil {
		sp.Discard()
	}
	if err := s.uploads.Wait(); err != nil {
		return err
	}
	// A fresh group for uploads after this flush (manifest pages).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxUploads)
	s.mu.Lock()
	s.uploads, s.upctx = g, gctx
	packs := s.packs
	s.packs = nil
	s.mu.Unlock()
	_, err := s.repo.writeFragments(ctx, packs, s.repo.uploadSigner())
	return err
}

// Stats returns what the session stored so far.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close ends the session after a successful commit: the journal is cleared
// (its packs are indexed).
func (s *Session) Close() error {
	s.lease.end()
	return s.journal.done()
}

// Abort ends a failed session; the journal stays so the next session
// indexes what this one stored.
func (s *Session) Abort() {
	s.mu.Lock()
	if s.spool != nil {
		s.spool.Discard() // the pack being filled was never stored
	}
	s.cur, s.spool = nil, nil
	s.trees, s.treeBytes = nil, 0 // never stored; the next session makes them again
	s.mu.Unlock()
	_ = s.uploads.Wait()
	s.lease.end()
	s.journal.release()
}

var _ Known = index.DomainView{}
