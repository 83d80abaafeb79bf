package repository

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
)

// slotFor interns a key slot and returns its number.
func (r *Repository) slotFor(s pack.Slot) uint32 {
	id := s.ID()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.slotNum[id]; ok {
		return n
	}
	n := uint32(len(r.slots))
	r.slots = append(r.slots, s)
	r.slotNum[id] = n
	return n
}

// Slot returns slot number n.
func (r *Repository) Slot(n uint32) (pack.Slot, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if int(n) >= len(r.slots) {
		return pack.Slot{}, false
	}
	return r.slots[n], true
}

// addPack adds a pack's header entries to the in-memory index.
func (r *Repository) addPack(id blob.ID, h *pack.Header) {
	nums := make([]uint32, len(h.Slots))
	for i, s := range h.Slots {
		nums[i] = r.slotFor(s)
	}
	for _, e := range h.Entries {
		r.idx.Add(index.Entry{ID: e.ID, Type: e.Type, Pack: id, Offset: e.Offset, Length: e.Length, Slot: nums[e.Slot], Domain: h.Domain})
	}
}

// packIndexed reports whether the loaded index lists the pack with header
// h (by its first blob: a fragment lists a pack's blobs together).
func (r *Repository) packIndexed(id blob.ID, h *pack.Header) bool {
	if len(h.Entries) == 0 {
		return false
	}
	e := h.Entries[0]
	for _, got := range r.idx.LookupAll(e.ID, e.Type) {
		if got.Pack == id {
			return true
		}
	}
	return false
}

// IndexFile is one loaded index fragment.
type IndexFile struct {
	Name   string
	Signer blob.Domain
	Packs  []pack.ParsedPack
}

// ErrInvalidFragment marks an index fragment that was read but is not
// acceptable: corrupted, not sealed to this repository's metadata
// identity, malformed, or not signed by a key allowed to list its packs.
// Readers skip such a fragment with a warning (a hostile upload must not
// make the index unloadable); check reports it.
var ErrInvalidFragment = errors.New("invalid index fragment")

// LoadIndexFile loads, verifies and decodes one index fragment.
func (r *Repository) LoadIndexFile(ctx context.Context, name string) (*IndexFile, error) {
	h := backend.Handle{Type: backend.Index, Name: name}
	buf, err := backend.LoadAll(ctx, r.be, h)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	if backend.NameOf(buf) != name {
		return nil, fmt.Errorf("%s: %w: content does not match its name (corrupted)", h, ErrInvalidFragment)
	}
	plain, err := crypto.Open(buf, r.keys.MetaIdentity, crypto.ErrNeedsMetadata)
	if errors.Is(err, crypto.ErrNeedsMetadata) && r.keys.MetaIdentity == nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", h, ErrInvalidFragment, err)
	}
	packs, err := pack.ParseIndex(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", h, ErrInvalidFragment, err)
	}
	signer, err := r.verifyFragment(plain, packs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", h, ErrInvalidFragment, err)
	}
	return &IndexFile{Name: name, Signer: signer, Packs: packs}, nil
}

// AddIndexFile adds one loaded fragment's packs to the in-memory index, so
// a long-lived reader (the server) follows new fragments without loading
// the whole index again.
func (r *Repository) AddIndexFile(f *IndexFile) {
	for _, p := range f.Packs {
		r.addPack(p.Pack, p.Parsed)
	}
}

// maxIndexRounds bounds how often LoadIndex lists the index before it
// gives up on seeing it settle.
const maxIndexRounds = 10

