package repository

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// CommitInput is what a backup hands over to make a snapshot.
type CommitInput struct {
	Root  blob.ID
	Refs  []snapshot.Ref // every data and tree blob the snapshot reaches
	Meta  snapshot.MetaHeader
	Owner snapshot.OwnerHeader
	Time  time.Time
}

// Snapshot is a stored snapshot as far as the key in use can read it.
type Snapshot struct {
	ID    blob.ID // the file's name
	File  *snapshot.File
	Meta  *snapshot.MetaHeader  // nil unless the key reads metadata
	Owner *snapshot.OwnerHeader // nil unless the owner
	// ModTime is the storage's time for the file (direct-mode receipt, R14).
	ModTime time.Time
	// Standing is its signer and policy time for selection (Judge, R25).
	Standing Standing
}

// Signer is the provenance domain of the key that signed the snapshot:
// reads for it use copies of that domain and the owner's (ReadFor).
func (s *Snapshot) Signer() blob.Domain { return blob.Domain(s.File.Statement.Writer) }

// Time is the snapshot's claimed time.
func (s *Snapshot) Time() time.Time { return s.File.Statement.Time }

// Commit writes the manifest, flushes the session and writes the signed
// snapshot file. Only after the snapshot file is stored is the snapshot
// visible; a crash before leaves packs that the next session reuses.
func (s *Session) Commit(ctx context.Context, in CommitInput) (*Snapshot, error) {
	r := s.repo
	if r.keys.Sign == nil {
		return nil, errors.New("this key cannot sign snapshots")
	}
	// Refs go into the server-readable manifest by stored type: a tree is
	// listed as content, like a data blob (docs/format.md §14).
	refs := make([]snapshot.Ref, len(in.Refs))
	for i, ref := range in.Refs {
		refs[i] = snapshot.Ref{Type: ref.Type.Stored(), ID: ref.ID}
	}
	refs = snapshot.SortRefs(refs)
	var pageIDs []blob.ID
	for _, page := range snapshot.Pages(refs) {
		id, _, err := s.SaveBlob(ctx, blob.ManifestPage, page)
		if err != nil {
			return nil, err
		}
		pageIDs = append(pageIDs, id)
	}
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	if err := s.checkCondemned(ctx, refs, pageIDs); err != nil {
		return nil, err
	}
	meta := in.Meta
	meta.Pages = pageIDs
	meta.Blobs = uint64(len(refs))
	stats := s.Stats()
	meta.NewBlobs, meta.NewBytes = stats.Blobs, stats.StoredBytes
	meta.Time = in.Time.UTC()
	mb, _ := snapshot.MarshalJSONHeader(&meta)
	f := &snapshot.File{}
	var err error
	if f.MetaSealed, err = crypto.Seal(mb, r.keys.MetaRecipient); err != nil {
		return nil, err
	}
	ob, _ := snapshot.MarshalJSONHeader(&in.Owner)
	if f.OwnerSealed, err = crypto.Seal(ob, r.keys.OwnerRecipient); err != nil {
		return nil, err
	}
	if !r.CanReadMetadata() {
		if f.DedupSealed, err = r.sealDedupSet(refs); err != nil {
			return nil, err
		}
	}
	if s.lease.Gone() {
		r.log.Warn("committing after the backup session's lease expired; the server checks that every blob the snapshot references is still stored")
	}
	// Sign after the chain's head and claim the seq; a commit by the same
	// key that won the seq makes this one re-read the head and sign again
	// (claim.go), so two backups at once never fork the chain.
	var st *snapshot.Statement
	var name string
	for attempt := 1; ; attempt++ {
		prev, err := r.chainHead(ctx)
		if err != nil {
			return nil, err
		}
		st = &snapshot.Statement{RepoID: r.keys.RepoID, Seq: 1, Root: in.Root,
			ManifestRoot: snapshot.ManifestRoot(pageIDs), Time: in.Time.UTC(), DedupGen: r.keys.CurrentDedup}
		if prev != nil {
			st.Seq = prev.seq + 1
			st.Prev = prev.hash
		}
		f.Statement = st
		f.Sign(r.keys.Sign)
		buf := f.Marshal()
		name = backend.NameOf(buf)
		h := backend.Handle{Type: backend.Snapshots, Name: name}
		if err := r.claimSeq(ctx, st.Seq); errors.Is(err, errSeqTaken) {
			if attempt >= maxCommitAttempts {
				return nil, fmt.Errorf("save snapshot: seq %d: %w after %d attempts", st.Seq, err, attempt)
			}
			if err := r.awaitHead(ctx, st.Seq); err != nil {
				return nil, fmt.Errorf("save snapshot: %w", err)
			}
			continue
		} else if err != nil {
			return nil, fmt.Errorf("save snapshot: %w", err)
		}
		err = r.be.Save(backend.WithLease(ctx, s.lease.commitID()), h, backend.NewByteReader(buf))
		if err == nil || errors.Is(err, backend.ErrExists) { // the name is the content: ours
			break
		}
		if errors.Is(err, backend.ErrSequence) && attempt < maxCommitAttempts {
			// The server recorded another statement of this key at this
			// seq, or ours from an attempt whose answer was lost.
			if _, serr := r.be.Stat(ctx, h); serr == nil {
				break
			}
			r.log.Debug("snapshot out of sequence, re-reading the chain's head", "seq", st.Seq)
			continue
		}
		return nil, fmt.Errorf("save snapshot: %w", err)
	}
	s.lease.committed() // the server ended the session with the upload
	id, _ := blob.ParseID(name)
	// The snapshot is stored: a cache that cannot be updated costs a
	// writer some dedup and check some rollback evidence, not the snapshot.
	if err := r.cache.saveLastRefs(refs); err != nil {
		r.log.Warn("snapshot stored, but its refs could not be cached", "err", err)
	}
	if err := r.cache.saveLastStatement(st); err != nil {
		r.log.Warn("snapshot stored, but its statement could not be cached", "err", err)
	}
	return &Snapshot{ID: id, File: f, Meta: &meta, Owner: &in.Owner}, nil
}

