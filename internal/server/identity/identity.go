// Package identity is the server's own key pair set, what clients enrol:
// the metadata identity cairn repositories seal metadata to and the key
// the server signs receipts and tombstones with, kept in the data
// directory, and their public half and fingerprint (R21).
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// Identity is the server's own key pair set: the metadata identity
// (X25519, through age) that cairn repositories seal metadata to, and the
// Ed25519 key it signs receipts and tombstones with. It is created once by
// Init and never leaves the data directory.
type Identity struct {
	MetaIdentity string `json:"meta_identity"` // age X25519 secret key
	SignSeed     []byte `json:"sign_seed"`     // Ed25519 seed
}

// New generates a fresh identity.
func New() (*Identity, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate metadata identity: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return &Identity{MetaIdentity: id.String(), SignSeed: seed}, nil
}

// MetaRecipient is the public half of the metadata identity.
func (id *Identity) MetaRecipient() (string, error) {
	x, err := age.ParseX25519Identity(id.MetaIdentity)
	if err != nil {
		return "", fmt.Errorf("server identity: %w", err)
	}
	return x.Recipient().String(), nil
}

// SignPublic is the public signing key.
func (id *Identity) SignPublic() ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(id.SignSeed).Public().(ed25519.PublicKey)
}

// Fingerprint is what a client compares before trusting the server
// (R21): crypto.Fingerprint over the metadata recipient string and the
// signing public key.
func (id *Identity) Fingerprint() (string, error) {
	r, err := id.MetaRecipient()
	if err != nil {
		return "", err
	}
	return crypto.Fingerprint([]byte(r), id.SignPublic()), nil
}

// Write stores id at path, refusing to replace one.
func Write(path string, id *Identity) error {
	buf, err := json.Marshal(id)
	if err != nil {
		return err
	}
	err = atomicfile.WriteNewFile(path, append(buf, '\n'), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("server identity %s already exists", path)
	}
	return err
}

// Read loads the identity at path.
func Read(path string) (*Identity, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var id Identity
	if err := json.Unmarshal(buf, &id); err != nil {
		return nil, fmt.Errorf("server identity %s: %w", path, err)
	}
	if len(id.SignSeed) != ed25519.SeedSize {
		return nil, fmt.Errorf("server identity %s: bad signing key", path)
	}
	if _, err := id.MetaRecipient(); err != nil {
		return nil, err
	}
	return &id, nil
}

// Public returns the server's public identity, as clients enrol it.
func (id *Identity) Public() (repository.ServerPublic, error) {
	r, err := id.MetaRecipient()
	if err != nil {
		return repository.ServerPublic{}, err
	}
	return repository.ServerPublic{MetaRecipient: r, CoordPub: id.SignPublic()}, nil
}
