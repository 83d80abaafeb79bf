package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/trust"
)

// Uploads of the files that anchor a repository's trust (R24): rosters,
// config versions, the config itself and key files. A client holds at
// most a writer key and its tenant's credentials; none of these files is
// ever its to write, except the owner's own signed versions. The owner
// signing key comes from the repository's stored config (cr.keys), which
// the server read when it first saw the repository.

// trustRefusal maps a failure to verify an owner-signed object to a
// refusal: a bad signature is codeSigner, anything else codeInvalid.
func trustRefusal(what string, err error) *refusal {
	if errors.Is(err, crypto.ErrBadSignature) {
		return refusef(http.StatusForbidden, codeSigner, "%s: %v (only the repository owner signs these)", what, err)
	}
	return refusef(http.StatusBadRequest, codeInvalid, "%s: %v", what, err)
}

// validateRoster: signed by the owner, for this repository, and newer
// than the newest valid roster stored.
func (s *Verifier) validateRoster(ctx context.Context, cr *Repo, be backend.Backend, body []byte) error {
	ro, err := trust.ParseRoster(body, cr.keys.OwnerSignPub)
	if err != nil {
		return trustRefusal("roster", err)
	}
	if !bytes.Equal(ro.RepoID, cr.keys.RepoID[:]) {
		return refusef(http.StatusBadRequest, codeInvalid, "roster belongs to another repository")
	}
	repo, err := cr.Open(ctx, be)
	if err != nil {
		return err
	}
	if cur := repo.Roster().Seq; ro.Seq <= cur {
		return refusef(http.StatusConflict, codeSequence, "roster version %d is not newer than the stored version %d", ro.Seq, cur)
	}
	return nil
}

// newestConfigSeq is the highest seq among the stored config and the
// valid versions in configs/; invalid ones are ignored.
func newestConfigSeq(ctx context.Context, cr *Repo, be backend.Backend) (uint64, error) {
	var newest uint64
	if c, err := trust.ParseConfig(cr.cfgRaw, cr.keys.OwnerSignPub); err == nil {
		newest = c.Seq
	}
	err := be.List(ctx, backend.Configs, func(fi backend.FileInfo) error {
		if fi.Size > trust.MaxSigned {
			return nil
		}
		buf, err := backend.LoadAll(ctx, be, fi.Handle)
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		c, err := trust.ParseConfig(buf, cr.keys.OwnerSignPub)
		if err == nil && bytes.Equal(c.RepoID, cr.keys.RepoID[:]) && backend.NameOf(buf) == fi.Name {
			newest = max(newest, c.Seq)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list config versions: %w", err)
	}
	return newest, nil
}

// validateConfig: a config version (configs/) or the config itself,
// signed by the owner, for this repository, newer than every stored
// version, and still sealing metadata to this server (else the server
// could no longer validate what it keeps).
func (s *Verifier) validateConfig(ctx context.Context, cr *Repo, be backend.Backend, t backend.FileType, body []byte) error {
	if t == backend.Config && bytes.Equal(body, cr.cfgRaw) {
		return nil // the config this server knows, stored again (after a client with delete rights removed it)
	}
	c, err := trust.ParseConfig(body, cr.keys.OwnerSignPub)
	if err != nil {
		return trustRefusal("config", err)
	}
	if !bytes.Equal(c.RepoID, cr.keys.RepoID[:]) {
		return refusef(http.StatusBadRequest, codeInvalid, "config belongs to another repository")
	}
	newest, err := newestConfigSeq(ctx, cr, be)
	if err != nil {
		return err
	}
	if c.Seq <= newest {
		return refusef(http.StatusConflict, codeSequence, "config version %d is not newer than the stored version %d", c.Seq, newest)
	}
	if _, err := s.serverKeys(c); err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "config: %v", err)
	}
	return nil
}

// validateKeyFile: a key file on a server is an owner secret, or a
// writer's, that belongs on its own machine (R4); a server-mode
// repository (its config lists this server as a further metadata
// recipient) takes none from a client. Elsewhere a key file must at least
// parse within the caps readers try (crypto.MaxStoredKDF).
func (s *Verifier) validateKeyFile(cr *Repo, body []byte) error {
	cfg, err := repository.PeekConfig(cr.cfgRaw)
	if err != nil {
		return err
	}
	sec, err := s.Secrets()
	if err != nil {
		return err
	}
	mine := sec.MetaRecipient
	for _, r := range cfg.MetaRecipientsExtra {
		if r == mine {
			return refusef(http.StatusForbidden, codeInvalid, "keys/: this repository is kept on a server, which stores no key files; keep keys on the machines that use them (`cairn key add --export FILE`)")
		}
	}
	h, _, err := crypto.ParseKeyFileHeader(body)
	if err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "key file: %v", err)
	}
	if !h.KDF.WithinStoredCap() {
		return refusef(http.StatusBadRequest, codeInvalid, "key file: argon2id parameters m=%d KiB t=%d p=%d are above the cap for stored keys (m ≤ %d KiB, t ≤ %d, p ≤ %d)",
			h.KDF.Memory, h.KDF.Time, h.KDF.Threads, crypto.MaxStoredKDF.Memory, crypto.MaxStoredKDF.Time, crypto.MaxStoredKDF.Threads)
	}
	return nil
}
