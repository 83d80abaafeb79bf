package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Error codes of upload validation (R15), in the X-Cairn-Error header.
const (
	codeInvalid  = "invalid-object"  // malformed, or not sealed to this server
	codeSequence = "bad-sequence"    // a snapshot out of its writer's sequence
	codeSigner   = "bad-signature"   // unsigned, mis-signed, or not in the roster
	codeMissing  = "missing-objects" // references something not stored
)

// refusal is a validation failure: what the client is told.
type refusal struct {
	status int
	code   string
	msg    string
}

func (r *refusal) Error() string { return r.msg }

func refusef(status int, code, format string, a ...any) *refusal {
	return &refusal{status: status, code: code, msg: fmt.Sprintf(format, a...)}
}

// cairnRepos remembers which repositories are cairn repositories (their
// config starts with "CRC1"), and the server keys for each. A restic
// repository is never validated beyond hash = name.
type cairnRepos struct {
	mu    sync.Mutex
	known map[string]*cairnRepo // nil value: known not to be cairn
}

type cairnRepo struct {
	cfgRaw []byte
	keys   *crypto.Keys
}

// cairnRepo returns the repository's cairn state, nil for a restic
// repository or one without a config yet.
func (s *Server) cairnRepo(ctx context.Context, repo string, be backend.Backend) (*cairnRepo, error) {
	s.cairn.mu.Lock()
	cr, ok := s.cairn.known[repo]
	s.cairn.mu.Unlock()
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
	if !bytes.HasPrefix(raw, []byte("CRC1")) {
		cr = nil
	} else {
		cfg, err := repository.PeekConfig(raw)
		if err != nil {
			return nil, fmt.Errorf("stored config: %w", err)
		}
		keys, err := repository.ServerKeys(cfg, s.data.Identity.MetaIdentity, s.data.Identity.SignSeed)
		if err != nil {
			return nil, err
		}
		cr = &cairnRepo{cfgRaw: raw, keys: keys}
	}
	s.cairn.mu.Lock()
	s.cairn.known[repo] = cr
	s.cairn.mu.Unlock()
	return cr, nil
}

// open opens the repository with the server's keys (fresh roster).
func (cr *cairnRepo) open(ctx context.Context, be backend.Backend) (*repository.Repository, error) {
	return repository.OpenWithKeys(ctx, be, cr.keys, "", cr.cfgRaw, repository.Options{})
}

// validate checks an upload to a cairn repository before it becomes
// visible (R15). A nil cr with a config upload checks the config itself.
func (s *Server) validate(ctx context.Context, cr *cairnRepo, be backend.Backend, h backend.Handle, body []byte) error {
	if cr == nil {
		if h.Type == backend.Config && bytes.HasPrefix(body, []byte("CRC1")) {
			cfg, err := repository.PeekConfig(body)
			if err != nil {
				return refusef(http.StatusBadRequest, codeInvalid, "config: %v", err)
			}
			if _, err := repository.ServerKeys(cfg, s.data.Identity.MetaIdentity, s.data.Identity.SignSeed); err != nil {
				return refusef(http.StatusBadRequest, codeInvalid, "config: %v; create the repository with `cairn init` against this server", err)
			}
		}
		return nil
	}
	switch h.Type {
	case backend.Data:
		_, _, err := packHeader(body, cr.keys)
		return err
	case backend.Index:
		return s.validateIndex(ctx, cr, be, body)
	case backend.Snapshots:
		return s.validateSnapshot(ctx, cr, be, body)
	case backend.Receipts, backend.Tombstones, backend.Plans, backend.Locks:
		return refusef(http.StatusForbidden, codeInvalid, "%s are written by the server, never by a client", h.Type)
	}
	return nil
}

// packHeader checks a pack's geometry and opens its sealed header with the
// server's identity; it returns the plaintext header.
func packHeader(buf []byte, keys *crypto.Keys) (*pack.Header, []byte, error) {
	if len(buf) < pack.TrailerSize {
		return nil, nil, refusef(http.StatusBadRequest, codeInvalid, "pack: %d bytes is shorter than a trailer", len(buf))
	}
	off, l, err := pack.ParseTrailer(buf[len(buf)-pack.TrailerSize:], int64(len(buf)))
	if err != nil {
		return nil, nil, refusef(http.StatusBadRequest, codeInvalid, "pack: %v", err)
	}
	hdr, plain, err := pack.OpenHeader(buf[off:off+int64(l)], off, keys.MetaIdentity)
	if err != nil {
		return nil, nil, refusef(http.StatusBadRequest, codeInvalid, "pack: %v (headers must be sealed to this server's metadata key)", err)
	}
	return hdr, plain, nil
}

