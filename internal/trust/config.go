package trust

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"time"

	"github.com/cairnbackup/cairn/internal/crypto"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// FormatVersion is the repository format this code writes and reads.
const FormatVersion = 2 // 2: signed packs and index fragments, provenance domains (R23)

// Config holds a repository's parameters and public keys. Owner-signed.
type Config struct {
	Format         int       `json:"format"`
	Seq            uint64    `json:"seq"`
	RepoID         []byte    `json:"repo_id"`
	Created        time.Time `json:"created"`
	Chunker        string    `json:"chunker"`
	ChunkMin       int       `json:"chunk_min"`
	ChunkAvg       int       `json:"chunk_avg"`
	ChunkMax       int       `json:"chunk_max"`
	Compression    string    `json:"compression"`
	PackSize       int       `json:"pack_size"`
	Wrap           string    `json:"wrap"`
	OwnerRecipient string    `json:"owner_recipient"`
	OwnerSignPub   []byte    `json:"owner_sign_pub"`
	MetaRecipient  string    `json:"meta_recipient"`
	// MetaRecipientsExtra: further metadata recipients (server mode: the
	// server's); absent in single-machine repositories.
	MetaRecipientsExtra []string `json:"meta_recipients_extra,omitempty"`
	DedupGen            uint32   `json:"dedup_gen"`
}

const (
	configMagic = "CRC1"
	rosterMagic = "CRR1"
	// WrapHybrid names the default key-slot wrap: age's ML-KEM-768 + X25519 recipient.
	WrapHybrid = "age-mlkem768x25519"
)

// MarshalConfig signs and encodes a config.
func MarshalConfig(c *Config, owner ed25519.PrivateKey) ([]byte, error) {
	return seal(configMagic, crypto.SigConfig, c, owner)
}

// ParseConfig verifies a config against the pinned owner key and decodes it.
func ParseConfig(buf []byte, owner ed25519.PublicKey) (*Config, error) {
	var c Config
	if err := open(buf, configMagic, crypto.SigConfig, owner, &c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.Format != FormatVersion {
		return nil, fmt.Errorf("config: repository format %d is not supported (this cairn reads format %d)", c.Format, FormatVersion)
	}
	if len(c.RepoID) != 32 || c.Seq == 0 {
		return nil, fmt.Errorf("config: %w: bad repository ID or sequence", ErrFormat)
	}
	return &c, nil
}

// Writer is one roster entry.
type Writer struct {
	ID       []byte    `json:"id"` // Ed25519 public key
	Name     string    `json:"name"`
	Added    time.Time `json:"added"`
	DedupGen uint32    `json:"dedup_gen"`
}

// Roster lists the writers that may sign snapshots. The owner key may
// always sign and is not listed.
type Roster struct {
	RepoID  []byte    `json:"repo_id"`
	Seq     uint64    `json:"seq"`
	Created time.Time `json:"created"`
	Writers []Writer  `json:"writers"`
	// Coordinators lists the keys whose receipts and tombstones count:
	// servers (or server keys in direct mode). The owner always counts.
	Coordinators []Writer `json:"coordinators,omitempty"`
	// Revoked lists keys removed from the roster; their snapshots up to
	// RevokedAfter sequence numbers stay valid.
	Revoked []Revocation `json:"revoked,omitempty"`
}

// Revocation records a writer's removal.
type Revocation struct {
	ID      []byte    `json:"id"`
	LastSeq uint64    `json:"last_seq"` // last snapshot seq still accepted
	At      time.Time `json:"at"`
}

// Has reports whether id may sign snapshot seq. A revocation wins over a
// listing: a revoked key may sign only up to its LastSeq.
func (r *Roster) Has(id []byte, seq uint64) bool {
	for _, v := range r.Revoked {
		if bytes.Equal(v.ID, id) {
			return seq <= v.LastSeq
		}
	}
	for _, w := range r.Writers {
		if bytes.Equal(w.ID, id) {
			return true
		}
	}
	return false
}

// IsCoordinator reports whether id may sign receipts and tombstones.
func (r *Roster) IsCoordinator(id []byte) bool {
	for _, c := range r.Coordinators {
		if bytes.Equal(c.ID, id) {
			return true
		}
	}
	return false
}

// MarshalRoster signs and encodes a roster.
func MarshalRoster(r *Roster, owner ed25519.PrivateKey) ([]byte, error) {
	return seal(rosterMagic, crypto.SigRoster, r, owner)
}

// ParseRoster verifies and decodes a roster.
func ParseRoster(buf []byte, owner ed25519.PublicKey) (*Roster, error) {
	var r Roster
	if err := open(buf, rosterMagic, crypto.SigRoster, owner, &r); err != nil {
		return nil, fmt.Errorf("roster: %w", err)
	}
	if len(r.RepoID) != 32 || r.Seq == 0 {
		return nil, fmt.Errorf("roster: %w: bad repository ID or sequence", ErrFormat)
	}
	for _, w := range append(append([]Writer(nil), r.Writers...), r.Coordinators...) {
		if len(w.ID) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("roster: %w: writer key of %d bytes", ErrFormat, len(w.ID))
		}
	}
	for _, v := range r.Revoked {
		if len(v.ID) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("roster: %w: revoked key of %d bytes", ErrFormat, len(v.ID))
		}
		for _, w := range r.Writers {
			if bytes.Equal(w.ID, v.ID) {
				return nil, fmt.Errorf("roster: %w: writer %q is both listed and revoked", ErrFormat, w.Name)
			}
		}
	}
	return &r, nil
}
