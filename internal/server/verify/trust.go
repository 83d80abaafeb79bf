package verify

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
)

// Uploads of the files that anchor a repository's trust (R24): rosters,
// config versions, the config itself and key files. A client holds at
// most a writer key and its tenant's credentials; none of these files is
// ever its to write, except the owner's own signed versions. The owner
// signing key comes from the repository's stored config, which the server
// read when it first saw the repository; the formats are the repository's
// to read (repository.ServerVerifier).

// trustRefusal maps a failure to verify an owner-signed object to a
// refusal: a bad signature is codeSigner, anything else codeInvalid.
func trustRefusal(what string, err error) *refusal {
	if errors.Is(err, repository.ErrBadSignature) {
		return refusef(http.StatusForbidden, codeSigner, "%s: %v (only the repository owner signs these)", what, err)
	}
	if errors.Is(err, repository.ErrOtherRepository) {
		return refusef(http.StatusBadRequest, codeInvalid, "%v", err)
	}
	return refusef(http.StatusBadRequest, codeInvalid, "%s: %v", what, err)
}

// validateRoster: signed by the owner, for this repository, and newer
// than the newest valid roster stored.
func (s *Verifier) validateRoster(ctx context.Context, cr *Repo, be backend.Backend, body []byte) error {
	seq, err := cr.v.RosterSeq(body)
	if err != nil {
		return trustRefusal("roster", err)
	}
	repo, err := cr.Open(ctx, be)
	if err != nil {
		return err
	}
	if cur := repo.Roster().Seq; seq <= cur {
		return refusef(http.StatusConflict, codeSequence, "roster version %d is not newer than the stored version %d", seq, cur)
	}
	return nil
}

// validateConfig: a config version (configs/) or the config itself,
// signed by the owner, for this repository, newer than every stored
// version, and still sealing metadata to this server (else the server
// could no longer validate what it keeps).
func (s *Verifier) validateConfig(ctx context.Context, cr *Repo, be backend.Backend, t backend.FileType, body []byte) error {
	if t == backend.Config && bytes.Equal(body, cr.v.ConfigRaw()) {
		return nil // the config this server knows, stored again (after a client with delete rights removed it)
	}
	seq, err := cr.v.ConfigSeq(body)
	if err != nil {
		return trustRefusal("config", err)
	}
	newest, err := cr.v.NewestConfigSeq(ctx, be)
	if err != nil {
		return err
	}
	if seq <= newest {
		return refusef(http.StatusConflict, codeSequence, "config version %d is not newer than the stored version %d", seq, newest)
	}
	if err := cr.v.SealsToServer(body); err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "config: %v", err)
	}
	return nil
}

// validateKeyFile: a key file on a server is an owner secret, or a
// writer's, that belongs on its own machine (R4); a server-mode
// repository (its config lists this server as a further metadata
// recipient) takes none from a client. Elsewhere a key file must at least
// parse within the caps readers try.
func (s *Verifier) validateKeyFile(cr *Repo, body []byte) error {
	if cr.v.KeptOnServer() {
		return refusef(http.StatusForbidden, codeInvalid, "keys/: this repository is kept on a server, which stores no key files; keep keys on the machines that use them (`cairn key add --export FILE`)")
	}
	if err := repository.CheckStoredKeyFile(body); err != nil {
		return refusef(http.StatusBadRequest, codeInvalid, "key file: %v", err)
	}
	return nil
}