// lastStatement returns the statement of pub's with the highest seq among
// the snapshot files stored now, as the chain head it makes; nil if there
// is none. A file's statement is read once per key cache: snapshot files
// are named by their hash and never change, so the cache keeps what each
// listed file's signed statement said, and a commit reads only the files
// stored since (a repository collects one per backup of every writer),
// and of each only the signed statement at its head (ReadStatement). A
// file forgotten between listing and reading is skipped (its tombstone
// records it; see chainHead).
func (r *Repository) lastStatement(ctx context.Context, pub ed25519.PublicKey) (*chainHead, error) {
	var names []backend.FileInfo
	if err := r.be.List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
		names = append(names, fi)
		return nil
	}); err != nil {
		return nil, err
	}
	cached := r.cache.loadStatements()
	keep := make(map[string]cachedStatement, len(names))
	var fresh []backend.FileInfo
	for _, fi := range names {
		if c, ok := cached[fi.Name]; ok {
			keep[fi.Name] = c // only listed files count, as when read
		} else {
			fresh = append(fresh, fi)
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, fi := range fresh {
		g.Go(func() error {
			st, err := ReadStatement(gctx, r.be, fi)
			if errors.Is(err, backend.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if st == nil || st.RepoID != r.keys.RepoID {
				return nil // not a validly signed statement: read again next time; check reports it
			}
			h := st.Hash()
			mu.Lock()
			keep[fi.Name] = cachedStatement{Writer: st.Writer[:], Seq: st.Seq, Hash: h[:]}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("read snapshot statements: %w", err)
	}
	if len(fresh) > 0 || len(keep) != len(cached) {
		if err := r.cache.saveStatements(keep); err != nil {
			r.log.Warn("caching snapshot statements", "err", err)
		}
	}
	var best *chainHead
	for _, c := range keep {
		if bytes.Equal(c.Writer, pub) && len(c.Hash) == 32 && (best == nil || c.Seq > best.seq) {
			best = &chainHead{seq: c.Seq}
			copy(best.hash[:], c.Hash)
		}
	}
	return best, nil
}

func (r *Repository) writerDedupKey() []byte {
	k := crypto.Derive(r.keys.Sign.Seed(), crypto.LabelWriterDedup)
	return k[:]
}

// sealDedupSet seals the snapshot's sorted refs to the writer itself, so it
// can dedup against its own last snapshot after losing its cache (R16, R20).
func (r *Repository) sealDedupSet(refs []snapshot.Ref) ([]byte, error) {
	aead, _ := chacha20poly1305.NewX(r.writerDedupKey())
	plain := make([]byte, 0, 33*len(refs))
	for _, ref := range refs {
		plain = append(plain, byte(ref.Type))
		plain = append(plain, ref.ID[:]...)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, r.keys.RepoID[:]), nil
}

func decodeRefs(plain []byte) ([]snapshot.Ref, error) {
	if len(plain)%33 != 0 {
		return nil, errors.New("malformed ref set")
	}
	refs := make([]snapshot.Ref, len(plain)/33)
	for i := range refs {
		refs[i].Type = blob.Type(plain[i*33])
		copy(refs[i].ID[:], plain[i*33+1:i*33+33])
	}
	return refs, nil
}

// RefSet is a sorted set of refs.
type RefSet []snapshot.Ref

// Has implements Known.
func (s RefSet) Has(id blob.ID, t blob.Type) bool {
	_, ok := slices.BinarySearchFunc(s, snapshot.Ref{Type: t.Stored(), ID: id}, snapshot.Ref.Compare)
	return ok
}

// WriterKnown returns the dedup scope of a key that cannot read the index:
// its own last snapshot's refs, from the cache or, if the cache is gone,
// from the sealed dedup set of its last snapshot in the repository (R16).
func (r *Repository) WriterKnown(ctx context.Context) (RefSet, error) {
	if refs, err := r.cache.loadLastRefs(); err == nil && refs != nil {
		return RefSet(refs), nil
	}
	last, err := r.lastStatement(ctx, r.keys.SignerID())
	if err != nil || last == nil {
		return nil, err
	}
	var found *snapshot.File
	err = r.be.List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
		if found != nil {
			return nil
		}
		buf, err := backend.LoadAll(ctx, r.be, fi.Handle)
		if err != nil {
			return err
		}
		f, err := snapshot.ParseFile(buf)
		if err != nil || f.Statement.Hash() != last.hash {
			return nil
		}
		found = f
		return nil
	})
	if err != nil || found == nil || len(found.DedupSealed) == 0 {
		return nil, err
	}
	aead, _ := chacha20poly1305.NewX(r.writerDedupKey())
	ds := found.DedupSealed
	if len(ds) < aead.NonceSize() {
		return nil, errors.New("dedup set truncated")
	}
	plain, err := aead.Open(nil, ds[:aead.NonceSize()], ds[aead.NonceSize():], r.keys.RepoID[:])
	if err != nil {
		return nil, fmt.Errorf("dedup set of own last snapshot: %w", crypto.ErrDecrypt)
	}
	refs, err := decodeRefs(plain)
	return RefSet(refs), err
}

// LoadSnapshot loads, verifies and opens what the key can of one snapshot
// file: the signature (by the owner or a roster writer, R1) always; the
// metadata header with the metadata identity; the owner header with the owner
// identity.
func (r *Repository) LoadSnapshot(ctx context.Context, fi backend.FileInfo) (*Snapshot, error) {
	buf, err := backend.LoadAll(ctx, r.be, fi.Handle)
	if err != nil {
		return nil, err
	}
	if backend.NameOf(buf) != fi.Name {
		return nil, fmt.Errorf("snapshot %s: content does not match its name (corrupted)", fi.Name[:8])
	}
	f, err := snapshot.ParseFile(buf)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", fi.Name[:8], err)
	}
	if f.Statement.RepoID != r.keys.RepoID {
		return nil, fmt.Errorf("snapshot %s belongs to another repository", fi.Name[:8])
	}
	if err := f.Verify(); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", fi.Name[:8], err)
	}
	if !r.MayCommit(ed25519.PublicKey(f.Statement.Writer[:]), f.Statement.Seq) {
		return nil, fmt.Errorf("snapshot %s: signed by a key that is not in the roster", fi.Name[:8])
	}
	id, _ := blob.ParseID(fi.Name)
	s := &Snapshot{ID: id, File: f, ModTime: fi.ModTime}
	if r.CanReadMetadata() {
		mb, err := crypto.Open(f.MetaSealed, r.keys.MetaIdentity, crypto.ErrNeedsMetadata)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s metadata: %w", fi.Name[:8], err)
		}
		if s.Meta, err = snapshot.UnmarshalMeta(mb); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", fi.Name[:8], err)
		}
		if snapshot.ManifestRoot(s.Meta.Pages) != f.Statement.ManifestRoot {
			return nil, fmt.Errorf("snapshot %s: manifest pages do not match the signed root", fi.Name[:8])
		}
	}
	if r.CanReadContent() {
		ob, err := crypto.Open(f.OwnerSealed, r.keys.OwnerIdentity, crypto.ErrNeedsOwner)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s header: %w", fi.Name[:8], err)
		}
		if s.Owner, err = snapshot.UnmarshalOwner(ob); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", fi.Name[:8], err)
		}
	}
	return s, nil
}