// LoadIndex loads every index fragment into memory. It needs the metadata
// identity. Safe to call more than once; later calls do nothing.
//
// A prune rewrites the index while others read it: it stores each
// replacement fragment before it removes the fragments replaced. So a
// fragment listed but gone when loaded is skipped, and the index is listed
// again for names not seen yet (the replacements); this repeats until a
// listing shows nothing new. Listing again also after a pass in which
// nothing vanished costs one listing and catches a replacement that a
// listing running during the rewrite missed (a directory read or paged
// listing is no snapshot of the directory).
func (r *Repository) LoadIndex(ctx context.Context) error {
	r.mu.Lock()
	loaded := r.loaded
	r.mu.Unlock()
	if loaded {
		return nil
	}
	if !r.CanReadMetadata() {
		return fmt.Errorf("reading the index %w", crypto.ErrNeedsMetadata)
	}
	seen := map[string]bool{}
	for round := 0; ; round++ {
		if round == maxIndexRounds {
			return fmt.Errorf("load index: it still changed after %d listings (index fragments stored or removed meanwhile); try again", maxIndexRounds)
		}
		fresh, vanished, err := r.loadIndexPass(ctx, seen)
		if err != nil {
			return err
		}
		if fresh == 0 {
			break
		}
		if vanished > 0 {
			r.log.Debug("index fragments vanished while loading; listing the index again", "vanished", vanished, "round", round+1)
		}
	}
	// Give back the slack of loading (tail tables, arrays grown by a
	// quarter): about 10 bytes of the 58 each blob took.
	r.idx.Compact()
	r.mu.Lock()
	r.loaded = true
	r.mu.Unlock()
	return nil
}