// storedPackHeader reads a stored pack's header (trailer, then header).
func storedPackHeader(ctx context.Context, be backend.Backend, keys *crypto.Keys, id blob.ID) ([]byte, error) {
	h := backend.Handle{Type: backend.Data, Name: id.String()}
	fi, err := be.Stat(ctx, h)
	if err != nil {
		return nil, err
	}
	if fi.Size < pack.TrailerSize {
		return nil, fmt.Errorf("stored pack %s is truncated", id.String()[:8])
	}
	tr, err := loadRange(ctx, be, h, pack.TrailerSize, fi.Size-pack.TrailerSize)
	if err != nil {
		return nil, err
	}
	off, l, err := pack.ParseTrailer(tr, fi.Size)
	if err != nil {
		return nil, err
	}
	sealed, err := loadRange(ctx, be, h, l, off)
	if err != nil {
		return nil, err
	}
	_, plain, err := pack.OpenHeader(sealed, off, keys.MetaIdentity)
	return plain, err
}

func loadRange(ctx context.Context, be backend.Backend, h backend.Handle, n int, off int64) ([]byte, error) {
	var out []byte
	err := be.Load(ctx, h, n, off, func(rd io.Reader) error {
		var buf bytes.Buffer
		_, err := buf.ReadFrom(rd)
		out = buf.Bytes()
		return err
	})
	return out, err
}

// validateIndex: the fragment opens with the server's identity, parses,
// and lists every pack with exactly the header the stored pack has.
func (s *Server) validateIndex(ctx context.Context, cr *cairnRepo, be backend.Backend, body []byte) error {
	plain, err := crypto.Open(body, cr.keys.MetaIdentity, crypto.ErrNeedsMetadata)
	if err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "index fragment: %v (it must be sealed to this server's metadata key)", err)
	}
	packs, err := pack.ParseIndex(plain)
	if err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "index fragment: %v", err)
	}
	for _, p := range packs {
		stored, err := storedPackHeader(ctx, be, cr.keys, p.Pack)
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
// next in that writer's chain, whose manifest pages are all indexed.
// The caller holds the client's snapshot lock, so the chain cannot move.
func (s *Server) validateSnapshot(ctx context.Context, cr *cairnRepo, be backend.Backend, body []byte) error {
	f, err := snapshot.ParseFile(body)
	if err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "snapshot: %v", err)
	}
	st := f.Statement
	if st.RepoID != cr.keys.RepoID {
		return refusef(http.StatusBadRequest, codeInvalid, "snapshot belongs to another repository")
	}
	if err := f.Verify(); err != nil {
		return refusef(http.StatusBadRequest, codeSigner, "snapshot: %v", err)
	}
	repo, err := cr.open(ctx, be)
	if err != nil {
		return err
	}
	if !repo.MayCommit(ed25519.PublicKey(st.Writer[:]), st.Seq) {
		return refusef(http.StatusForbidden, codeSigner, "snapshot signed by %x…, which is neither the owner nor a writer in the roster", st.Writer[:6])
	}
	mb, err := crypto.Open(f.MetaSealed, cr.keys.MetaIdentity, crypto.ErrNeedsMetadata)
	if err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "snapshot metadata header: %v", err)
	}
	meta, err := snapshot.UnmarshalMeta(mb)
	if err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "snapshot metadata header: %v", err)
	}
	if snapshot.ManifestRoot(meta.Pages) != st.ManifestRoot {
		return refusef(http.StatusBadRequest, codeInvalid, "snapshot: manifest pages do not match the signed root")
	}
	// Sequence: seq = last + 1 and prev = hash of the last (R11, R22).
	snaps, _, err := repo.Snapshots(ctx)
	if err != nil {
		return err
	}
	var last *snapshot.Statement
	for _, sn := range snaps {
		o := sn.File.Statement
		if o.Writer == st.Writer && (last == nil || o.Seq > last.Seq) {
			last = o
		}
	}
	want := uint64(1)
	var prev [32]byte
	if last != nil {
		want, prev = last.Seq+1, last.Hash()
	}
	if st.Seq != want || st.Prev != prev {
		return refusef(http.StatusConflict, codeSequence, "snapshot seq %d does not follow its writer's last stored statement (want seq %d after %x…)", st.Seq, want, prev[:4])
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	var missing []string
	for _, p := range meta.Pages {
		if _, ok := repo.Lookup(blob.ManifestPage, p); !ok {
			missing = append(missing, p.String()[:12])
		}
	}
	if len(missing) > 0 {
		return refusef(http.StatusConflict, codeMissing, "snapshot references %d manifest pages that are not indexed: %v", len(missing), missing)
	}
	return nil
}

// readBody reads an upload of size bytes into memory for validation; on
// failure it has answered the request.
func (s *Server) readBody(q *request, size int64) ([]byte, bool) {
	buf := make([]byte, size)
	if _, err := io.ReadFull(q.r.Body, buf); err != nil {
		q.refuse(http.StatusBadRequest, restapi.CodeBadRequest, "read upload: %v", err)
		return nil, false
	}
	return buf, true
}
