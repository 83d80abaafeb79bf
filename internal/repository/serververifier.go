package repository

// What a server needs to validate uploads to one cairn repository without
// reading the trust formats or holding key material itself: the stored
// config, and the server's keys for the repository (ServerKeys).

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/trust"
)

// ErrBadSignature is an owner- or writer-signed object whose signature does
// not verify (crypto.ErrBadSignature, for callers that import no crypto).
var ErrBadSignature = crypto.ErrBadSignature

// ErrOtherRepository is a signed object of another repository.
var ErrOtherRepository = errors.New("belongs to another repository")

// ServerVerifier is one cairn repository as a server validates uploads to
// it: its stored config and the server's keys for it.
type ServerVerifier struct {
	cfgRaw       []byte
	keys         *crypto.Keys
	metaIdentity string
	mine         string // the server's metadata recipient
	signSeed     []byte
}

// NewServerVerifier reads a stored config (IsCairnConfig) with the
// server's metadata identity and coordinator signing seed; it fails if the
// config is invalid or does not seal metadata to this server.
func NewServerVerifier(cfgRaw []byte, metaIdentity string, signSeed []byte) (*ServerVerifier, error) {
	cfg, err := PeekConfig(cfgRaw)
	if err != nil {
		return nil, fmt.Errorf("stored config: %w", err)
	}
	keys, err := ServerKeys(cfg, metaIdentity, signSeed)
	if err != nil {
		return nil, err
	}
	id, err := age.ParseX25519Identity(metaIdentity)
	if err != nil {
		return nil, err
	}
	return &ServerVerifier{cfgRaw: cfgRaw, keys: keys, metaIdentity: metaIdentity, mine: id.Recipient().String(), signSeed: signSeed}, nil
}

// CheckServerConfig checks a config uploaded to create a repository: a
// cairn config, self-consistent, that seals metadata to this server.
func CheckServerConfig(body []byte, metaIdentity string, signSeed []byte) error {
	cfg, err := PeekConfig(body)
	if err != nil {
		return err
	}
	_, err = ServerKeys(cfg, metaIdentity, signSeed)
	return err
}

// RepoID is the repository's ID.
func (v *ServerVerifier) RepoID() [32]byte { return v.keys.RepoID }

// ConfigRaw is the stored config the verifier was made from.
func (v *ServerVerifier) ConfigRaw() []byte { return v.cfgRaw }

// Open opens the repository with the server's keys (fresh roster).
func (v *ServerVerifier) Open(ctx context.Context, be backend.Backend, opts Options) (*Repository, error) {
	return OpenWithKeys(ctx, be, v.keys, "", v.cfgRaw, opts)
}

// RosterSeq checks a roster upload: signed by the owner (else
// ErrBadSignature), parses, and is this repository's (else
// ErrOtherRepository); it returns the roster's version.
func (v *ServerVerifier) RosterSeq(body []byte) (uint64, error) {
	ro, err := trust.ParseRoster(body, v.keys.OwnerSignPub)
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(ro.RepoID, v.keys.RepoID[:]) {
		return 0, fmt.Errorf("roster %w", ErrOtherRepository)
	}
	return ro.Seq, nil
}

// ConfigSeq checks a config version (or a config) upload as RosterSeq
// does a roster; it returns the config's version.
func (v *ServerVerifier) ConfigSeq(body []byte) (uint64, error) {
	c, err := trust.ParseConfig(body, v.keys.OwnerSignPub)
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(c.RepoID, v.keys.RepoID[:]) {
		return 0, fmt.Errorf("config %w", ErrOtherRepository)
	}
	return c.Seq, nil
}

// SealsToServer checks that a config upload (ConfigSeq passed) still
// seals metadata to this server, else it could no longer validate what
// it keeps.
func (v *ServerVerifier) SealsToServer(body []byte) error {
	c, err := trust.ParseConfig(body, v.keys.OwnerSignPub)
	if err != nil {
		return err
	}
	_, err = ServerKeys(c, v.metaIdentity, v.signSeed)
	return err
}

// NewestConfigSeq is the highest version among the stored config and the
// valid versions in configs/; invalid ones are ignored.
func (v *ServerVerifier) NewestConfigSeq(ctx context.Context, be backend.Backend) (uint64, error) {
	var newest uint64
	if c, err := trust.ParseConfig(v.cfgRaw, v.keys.OwnerSignPub); err == nil {
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
		c, err := trust.ParseConfig(buf, v.keys.OwnerSignPub)
		if err == nil && bytes.Equal(c.RepoID, v.keys.RepoID[:]) && backend.NameOf(buf) == fi.Name {
			newest = max(newest, c.Seq)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list config versions: %w", err)
	}
	return newest, nil
}

// KeptOnServer reports whether the repository's config lists this server
// as a further metadata recipient: a server-mode repository, which takes
// no key files from clients (R4).
func (v *ServerVerifier) KeptOnServer() bool {
	cfg, err := PeekConfig(v.cfgRaw)
	if err != nil {
		return false
	}
	for _, r := range cfg.MetaRecipientsExtra {
		if r == v.mine {
			return true
		}
	}
	return false
}

// CheckStoredKeyFile checks that a key file parses within the caps readers
// try (crypto.MaxStoredKDF).
func CheckStoredKeyFile(body []byte) error {
	h, _, err := crypto.ParseKeyFileHeader(body)
	if err != nil {
		return err
	}
	if !h.KDF.WithinStoredCap() {
		m := crypto.MaxStoredKDF
		return fmt.Errorf("argon2id parameters m=%d KiB t=%d p=%d are above the cap for stored keys (m ≤ %d KiB, t ≤ %d, p ≤ %d)",
			h.KDF.Memory, h.KDF.Time, h.KDF.Threads, m.Memory, m.Time, m.Threads)
	}
	return nil
}
