package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Error codes of upload validation (R15), in the X-Cairn-Error header.
const (
	codeInvalid  = restapi.CodeInvalidObject  // malformed, or not sealed to this server
	codeSequence = restapi.CodeSequence       // a snapshot out of its writer's sequence
	codeSigner   = restapi.CodeBadSignature   // unsigned, mis-signed, or not in the roster
	codeMissing  = restapi.CodeMissingObjects // references something not stored
)

// The same codes, for the server and its tests.
const (
	CodeInvalid  = codeInvalid
	CodeSequence = codeSequence
	CodeSigner   = codeSigner
	CodeMissing  = codeMissing
	CodeIdentity = codeIdentity
)

// refusal is a validation failure: what the client is told.
type refusal = repohttp.Refusal

var refusef = repohttp.Refusef

// Verifier validates uploads to the cairn repositories of one server
// before they become visible (R15), keeps the chain records (chain.go)
// and writes receipts. It remembers which repositories are cairn
// repositories (repository.IsCairnConfig), and the server keys for each.
// A restic repository is never validated beyond hash = name.
type Verifier struct {
	// Secrets returns the server's identity, read at each use.
	Secrets func() (Secrets, error)
	State   *state.State
	Log     *slog.Logger
	Now     func() time.Time
	// MaxInMemory is the largest file of a type validation reads whole.
	MaxInMemory func(backend.FileType) int64

	mu    sync.Mutex
	known map[string]*Repo // nil value: known not to be cairn
	uses  atomic.Uint64    // orders the cached indexes' last uses
}

// maxCachedIndexes bounds how many repositories' indexes a server keeps
// in memory between commits; the least recently used goes first.
const maxCachedIndexes = 8

// Secrets are the server's identity: its metadata identity and recipient
// and its coordinator signing key's seed.
type Secrets struct {
	MetaIdentity  string
	MetaRecipient string
	SignSeed      []byte
}

// Repo is a cairn repository as the verifier knows it.
type Repo struct {
	log  *slog.Logger
	path string                     // <client>/<repository…>
	v    *repository.ServerVerifier // the stored config and the server's keys

	chainMu sync.Mutex
	seen    chainSeen // files folded into the chain records (chain.go)

	// The index as the commit check needs it (checkManifest): the
	// repository opened with the server's keys, its index loaded once and
	// then followed fragment by fragment; pages are manifest pages whose
	// every ref was indexed when checked. Both hold only while the index
	// grows: a fragment gone from storage (a prune's rewrite), or
	// maintenance by this server (DropIndex), starts afresh.
	idxMu   sync.Mutex
	idx     *repository.Repository
	frags   map[string]bool
	pages   map[pageKey]bool
	lastUse uint64
}

// pageKey is a manifest page checked complete for one signer's domain.
type pageKey struct {
	signer blob.Domain
	page   blob.ID
}

// Repo returns the repository's cairn state, nil for a restic
// repository or one without a config yet.
func (s *Verifier) Repo(ctx context.Context, repo string, be backend.Backend) (*Repo, error) {
	s.mu.Lock()
	if s.known == nil {
		s.known = map[string]*Repo{}
	}
	cr, ok := s.known[repo]
	s.mu.Unlock()
	if ok {
		return cr, nil
	}
	raw, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if errors.Is(err, backend.ErrNotFound) {
		return nil, nil // not decided yet
	}
	if err != nil {
		return nil, err
	}
	if !repository.IsCairnConfig(raw) {
		cr = nil
	} else {
		sec, err := s.Secrets()
		if err != nil {
			return nil, err
		}
		v, err := repository.NewServerVerifier(raw, sec.MetaIdentity, sec.SignSeed)
		if err != nil {
			return nil, err
		}
		cr = &Repo{path: repo, v: v, log: s.Log.With("repo", repo)}
	}
	s.mu.Lock()
	s.known[repo] = cr
	s.mu.Unlock()
	return cr, nil
}

// Path is the repository's path, <client>/<repository…>.
func (cr *Repo) Path() string { return cr.path }

// RepoID is the repository's ID.
func (cr *Repo) RepoID() [32]byte { return cr.v.RepoID() }

// ForgetSeen makes the next commit fold every stored snapshot and
// tombstone into the chain records again, as a restarted server does.
func (cr *Repo) ForgetSeen() {
	cr.chainMu.Lock()
	cr.seen = chainSeen{}
	cr.chainMu.Unlock()
}

// Open opens the repository with the server's keys (fresh roster).
func (cr *Repo) Open(ctx context.Context, be backend.Backend) (*repository.Repository, error) {
	// Warnings (a skipped invalid roster, config version or index
	// fragment, R24) go to the server's log.
	return cr.v.Open(ctx, be, repository.Options{Logger: cr.log})
}

