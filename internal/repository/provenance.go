package repository

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
)

// Provenance (R23, docs/format.md §11a). Every pack header and index
// fragment is signed by its uploader, and every blob copy belongs to a
// domain: the key of the party that uploaded it (the owner or one
// writer). A coordinator (the server key, or the owner doing maintenance)
// may write into any domain, since its repacks keep each blob in the
// domain it came from; anyone else writes only into its own. A copy
// stands for a blob only for its own domain's snapshots and, when it is
// the owner's, for everyone's: so a party that uploads garbage under an
// ID it can compute harms only its own snapshots. Reads still try every
// copy they may use, because the ID re-hash (R6) decides which is good.

// ErrUntrusted reports a pack header or index fragment whose signer is not
// allowed to write what it claims (not in the roster, or another party's
// domain).
var ErrUntrusted = errors.New("not signed by a key allowed to write it")

// OwnerDomain is the owner's provenance domain.
func (r *Repository) OwnerDomain() blob.Domain { return blob.DomainOf(r.keys.OwnerSignPub) }

// Domain is the provenance domain this key's backups upload into: the
// owner's or the writer's own; zero for a server key, which uploads no
// blobs of its own.
func (r *Repository) Domain() blob.Domain { return blob.DomainOf(r.keys.SignerID()) }

// uploadSigner signs the packs and fragments a backup session stores.
func (r *Repository) uploadSigner() ed25519.PrivateKey {
	if r.keys.Sign != nil {
		return r.keys.Sign
	}
	return r.keys.CoordSign
}

// maintenanceSigner signs what maintenance stores (repacks, rewritten
// fragments): the coordinator key, which for an owner is its own signing
// key.
func (r *Repository) maintenanceSigner() ed25519.PrivateKey {
	if r.keys.CoordSign != nil {
		return r.keys.CoordSign
	}
	return r.keys.Sign
}

// knownParty reports whether d is the owner or a writer the roster lists
// or has revoked (a revoked writer's old uploads keep its domain).
func (r *Repository) knownParty(d blob.Domain) bool {
	if d == r.OwnerDomain() {
		return true
	}
	if r.roster == nil {
		return false
	}
	for _, w := range r.roster.Writers {
		if bytes.Equal(w.ID, d[:]) {
			return true
		}
	}
	for _, v := range r.roster.Revoked {
		if bytes.Equal(v.ID, d[:]) {
			return true
		}
	}
	return false
}

// isCoordinator reports whether d is the owner or a roster coordinator.
func (r *Repository) isCoordinator(d blob.Domain) bool {
	return d == r.OwnerDomain() || r.roster != nil && r.roster.IsCoordinator(d[:])
}

// MayWriteDomain reports whether signer may store blobs of domain dom: its
// own domain if it is a known party, any known party's domain if it is a
// coordinator (R23).
func (r *Repository) MayWriteDomain(signer, dom blob.Domain) bool {
	if !r.knownParty(dom) {
		return false
	}
	return signer == dom || r.isCoordinator(signer)
}

// MaySignIndex reports whether signer may sign index fragments at all.
func (r *Repository) MaySignIndex(signer blob.Domain) bool {
	return r.knownParty(signer) || r.isCoordinator(signer)
}

// VerifyHeader checks a pack header's signature and that its signer may
// write into its domain.
func (r *Repository) VerifyHeader(h *pack.Header) error {
	if err := h.VerifySignature(r.keys.RepoID); err != nil {
		return err
	}
	if !r.MayWriteDomain(blob.Domain(h.Signer), h.Domain) {
		return fmt.Errorf("pack header signed by %s for domain %s: %w", blob.Domain(h.Signer).Short(), h.Domain.Short(), ErrUntrusted)
	}
	return nil
}

// verifyFragment checks an index fragment's signature and that its signer
// may list every pack in it under that pack's domain. Headers listed by
// their own signer in their own fragment are trusted through the
// fragment's signature; a header's own signature is checked where the
// pack itself is read (check, repair, the server's upload validation).
func (r *Repository) verifyFragment(plain []byte, packs []pack.ParsedPack) (blob.Domain, error) {
	signer, err := pack.IndexSigner(plain, r.keys.RepoID)
	if err != nil {
		return signer, err
	}
	if !r.MaySignIndex(signer) {
		return signer, fmt.Errorf("index fragment signed by %s: %w", signer.Short(), ErrUntrusted)
	}
	for _, p := range packs {
		if !r.MayWriteDomain(signer, p.Parsed.Domain) {
			return signer, fmt.Errorf("index fragment signed by %s lists pack %s of domain %s: %w", signer.Short(), p.Pack.Short(), p.Parsed.Domain.Short(), ErrUntrusted)
		}
	}
	return signer, nil
}

type readerKey struct{}

// ReadFor returns a context under which blob reads serve a snapshot signed
// by signer: only copies of signer's domain and the owner's, in that
// order (R23).
func ReadFor(ctx context.Context, signer blob.Domain) context.Context {
	return context.WithValue(ctx, readerKey{}, signer)
}

// Copies returns the copies of a blob a read may use, in the order to try
// them: under ReadFor, the signer's domain then the owner's; otherwise the
// owner's first, then every other. A copy that fails to open or re-hash is
// skipped by the reader, so the order only decides which good copy is
// read.
func (r *Repository) Copies(ctx context.Context, t blob.Type, id blob.ID) []index.Entry {
	all := r.idx.LookupAll(id, t)
	owner := r.OwnerDomain()
	signer, strict := ctx.Value(readerKey{}).(blob.Domain)
	rank := func(e *index.Entry) int {
		switch {
		case strict && e.Domain == signer:
			return 0
		case e.Domain == owner:
			return 1
		case strict:
			return -1 // not usable
		}
		return 2
	}
	out := all[:0]
	for _, e := range all {
		if rank(&e) >= 0 {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b index.Entry) int { return rank(&a) - rank(&b) })
	return out
}

// Locate returns the first copy Copies would try.
func (r *Repository) Locate(ctx context.Context, t blob.Type, id blob.ID) (index.Entry, bool) {
	cs := r.Copies(ctx, t, id)
	if len(cs) == 0 {
		return index.Entry{}, false
	}
	return cs[0], true
}

// Revoked reports whether d is a writer the roster has revoked: its old
// uploads keep their domain, but a server accepts no new ones (R23, R24).
func (r *Repository) Revoked(d blob.Domain) bool {
	if r.roster == nil {
		return false
	}
	for _, v := range r.roster.Revoked {
		if bytes.Equal(v.ID, d[:]) {
			return true
		}
	}
	return false
}

// verifyNewHeader is VerifyHeader for a new upload: a revoked writer may
// no longer add packs.
func (r *Repository) verifyNewHeader(h *pack.Header) error {
	if err := r.VerifyHeader(h); err != nil {
		return err
	}
	if r.Revoked(blob.Domain(h.Signer)) {
		return fmt.Errorf("pack header signed by revoked writer %s: %w", blob.Domain(h.Signer).Short(), ErrUntrusted)
	}
	return nil
}