// loadIndexPass lists the index and loads every fragment not in seen,
// adding it to seen. It returns how many fragments the listing named that
// were not seen, and how many of those had gone by the time they were
// loaded.
func (r *Repository) loadIndexPass(ctx context.Context, seen map[string]bool) (fresh, vanished int, err error) {
	var names []string
	if err := r.be.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		if !seen[fi.Name] {
			seen[fi.Name] = true
			names = append(names, fi.Name)
		}
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("list index: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var gone atomic.Int64
	for _, name := range names {
		g.Go(func() error {
			f, err := r.LoadIndexFile(gctx, name)
			if errors.Is(err, backend.ErrNotFound) {
				gone.Add(1) // replaced: the replacement was stored first
				return nil
			}
			if errors.Is(err, ErrInvalidFragment) {
				r.log.Warn("skipping an index fragment that is not valid; `cairn check` reports it", "err", err)
				r.mu.Lock()
				r.badFrags[name] = err
				delete(r.frags, name)
				r.mu.Unlock()
				return nil
			}
			if err != nil {
				return err
			}
			r.AddIndexFile(f)
			packs := make([]blob.ID, len(f.Packs))
			for i, p := range f.Packs {
				packs[i] = p.Pack
			}
			r.noteFragment(name, packs)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return len(names), int(gone.Load()), nil
}

// noteFragment records that index fragment name, loaded or written,
// lists packs (nil: it was removed); a name is either valid or invalid.
func (r *Repository) noteFragment(name string, packs []blob.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.badFrags, name)
	if packs == nil {
		delete(r.frags, name)
		return
	}
	r.frags[name] = packs
}

// IndexFragments returns the index fragments the in-memory index was
// loaded from, each with the packs it lists: those LoadIndex loaded and
// those this Repository wrote since, less those it removed (RemoveFile).
// It also returns the fragments LoadIndex skipped as not valid, with
// their errors (ErrInvalidFragment). Maintenance learns from it which
// fragments to rewrite without reading the index a second time. The
// slices are shared: callers must not modify them.
func (r *Repository) IndexFragments() (packs map[string][]blob.ID, invalid map[string]error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.frags), maps.Clone(r.badFrags)
}

// Index returns the in-memory index (LoadIndex first).
func (r *Repository) Index() *index.Concurrent { return r.idx }

// Lookup finds a blob in the index: the copy a read tries first (Locate
// without a snapshot's signer).
func (r *Repository) Lookup(t blob.Type, id blob.ID) (index.Entry, bool) {
	return r.Locate(context.Background(), t, id)
}

// sealer returns the Sealer for slot n, unwrapping it on first use.
func (r *Repository) sealer(n uint32) (*crypto.Sealer, error) {
	r.mu.Lock()
	s, ok := r.sealers[n]
	var slot pack.Slot
	if !ok && int(n) < len(r.slots) {
		slot = r.slots[n]
	}
	r.mu.Unlock()
	if ok {
		return s, nil
	}
	if slot.Data == nil {
		return nil, fmt.Errorf("unknown key slot %d", n)
	}
	var key [32]byte
	var err error
	switch slot.Kind {
	case pack.SlotOwner:
		key, err = crypto.UnwrapSessionKey(slot.Data, r.keys.OwnerIdentity, crypto.ErrNeedsOwner)
	case pack.SlotMetadata:
		key, err = crypto.UnwrapSessionKey(slot.Data, r.keys.MetaIdentity, crypto.ErrNeedsMetadata)
	default:
		err = fmt.Errorf("key slot of unknown kind %d", slot.Kind)
	}
	if err != nil {
		return nil, err
	}
	s = crypto.NewSealer(&key)
	r.mu.Lock()
	r.sealers[n] = s
	r.mu.Unlock()
	return s, nil
}

// OpenBlob authenticates, decrypts and re-hashes a sealed blob (R6).
// e.Type is the type the caller expects: Tree requires a tree, while Data
// (what a pack header or the index says of data and tree blobs alike)
// accepts a plaintext that hashes to e.ID as data or as a tree.
func (r *Repository) OpenBlob(e index.Entry, sealed []byte) ([]byte, error) {
	return r.openBlob(e, sealed, nil, nil, false)
}

// openBlob opens sealed; inPlace decrypts it in place and decompresses into
// dst, and sets *keep to the buffer that was decompressed into.
func (r *Repository) openBlob(e index.Entry, sealed, dst []byte, keep *[]byte, inPlace bool) ([]byte, error) {
	s, err := r.sealer(e.Slot)
	if err != nil {
		return nil, fmt.Errorf("%s blob %s: %w", e.Type, e.ID.Short(), err)
	}
	slot, _ := r.Slot(e.Slot)
	ad := &crypto.BlobAD{Type: uint8(e.Type.Stored()), ID: e.ID, SlotID: slot.ID(), RepoID: r.keys.RepoID}
	var plain []byte
	if inPlace {
		var inDst bool
		if plain, inDst, err = s.OpenInto(dst, ad, sealed); inDst {
			*keep = plain[:0] // the buffer zstd used, maybe a larger one
		}
	} else {
		plain, err = s.Open(ad, sealed)
	}
	if err != nil {
		return nil, fmt.Errorf("%s blob %s in pack %s: %w", e.Type, e.ID.Short(), e.Pack.Short(), err)
	}
	if !r.idMatches(e.Type, e.ID, plain) {
		return nil, fmt.Errorf("%s blob %s in pack %s: plaintext does not hash to its ID", e.Type, e.ID.Short(), e.Pack.Short())
	}
	return plain, nil
}

// BlobID computes the ID plaintext gets under the current dedup generation.
func (r *Repository) BlobID(t blob.Type, plain []byte) blob.ID {
	if t == blob.ManifestPage {
		return blobIDOfPage(plain)
	}
	k := r.DedupKeys()
	return crypto.BlobID(&k.ID, uint8(t), plain)
}

// idMatches reports whether plain hashes to id as a blob of type t under
// one of the key's dedup generations. Stored types do not tell data from
// trees, so Data also accepts a tree (tried second: a data blob, maybe
// large, is hashed once); Tree accepts only a tree. A plaintext hashes to
// a given ID under at most one type, so accepting both admits nothing a
// collision of HMAC-SHA-256 would not.
func (r *Repository) idMatches(t blob.Type, id blob.ID, plain []byte) bool {
	if t == blob.ManifestPage {
		return blobIDOfPage(plain) == id
	}
	types := []blob.Type{t}
	if t == blob.Data {
		types = append(types, blob.Tree)
	}
	for _, tt := range types {
		for _, k := range r.keys.Dedup {
			if crypto.BlobID(&k.ID, uint8(tt), plain) == id {
				return true
			}
		}
	}
	return false
}

// LoadBlob loads a blob by ID, verifying it.
func (r *Repository) LoadBlob(ctx context.Context, t blob.Type, id blob.ID) ([]byte, error) {
	return r.loadBlob(ctx, t, id, nil)
}

// BlobBuffers is memory a caller reuses across LoadBlobInto calls, so
// that loading many large blobs does not allocate (and clear, and later
// give back) a new buffer for each.
type BlobBuffers struct {
	sealed, plain []byte
}

// LoadBlobInto is LoadBlob into b's memory: the plaintext it returns is
// valid until the next call with b.
func (r *Repository) LoadBlobInto(ctx context.Context, t blob.Type, id blob.ID, b *BlobBuffers) ([]byte, error) {
	return r.loadBlob(ctx, t, id, b)
}

// loadBlob tries every copy the read may use (Copies) until one opens and
// re-hashes to its ID; a copy that does not is reported and skipped (R23).
func (r *Repository) loadBlob(ctx context.Context, t blob.Type, id blob.ID, b *BlobBuffers) ([]byte, error) {
	copies := r.Copies(ctx, t, id)
	if len(copies) == 0 {
		return nil, fmt.Errorf("%s blob %s is not in the index", t, id.Short())
	}
	var first error
	for i, e := range copies {
		e.Type = t // the index says Data of a tree; open it as what was asked for
		plain, err := r.loadCopy(ctx, e, b)
		if err == nil {
			return plain, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if first == nil {
			first = err
		}
		if i+1 < len(copies) {
			r.log.Warn("a stored copy of a blob is damaged or false; trying another", "err", err)
		}
	}
	return nil, first
}

// loadCopy loads and opens one copy of a blob.
func (r *Repository) loadCopy(ctx context.Context, e index.Entry, b *BlobBuffers) ([]byte, error) {
	t, id := e.Type, e.ID
	var sealed []byte
	h := backend.Handle{Type: backend.Data, Name: e.Pack.String()}
	err := r.be.Load(ctx, h, int(e.Length), int64(e.Offset), func(rd io.Reader) error {
		if b != nil && cap(b.sealed) >= int(e.Length) {
			sealed = b.sealed[:e.Length]
		} else {
			sealed = make([]byte, e.Length)
		}
		_, err := io.ReadFull(rd, sealed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load %s blob %s from %s: %w", t, id.Short(), h, err)
	}
	if b == nil {
		return r.OpenBlob(e, sealed)
	}
	b.sealed = sealed
	return r.openBlob(e, sealed, b.plain, &b.plain, true)
}

// LoadPackRange reads the bytes [start, end) of a pack in one request and
// calls fn with each entry's verified plaintext, in offset order, as the
// bytes arrive: one blob is in memory at a time, however long the range,
// so a restore from remote storage makes one request per pack where it
// made one per 2 MiB (which left it waiting on round trips: 1.6x restic's
// restore time from MinIO). entries must lie inside the range, sorted by
// offset and not overlapping. Retried by the backend, a load resumes: the
// entries fn has seen are skipped. A blob that does not open (damaged,
// or not what its ID says) is given to fn with its error and nil plaintext;
// fn's own error stops the load. With b (which may be nil) each blob is
// read into b's memory, decrypted in place and decompressed into b's other
// buffer, so the plaintext fn gets is valid only until fn returns.
func (r *Repository) LoadPackRange(ctx context.Context, packID blob.ID, start, end uint32, entries []index.Entry, b *BlobBuffers, fn func(e index.Entry, plain []byte, err error) error) error {
	h := backend.Handle{Type: backend.Data, Name: packID.String()}
	pos := start
	for _, e := range entries {
		if e.Offset < pos || e.Offset+e.Length > end || e.Offset+e.Length < e.Offset {
			return fmt.Errorf("entries of %s overlap or lie outside the loaded range", h)
		}
		pos = e.Offset + e.Length
	}
	if b == nil {
		b = new(BlobBuffers)
	}
	done := 0 // entries fn has seen, across retries of the load
	var fnErr error
	err := r.be.Load(ctx, h, int(end-start), int64(start), func(rd io.Reader) error {
		br := packReaders.Get().(*bufio.Reader)
		br.Reset(rd)
		defer func() { br.Reset(nil); packReaders.Put(br) }()
		pos := start
		for i, e := range entries {
			if _, err := br.Discard(int(e.Offset - pos)); err != nil {
				return err
			}
			if cap(b.sealed) < int(e.Length) {
				b.sealed = make([]byte, e.Length)
			}
			sealed := b.sealed[:e.Length]
			if _, err := io.ReadFull(br, sealed); err != nil {
				return err
			}
			pos = e.Offset + e.Length
			if i < done {
				continue
			}
			plain, err := r.openBlob(e, sealed, b.plain, &b.plain, true)
			err = fn(e, plain, err)
			done = i + 1
			if err != nil {
				fnErr = err
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", h, err)
	}
	return nil
}

// packReaders buffer LoadPackRange's reads: a read per small blob would be
// a system call per file on local storage.
var packReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 256<<10) }}
