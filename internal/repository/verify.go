package repository

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// The verifier: what the server (upload validation), check and prune
// need to know about a pack without parsing the format themselves.

// ErrBadPack marks a pack whose trailer or header is malformed, does not
// open with this key's metadata identity, or is not validly signed for its
// domain (R15, R23).
var ErrBadPack = errors.New("invalid pack")

// PackHeaderAt reads a pack of size bytes through ra: its trailer, then
// its sealed header, which it opens with the metadata identity and checks
// against the pack's geometry. It returns the header and its plaintext.
func (r *Repository) PackHeaderAt(ra io.ReaderAt, size int64) (*pack.Header, []byte, error) {
	if size < pack.TrailerSize {
		return nil, nil, fmt.Errorf("%w: %d bytes is shorter than a pack trailer", ErrBadPack, size)
	}
	trailer := make([]byte, pack.TrailerSize)
	if _, err := ra.ReadAt(trailer, size-pack.TrailerSize); err != nil {
		return nil, nil, fmt.Errorf("read pack trailer: %w", err)
	}
	off, l, err := pack.ParseTrailer(trailer, size)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadPack, err)
	}
	sealed := make([]byte, l)
	if _, err := ra.ReadAt(sealed, off); err != nil {
		return nil, nil, fmt.Errorf("read pack header: %w", err)
	}
	hdr, plain, err := pack.OpenHeader(sealed, off, r.keys.MetaIdentity)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadPack, err)
	}
	return hdr, plain, nil
}

// VerifyPack is PackHeaderAt plus the header's signature and its signer's
// right to write into its domain, and not revoked: what an upload must
// pass (R23, R24).
func (r *Repository) VerifyPack(ra io.ReaderAt, size int64) (*pack.Header, []byte, error) {
	hdr, plain, err := r.PackHeaderAt(ra, size)
	if err != nil {
		return nil, nil, err
	}
	if err := r.verifyNewHeader(hdr); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadPack, err)
	}
	return hdr, plain, nil
}

// StoredPackHeader reads and opens a stored pack's own header.
func (r *Repository) StoredPackHeader(ctx context.Context, id blob.ID) (*pack.Header, []byte, error) {
	h := backend.Handle{Type: backend.Data, Name: id.String()}
	fi, err := r.be.Stat(ctx, h)
	if err != nil {
		return nil, nil, err
	}
	return r.PackHeaderAt(backendReaderAt{ctx, r.be, h}, fi.Size)
}

// backendReaderAt reads a stored file's ranges, one request each.
type backendReaderAt struct {
	ctx context.Context
	be  backend.Backend
	h   backend.Handle
}

func (b backendReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	err := b.be.Load(b.ctx, b.h, len(p), off, func(rd io.Reader) error {
		var err error
		n, err = io.ReadFull(rd, p)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("load %s: %w", b.h, err)
	}
	return n, nil
}

// VerifyIndexFragment opens, decodes and verifies an uploaded index
// fragment: sealed to this metadata identity, well formed, signed by a key
// allowed to list every pack in it under that pack's domain (R23). Whether
// each header matches its stored pack is the caller's to check.
func (r *Repository) VerifyIndexFragment(sealed []byte) ([]pack.ParsedPack, error) {
	plain, err := crypto.Open(sealed, r.keys.MetaIdentity, crypto.ErrNeedsMetadata)
	if err != nil {
		return nil, fmt.Errorf("index fragment: %w", err)
	}
	packs, err := pack.ParseIndex(plain)
	if err != nil {
		return nil, fmt.Errorf("index fragment: %w", err)
	}
	signer, err := r.verifyFragment(plain, packs)
	if err != nil {
		return nil, err
	}
	if r.Revoked(signer) {
		return nil, fmt.Errorf("index fragment signed by revoked writer %s: %w", signer.Short(), ErrUntrusted)
	}
	return packs, nil
}

// ErrBadSnapshot marks an uploaded snapshot file that is malformed, of
// another repository, or whose metadata header does not open or match its
// statement.
var ErrBadSnapshot = errors.New("invalid snapshot")

// VerifyCommit checks an uploaded snapshot file as far as the file itself
// goes (R1, R15): well formed, this repository's, signed by its statement's
// key (crypto.ErrBadSignature), that key allowed to sign its seq
// (ErrUntrusted), its metadata header sealed to this key's metadata
// identity and naming the signed manifest root. It returns the file and
// the opened metadata header; chain order and completeness are the
// coordinator's to check.
func (r *Repository) VerifyCommit(body []byte) (*snapshot.File, *snapshot.MetaHeader, error) {
	f, err := snapshot.ParseFile(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	st := f.Statement
	if st.RepoID != r.keys.RepoID {
		return nil, nil, fmt.Errorf("%w: it belongs to another repository", ErrBadSnapshot)
	}
	if err := f.Verify(); err != nil {
		if !errors.Is(err, crypto.ErrBadSignature) {
			err = fmt.Errorf("%w: %w", crypto.ErrBadSignature, err)
		}
		return nil, nil, err
	}
	if !r.MayCommit(ed25519.PublicKey(st.Writer[:]), st.Seq) {
		return nil, nil, fmt.Errorf("snapshot signed by %x…, which is neither the owner nor a writer in the roster: %w", st.Writer[:6], ErrUntrusted)
	}
	mb, err := crypto.Open(f.MetaSealed, r.keys.MetaIdentity, crypto.ErrNeedsMetadata)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: metadata header: %w", ErrBadSnapshot, err)
	}
	meta, err := snapshot.UnmarshalMeta(mb)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: metadata header: %w", ErrBadSnapshot, err)
	}
	if snapshot.ManifestRoot(meta.Pages) != st.ManifestRoot {
		return nil, nil, fmt.Errorf("%w: manifest pages do not match the signed root", ErrBadSnapshot)
	}
	return f, meta, nil
}

// VerifyStoredConfig checks the fixed-name config against this key's
// pinned owner key (R2, R3). Open falls back to the newest valid version
// in configs/ when it does not verify; check reports it.
func (r *Repository) VerifyStoredConfig(ctx context.Context) error {
	buf, err := backend.LoadAll(ctx, r.be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		return err
	}
	_, err = parseOwnConfig(buf, r.keys)
	return err
}