// Validate checks an upload to a cairn repository before it becomes
// visible (R15). A nil cr with a config upload checks the config itself.
// It reads from the spooled upload only what it needs (upload.go).
func (s *Verifier) Validate(ctx context.Context, cr *Repo, be backend.Backend, h backend.Handle, u *repohttp.Upload) error {
	if cr == nil {
		if h.Type != backend.Config {
			return nil
		}
		body, err := u.Bytes(s.MaxInMemory(h.Type))
		if err != nil {
			return err
		}
		if repository.IsCairnConfig(body) {
			sec, err := s.Secrets()
			if err != nil {
				return err
			}
			if err := repository.CheckServerConfig(body, sec.MetaIdentity, sec.SignSeed); err != nil {
				return refusef(http.StatusBadRequest, codeInvalid, "config: %v; create the repository with `cairn init` against this server", err)
			}
		}
		return nil
	}
	switch h.Type {
	case backend.Data:
		return s.validatePack(ctx, cr, be, u)
	case backend.Index:
		body, err := u.Bytes(s.MaxInMemory(h.Type))
		if err != nil {
			return err
		}
		return s.validateIndex(ctx, cr, be, body)
	case backend.Snapshots:
		body, err := u.Bytes(s.MaxInMemory(h.Type))
		if err != nil {
			return err
		}
		return s.validateSnapshot(ctx, cr, be, body)
	case backend.Rosters, backend.Configs, backend.Config, backend.Keys:
		body, err := u.Bytes(s.MaxInMemory(h.Type))
		if err != nil {
			return err
		}
		switch h.Type {
		case backend.Rosters:
			return s.validateRoster(ctx, cr, be, body)
		case backend.Keys:
			return s.validateKeyFile(cr, body)
		}
		return s.validateConfig(ctx, cr, be, h.Type, body)
	case backend.Receipts, backend.Tombstones, backend.Plans, backend.Locks, backend.Claims:
		return refusef(http.StatusForbidden, codeInvalid, "%s are written by the server, never by a client", h.Type)
	}
	return nil
}

// validatePack: the pack's geometry, its header sealed to this server, and
// signed by a roster key allowed to write the header's domain (R15, R23).
// It reads only the trailer and the header from the spooled upload, each
// read charged to the server's validation memory budget.
func (s *Verifier) validatePack(ctx context.Context, cr *Repo, be backend.Backend, u *repohttp.Upload) error {
	repo, err := cr.Open(ctx, be)
	if err != nil {
		return err
	}
	_, _, err = repo.VerifyPack(budgeted{u}, u.Size())
	switch {
	case errors.Is(err, repository.ErrUntrusted):
		return refusef(http.StatusForbidden, codeSigner, "pack: %v", err)
	case errors.Is(err, repository.ErrBadPack):
		return refusef(http.StatusBadRequest, codeInvalid, "pack: %v (headers must be sealed to this server's metadata key and signed by their uploader)", err)
	}
	return err
}

// budgeted reads from an upload, charging what each read brings into
// memory to the upload's budget (upload.charge).
type budgeted struct{ u *repohttp.Upload }

func (b budgeted) ReadAt(p []byte, off int64) (int, error) {
	if err := b.u.Charge(int64(len(p))); err != nil {
		return 0, err
	}
	return b.u.ReadAt(p, off)
}

// validateIndex: the fragment opens with the server's identity, parses, is
// signed by a key allowed to list each of its packs under the pack's
// domain (R23), and lists every pack with exactly the header the stored
// pack has.
func (s *Verifier) validateIndex(ctx context.Context, cr *Repo, be backend.Backend, body []byte) error {
	repo, err := cr.Open(ctx, be)
	if err != nil {
		return err
	}
	packs, err := repo.VerifyIndexFragment(body)
	switch {
	case errors.Is(err, repository.ErrUntrusted):
		return refusef(http.StatusForbidden, codeSigner, "%v", err)
	case err != nil:
		return refusef(http.StatusBadRequest, codeInvalid, "%v (it must be sealed to this server's metadata key and signed by its uploader)", err)
	}
	for _, p := range packs {
		_, stored, err := repo.StoredPackHeader(ctx, p.Pack)
		if errors.Is(err, backend.ErrNotFound) {
			return refusef(http.StatusConflict, codeMissing, "index fragment lists pack %s, which is not stored; upload the pack first", p.Pack.String()[:12])
		}
		if err != nil {
			return refusef(http.StatusConflict, codeInvalid, "index fragment lists pack %s: %v", p.Pack.String()[:12], err)
		}
		if !bytes.Equal(stored, p.Header) {
			return refusef(http.StatusBadRequest, codeInvalid, "index fragment: header of pack %s differs from the stored pack's", p.Pack.String()[:12])
		}
	}
	return nil
}

