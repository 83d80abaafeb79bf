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
	// Hosts are the host labels the writer's snapshots may carry (R25).
	// Omitted (a roster from before host binding): the writer may use
	// its Name only. Meaningless for coordinators.
	Hosts []string `json:"hosts,omitempty"`
}

// BoundHosts returns the host labels w may use: Hosts, or its Name when
// the entry names none.
func (w *Writer) BoundHosts() []string { return boundHosts(w.Name, w.Hosts) }

func boundHosts(name string, hosts []string) []string {
	if len(hosts) > 0 {
		return hosts
	}
	if name == "" {
		return nil
	}
	return []string{name}
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
	// Name and Hosts carry the writer's entry forward (see Revoke), so
	// its remaining snapshots keep their attribution and host binding.
	// Omitted: its snapshots are bound to no host label.
	Name  string   `json:"name,omitempty"`
	Hosts []string `json:"hosts,omitempty"`
}

// Binding is what a roster says about a key that signs snapshots (R25).
type Binding struct {
	Name    string
	Hosts   []string // host labels its snapshots may carry
	Revoked bool
}

// Allows reports whether a snapshot by this key may carry host label h.
func (b Binding) Allows(h string) bool {
	for _, x := range b.Hosts {
		if x == h {
			return true
		}
	}
	return false
}

// Binding returns what the roster binds id to: a listed writer, or a
// revoked one (a revocation wins, as in Has); ok is false for a key the
// roster does not know. The owner is not in the roster: callers check it
// first (the owner may use any host label).
func (r *Roster) Binding(id []byte) (b Binding, ok bool) {
	for _, v := range r.Revoked {
		if bytes.Equal(v.ID, id) {
			return Binding{Name: v.Name, Hosts: boundHosts(v.Name, v.Hosts), Revoked: true}, true
		}
	}
	for i := range r.Writers {
		if w := &r.Writers[i]; bytes.Equal(w.ID, id) {
			return Binding{Name: w.Name, Hosts: w.BoundHosts()}, true
		}
	}
	return Binding{}, false
}

// Revoke returns a copy of r without writer id, which may still have
// signed up to lastSeq; its name and host binding move to the
// revocation. It does not change Seq or Created.
func (r *Roster) Revoke(id []byte, lastSeq uint64, at time.Time) (*Roster, error) {
	out := *r
	out.Writers = nil
	var found *Writer
	for i := range r.Writers {
		if bytes.Equal(r.Writers[i].ID, id) {
			found = &r.Writers[i]
			continue
		}
		out.Writers = append(out.Writers, r.Writers[i])
	}
	if found == nil {
		return nil, fmt.Errorf("roster lists no writer %x", id)
	}
	out.Revoked = append(append([]Revocation(nil), r.Revoked...), Revocation{ID: found.ID, LastSeq: lastSeq, At: at.UTC(),
		Name: found.Name, Hosts: found.Hosts})
	return &out, nil
}

// maxHostLabel bounds a host label in a roster.
const maxHostLabel = 255

func checkHosts(who string, hosts []string) error {
	for _, h := range hosts {
		if h == "" || len(h) > maxHostLabel {
			return fmt.Errorf("roster: %w: %s has an empty or over-long host label", ErrFormat, who)
		}
	}
	return nil
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
		if err := checkHosts(fmt.Sprintf("writer %q", w.Name), w.Hosts); err != nil {
			return nil, err
		}
	}
	for _, v := range r.Revoked {
		if len(v.ID) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("roster: %w: revoked key of %d bytes", ErrFormat, len(v.ID))
		}
		if err := checkHosts(fmt.Sprintf("revoked writer %q", v.Name), v.Hosts); err != nil {
			return nil, err
		}
		for _, w := range r.Writers {
			if bytes.Equal(w.ID, v.ID) {
				return nil, fmt.Errorf("roster: %w: writer %q is both listed and revoked", ErrFormat, w.Name)
			}
		}
	}
	return &r, nil
}