// Snapshots loads every snapshot, oldest first. Snapshots that fail to
// load are returned in errs, not silently dropped.
func (r *Repository) Snapshots(ctx context.Context) (snaps []*Snapshot, errs []error, err error) {
	var files []backend.FileInfo
	if err := r.be.List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
		files = append(files, fi)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, fi := range files {
		g.Go(func() error {
			s, err := r.LoadSnapshot(gctx, fi)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return err
				}
				errs = append(errs, err)
				return nil
			}
			snaps = append(snaps, s)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	sort.Slice(snaps, func(i, j int) bool {
		if !snaps[i].Time().Equal(snaps[j].Time()) {
			return snaps[i].Time().Before(snaps[j].Time())
		}
		return bytes.Compare(snaps[i].ID[:], snaps[j].ID[:]) < 0
	})
	return snaps, errs, nil
}

// ManifestRefs loads a snapshot's reference manifest (metadata identity).
func (r *Repository) ManifestRefs(ctx context.Context, s *Snapshot) ([]snapshot.Ref, error) {
	if s.Meta == nil {
		return nil, fmt.Errorf("reading a manifest %w", crypto.ErrNeedsMetadata)
	}
	pages := make([][]snapshot.Ref, 0, len(s.Meta.Pages))
	n := 0
	for _, p := range s.Meta.Pages {
		plain, err := r.LoadBlob(ctx, blob.ManifestPage, p)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s manifest: %w", s.ID.Short(), err)
		}
		page, err := snapshot.DecodePage(plain)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s manifest page %s: %w", s.ID.Short(), p.Short(), err)
		}
		pages = append(pages, page)
		n += len(page)
	}
	if n == 0 {
		return nil, nil
	}
	// One allocation of the whole: appending page by page regrew (and
	// copied) a slice of millions of refs again and again.
	refs := make([]snapshot.Ref, 0, n)
	for _, page := range pages {
		refs = append(refs, page...)
	}
	return refs, nil
}

// PathGroup computes the server-visible path group of a set of paths.
func (r *Repository) PathGroup(paths []string) string {
	k := r.DedupKeys().Group
	sorted := slices.Clone(paths)
	sort.Strings(sorted)
	// HMAC-SHA-256(K_group, 0x00 ‖ the sorted paths, quoted): a stable
	// group for retention that says nothing about the paths themselves.
	mac := crypto.BlobID(&k, 0, []byte(fmt.Sprintf("%q", sorted)))
	return fmt.Sprintf("%x", mac[:8])
}