// validateSnapshot: a signed statement by the owner or a roster writer,
// next in that writer's chain (its chain record), whose manifest pages and
// every blob they name are indexed.
// The caller holds the client's snapshot lock, so the chain cannot move.
func (s *Verifier) validateSnapshot(ctx context.Context, cr *Repo, be backend.Backend, body []byte) error {
	repo, err := cr.Open(ctx, be)
	if err != nil {
		return err
	}
	f, meta, err := repo.VerifyCommit(body)
	switch {
	case errors.Is(err, repository.ErrBadSnapshot):
		return refusef(http.StatusBadRequest, codeInvalid, "snapshot: %v", err)
	case errors.Is(err, repository.ErrBadSignature):
		return refusef(http.StatusBadRequest, codeSigner, "snapshot: %v", err)
	case errors.Is(err, repository.ErrUntrusted):
		return refusef(http.StatusForbidden, codeSigner, "%v", err)
	case err != nil:
		return err
	}
	st := f.Statement
	if err := checkIdentity(repo, st, meta); err != nil {
		return err
	}
	// Sequence: seq = last + 1 and prev = hash of the last (R11, R22),
	// from the chain record: the last statement may since have been
	// forgotten, its tombstone keeps the chain.
	if err := s.syncChain(ctx, cr, be, repo); err != nil {
		return err
	}
	last, ok, err := s.State.ChainLink(ctx, cr.path, cr.v.RepoID(), st.Writer)
	if err != nil {
		return err
	}
	want := uint64(1)
	var prev [32]byte
	if ok {
		want, prev = last.Seq+1, last.Hash
	}
	if st.Seq != want || st.Prev != prev {
		h := st.Hash()
		switch {
		case ok && h == last.Hash:
			return refusef(http.StatusConflict, codeSequence, "snapshot seq %d is already its writer's last committed statement (%s…, stored or since forgotten); nothing stored again", st.Seq, last.Snapshot[:min(12, len(last.Snapshot))])
		case ok && st.Seq <= last.Seq:
			return refusef(http.StatusConflict, codeSequence, "snapshot seq %d does not follow its writer's last committed statement (want seq %d after %x…): the server recorded seq %d (%s…) even if storage no longer holds it; a replayed or rolled-back chain is refused",
				st.Seq, want, prev[:4], last.Seq, last.Snapshot[:min(12, len(last.Snapshot))])
		}
		return refusef(http.StatusConflict, codeSequence, "snapshot seq %d does not follow its writer's last committed statement (want seq %d after %x…)", st.Seq, want, prev[:4])
	}
	// Completeness: every manifest page, and every blob they name, is
	// indexed (R11, R15).
	pages, refs, nrefs, err := cr.checkManifest(ctx, be, blob.Domain(st.Writer), meta.Pages, s.uses.Add(1))
	s.evictIndexes(cr)
	if err != nil {
		return err
	}
	if len(pages) > 0 {
		return refusef(http.StatusConflict, codeMissing, "snapshot references %d manifest pages that are not indexed: %v", len(pages), pages)
	}
	if nrefs > 0 {
		return refusef(http.StatusConflict, codeMissing, "snapshot references %d blobs that are not stored (deleted by a prune, or never uploaded); upload them again: %v", nrefs, refs)
	}
	return nil
}

// maxMissingShown is how many missing IDs a refusal lists.
const maxMissingShown = 16

// checkManifest checks that every page and every ref of a manifest is in
// the index in the signer's own domain (R23): it returns (the first few
// of) the pages and refs that are not, as short IDs, and how many refs are
// missing. Looking in the signer's domain alone makes the answer say
// nothing about anyone else's data: a writer that commits guessed IDs
// learns only what it uploaded itself. Pages checked before for the same
// signer are not read again while the index only grows.
func (cr *Repo) checkManifest(ctx context.Context, be backend.Backend, signer blob.Domain, pages []blob.ID, use uint64) (missingPages, missingRefs []string, nrefs int, err error) {
	cr.idxMu.Lock()
	defer cr.idxMu.Unlock()
	cr.lastUse = use
	repo, err := cr.followIndex(ctx, be)
	if err != nil {
		return nil, nil, 0, err
	}
	var todo []blob.ID
	for _, p := range pages {
		switch {
		case cr.pages[pageKey{signer, p}]:
		case !repo.Index().HasIn(p, blob.ManifestPage, signer):
			missingPages = append(missingPages, p.String()[:12])
		default:
			todo = append(todo, p)
		}
	}
	if len(missingPages) > 0 {
		return missingPages, nil, 0, nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, p := range todo {
		g.Go(func() error {
			plain, err := repo.LoadBlob(repository.ReadFor(gctx, signer), blob.ManifestPage, p)
			if err != nil {
				return fmt.Errorf("read manifest page: %w", err)
			}
			refs, err := snapshot.DecodePage(plain)
			if err != nil {
				return refusef(http.StatusBadRequest, codeInvalid, "snapshot manifest page %s: %v", p.String()[:12], err)
			}
			complete := true
			for _, r := range refs {
				if repo.Index().HasIn(r.ID, r.Type, signer) {
					continue
				}
				complete = false
				mu.Lock()
				if nrefs++; len(missingRefs) < maxMissingShown {
					missingRefs = append(missingRefs, fmt.Sprintf("%s:%s", r.Type, r.ID.String()[:12]))
				}
				mu.Unlock()
			}
			if complete {
				mu.Lock()
				cr.pages[pageKey{signer, p}] = true
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, 0, err
	}
	return nil, missingRefs, nrefs, nil
}

// followIndex brings the cached index up to date with storage: the whole
// index the first time (or after it was dropped, or a fragment vanished),
// then only the fragments stored since. The caller holds idxMu.
func (cr *Repo) followIndex(ctx context.Context, be backend.Backend) (*repository.Repository, error) {
	var names []string
	if err := be.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list index: %w", err)
	}
	if cr.idx != nil {
		listed := make(map[string]bool, len(names))
		for _, n := range names {
			listed[n] = true
		}
		for n := range cr.frags {
			if !listed[n] {
				cr.idx = nil // rewritten by a prune: blobs may be gone
				break
			}
		}
	}
	fresh := cr.idx == nil
	if cr.idx == nil {
		repo, err := cr.Open(ctx, be)
		if err != nil {
			return nil, err
		}
		cr.idx, cr.frags, cr.pages = repo, map[string]bool{}, map[pageKey]bool{}
	}
	// The names still to load are picked before any goroutine writes to
	// cr.frags.
	var todo []string
	for _, n := range names {
		if !cr.frags[n] {
			todo = append(todo, n)
		}
	}
	var mu sync.Mutex
	var stale atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, n := range todo {
		g.Go(func() error {
			f, err := cr.idx.LoadIndexFile(gctx, n)
			if errors.Is(err, backend.ErrNotFound) {
				return nil // removed meanwhile
			}
			if errors.Is(err, repository.ErrInvalidFragment) {
				// Not trusted under the roster this index was opened
				// with: perhaps a writer enrolled since. Start afresh
				// once; a fragment still invalid then is skipped, as
				// every reader skips it.
				if !fresh {
					stale.Store(true)
				}
				mu.Lock()
				cr.frags[n] = true
				mu.Unlock()
				return nil
			}
			if err != nil {
				return err
			}
			cr.idx.AddIndexFile(f)
			mu.Lock()
			cr.frags[n] = true
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if stale.Load() {
		cr.idx = nil
		return cr.followIndex(ctx, be)
	}
	return cr.idx, nil
}

// evictIndexes drops the least recently used cached indexes beyond
// maxCachedIndexes, never keep's; one busy elsewhere is left for later.
func (s *Verifier) evictIndexes(keep *Repo) {
	s.mu.Lock()
	var held []*Repo
	for _, cr := range s.known {
		if cr != nil && cr != keep {
			held = append(held, cr)
		}
	}
	s.mu.Unlock()
	type use struct {
		cr *Repo
		n  uint64
	}
	var cached []use
	for _, cr := range held {
		if cr.idxMu.TryLock() {
			if cr.idx != nil {
				cached = append(cached, use{cr, cr.lastUse})
			}
			cr.idxMu.Unlock()
		}
	}
	if len(cached) < maxCachedIndexes {
		return
	}
	sort.Slice(cached, func(i, j int) bool { return cached[i].n < cached[j].n })
	for _, u := range cached[:len(cached)-(maxCachedIndexes-1)] {
		if u.cr.idxMu.TryLock() {
			u.cr.idx, u.cr.frags, u.cr.pages = nil, nil, nil
			u.cr.idxMu.Unlock()
		}
	}
}

// DropIndex forgets the cached index of a repository; maintenance calls it
// (still coordinating) once it may have rewritten the index.
func (s *Verifier) DropIndex(repo string) {
	s.mu.Lock()
	cr := s.known[repo]
	s.mu.Unlock()
	if cr == nil {
		return
	}
	cr.idxMu.Lock()
	cr.idx, cr.frags, cr.pages = nil, nil, nil
	cr.idxMu.Unlock()
}
