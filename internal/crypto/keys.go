package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"

	"filippo.io/age"
)

// Role is what a key may do.
type Role uint8

// Roles. Values are stored in key files; never renumber.
const (
	RoleOwner  Role = 1 // opens everything, signs config and roster
	RoleWriter Role = 2 // backs up, signs its snapshots, opens nothing stored
	RoleServer Role = 3 // metadata identity: opens metadata, never content
)

func (r Role) String() string {
	switch r {
	case RoleOwner:
		return "owner"
	case RoleWriter:
		return "writer"
	case RoleServer:
		return "server"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r >= RoleOwner && r <= RoleServer }

// ParseRole parses "owner", "writer" or "server".
func ParseRole(s string) (Role, error) {
	for _, r := range []Role{RoleOwner, RoleWriter, RoleServer} {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want owner, writer or server)", s)
}

// DedupSecret is one dedup generation's secret.
type DedupSecret struct {
	Gen    uint32 `json:"gen"`
	Secret []byte `json:"secret"`
}

// KeyMaterial is the secret payload of a key file. Which fields are set
// depends on the role; see docs/format.md, "Key files".
type KeyMaterial struct {
	Role   Role   `json:"role"`
	RepoID []byte `json:"repo_id"`

	// Pinned public keys (every role): the trust anchors (R2).
	OwnerRecipient string `json:"owner_recipient"`
	OwnerSignPub   []byte `json:"owner_sign_pub"`
	MetaRecipient  string `json:"meta_recipient"`
	// MetaRecipientsExtra are further metadata recipients sealed to along
	// with MetaRecipient: in server mode the server's, next to the owner's
	// own (or, in a server's key, the owner's next to the server's).
	MetaRecipientsExtra []string `json:"meta_recipients_extra,omitempty"`

	// Owner only.
	OwnerIdentity string `json:"owner_identity,omitempty"`
	OwnerSignSeed []byte `json:"owner_sign_seed,omitempty"`
	// Owner (single-machine mode) and server.
	MetaIdentity string `json:"meta_identity,omitempty"`
	// Writer only: its own signing key.
	WriterSignSeed []byte `json:"writer_sign_seed,omitempty"`
	// Server only: the coordinator's signing key, for receipts and
	// tombstones. Its public key is listed in the owner-signed roster.
	CoordSignSeed []byte `json:"coord_sign_seed,omitempty"`
	// Owner and writer: dedup generations (a writer holds only its own).
	Dedup []DedupSecret `json:"dedup,omitempty"`
}

// Keys is KeyMaterial parsed for use.
type Keys struct {
	Role   Role
	RepoID [32]byte

	OwnerRecipient age.Recipient
	OwnerSignPub   ed25519.PublicKey
	// MetaRecipient seals metadata: one recipient, or every metadata
	// recipient at once when the material lists extra ones.
	MetaRecipient age.Recipient

	OwnerIdentity age.Identity       // nil unless owner
	OwnerSign     ed25519.PrivateKey // nil unless owner
	MetaIdentity  age.Identity       // nil unless owner (with meta) or server
	Sign          ed25519.PrivateKey // what this key signs snapshots with (owner or writer); nil for server
	// CoordSign signs receipts and tombstones: the server's coordinator
	// key, or the owner's signing key; nil for a writer.
	CoordSign ed25519.PrivateKey

	Dedup map[uint32]DedupKeys // by generation
	// CurrentDedup is the newest generation this key holds.
	CurrentDedup uint32

	Material KeyMaterial // the source, for re-encrypting under a new password
}

// SignerID returns the public key this key signs snapshots with.
func (k *Keys) SignerID() ed25519.PublicKey {
	if k.Sign == nil {
		return nil
	}
	return k.Sign.Public().(ed25519.PublicKey)
}

// Fingerprint of the repository's trust anchors as this key pins them.
func (k *Keys) Fingerprint() string {
	return Fingerprint([]byte(recipientString(k.OwnerRecipient)), k.OwnerSignPub, []byte(recipientString(k.MetaRecipient)))
}

func recipientString(r age.Recipient) string {
	if s, ok := r.(fmt.Stringer); ok {
		return s.String()
	}
	return ""
}

// ParseRecipient parses an age recipient of either supported kind.
func ParseRecipient(s string) (age.Recipient, error) {
	if r, err := age.ParseHybridRecipient(s); err == nil {
		return r, nil
	}
	return age.ParseX25519Recipient(s)
}

// ParseIdentity parses an age identity of either supported kind.
func ParseIdentity(s string) (age.Identity, error) {
	if i, err := age.ParseHybridIdentity(s); err == nil {
		return i, nil
	}
	return age.ParseX25519Identity(s)
}

// Parse turns key material into usable keys, validating every field the
// role needs.
func (m *KeyMaterial) Parse() (*Keys, error) {
	k := &Keys{Role: m.Role, Material: *m, Dedup: map[uint32]DedupKeys{}}
	if !m.Role.Valid() {
		return nil, fmt.Errorf("%w: unknown role %d", ErrBadKeyFile, m.Role)
	}
	if len(m.RepoID) != 32 {
		return nil, fmt.Errorf("%w: repository ID has %d bytes", ErrBadKeyFile, len(m.RepoID))
	}
	copy(k.RepoID[:], m.RepoID)
	if err := m.checkRoleSecrets(); err != nil {
		return nil, err
	}
	var err error
	if k.OwnerRecipient, err = ParseRecipient(m.OwnerRecipient); err != nil {
		return nil, fmt.Errorf("%w: owner recipient: %v", ErrBadKeyFile, err)
	}
	if len(m.OwnerSignPub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: owner signing key", ErrBadKeyFile)
	}
	k.OwnerSignPub = ed25519.PublicKey(m.OwnerSignPub)
	if k.MetaRecipient, err = age.ParseX25519Recipient(m.MetaRecipient); err != nil {
		return nil, fmt.Errorf("%w: metadata recipient: %v", ErrBadKeyFile, err)
	}
	if len(m.MetaRecipientsExtra) > 0 {
		multi := MultiRecipient{k.MetaRecipient}
		for _, s := range m.MetaRecipientsExtra {
			x, err := age.ParseX25519Recipient(s)
			if err != nil {
				return nil, fmt.Errorf("%w: extra metadata recipient: %v", ErrBadKeyFile, err)
			}
			multi = append(multi, x)
		}
		k.MetaRecipient = multi
	}
	if m.MetaIdentity != "" {
		id, err := age.ParseX25519Identity(m.MetaIdentity)
		if err != nil {
			return nil, fmt.Errorf("%w: metadata identity: %v", ErrBadKeyFile, err)
		}
		if id.Recipient().String() != m.MetaRecipient {
			return nil, fmt.Errorf("%w: metadata identity does not match its pinned public key", ErrBadKeyFile)
		}
		k.MetaIdentity = id
	}
	switch m.Role {
	case RoleOwner:
		if k.OwnerIdentity, err = ParseIdentity(m.OwnerIdentity); err != nil {
			return nil, fmt.Errorf("%w: owner identity: %v", ErrBadKeyFile, err)
		}
		if len(m.OwnerSignSeed) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: owner signing seed", ErrBadKeyFile)
		}
		k.OwnerSign = ed25519.NewKeyFromSeed(m.OwnerSignSeed)
		if !k.OwnerSign.Public().(ed25519.PublicKey).Equal(k.OwnerSignPub) {
			return nil, fmt.Errorf("%w: owner signing key does not match its public key", ErrBadKeyFile)
		}
		k.Sign = k.OwnerSign
		k.CoordSign = k.OwnerSign
	case RoleWriter:
		if len(m.WriterSignSeed) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: writer signing seed", ErrBadKeyFile)
		}
		k.Sign = ed25519.NewKeyFromSeed(m.WriterSignSeed)
	case RoleServer:
		if k.MetaIdentity == nil {
			return nil, fmt.Errorf("%w: server key without metadata identity", ErrBadKeyFile)
		}
		if len(m.CoordSignSeed) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: server key without coordinator signing key", ErrBadKeyFile)
		}
		k.CoordSign = ed25519.NewKeyFromSeed(m.CoordSignSeed)
	}
	for _, d := range m.Dedup {
		if len(d.Secret) != 32 {
			return nil, fmt.Errorf("%w: dedup secret of generation %d", ErrBadKeyFile, d.Gen)
		}
		k.Dedup[d.Gen] = DeriveDedup(d.Gen, d.Secret)
		if d.Gen >= k.CurrentDedup {
			k.CurrentDedup = d.Gen
		}
	}
	if m.Role != RoleServer && len(k.Dedup) == 0 {
		return nil, fmt.Errorf("%w: no dedup keys", ErrBadKeyFile)
	}
	return k, nil
}

// checkRoleSecrets refuses material that gives its role a secret the role
// must not hold: a writer that could open metadata or content would not be
// read-blind (R5), and a server holding dedup keys could compute the IDs of
// guessed content.
func (m *KeyMaterial) checkRoleSecrets() error {
	var extra []string
	if m.Role != RoleOwner && m.OwnerIdentity != "" {
		extra = append(extra, "owner identity")
	}
	if m.Role != RoleOwner && len(m.OwnerSignSeed) > 0 {
		extra = append(extra, "owner signing key")
	}
	if m.Role == RoleWriter && m.MetaIdentity != "" {
		extra = append(extra, "metadata identity")
	}
	if m.Role != RoleServer && len(m.CoordSignSeed) > 0 {
		extra = append(extra, "coordinator signing key")
	}
	if m.Role != RoleWriter && len(m.WriterSignSeed) > 0 {
		extra = append(extra, "writer signing key")
	}
	if m.Role == RoleServer && len(m.Dedup) > 0 {
		extra = append(extra, "dedup keys")
	}
	if len(extra) > 0 {
		return fmt.Errorf("%w: a %s key must not hold %s", ErrBadKeyFile, m.Role, strings.Join(extra, ", "))
	}
	return nil
}

// Marshal encodes key material for a key file's payload.
func (m *KeyMaterial) Marshal() ([]byte, error) { return json.Marshal(m) }

// UnmarshalKeyMaterial decodes a key file's payload.
func UnmarshalKeyMaterial(b []byte) (*KeyMaterial, error) {
	var m KeyMaterial
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	return &m, nil
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// NewOwner creates the key material of a new repository: a fresh repository
// ID, owner identity (hybrid ML-KEM-768 + X25519) and signing key, metadata
// identity (X25519) and dedup generation 1. If metaRecipient is non-empty the
// metadata identity is someone else's (a server's) and only its public key is
// pinned.
func NewOwner(metaRecipient string) (*KeyMaterial, error) {
	oid, err := age.GenerateHybridIdentity()
	if err != nil {
		return nil, err
	}
	seed := random(ed25519.SeedSize)
	m := &KeyMaterial{
		Role:           RoleOwner,
		RepoID:         random(32),
		OwnerRecipient: oid.Recipient().String(),
		OwnerSignPub:   ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey),
		OwnerIdentity:  oid.String(),
		OwnerSignSeed:  seed,
		Dedup:          []DedupSecret{{Gen: 1, Secret: random(32)}},
	}
	if metaRecipient == "" {
		mid, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, err
		}
		m.MetaIdentity = mid.String()
		m.MetaRecipient = mid.Recipient().String()
	} else {
		if _, err := age.ParseX25519Recipient(metaRecipient); err != nil {
			return nil, fmt.Errorf("metadata recipient: %w", err)
		}
		m.MetaRecipient = metaRecipient
	}
	return m, nil
}

// NewWriter derives a writer's key material from the owner's: the pinned
// public keys, a fresh signing key and the current dedup generation.
func (m *KeyMaterial) NewWriter() (*KeyMaterial, error) {
	if m.Role != RoleOwner {
		return nil, fmt.Errorf("only the owner key can create writer keys")
	}
	cur := m.Dedup[0]
	for _, d := range m.Dedup {
		if d.Gen > cur.Gen {
			cur = d
		}
	}
	return &KeyMaterial{
		Role:                RoleWriter,
		RepoID:              m.RepoID,
		OwnerRecipient:      m.OwnerRecipient,
		OwnerSignPub:        m.OwnerSignPub,
		MetaRecipient:       m.MetaRecipient,
		WriterSignSeed:      random(ed25519.SeedSize),
		MetaRecipientsExtra: m.MetaRecipientsExtra,
		Dedup:               []DedupSecret{cur},
	}, nil
}

// NewServer derives a server (metadata identity) key from the owner's; the
// owner must hold the metadata identity.
func (m *KeyMaterial) NewServer() (*KeyMaterial, error) {
	if m.Role != RoleOwner || m.MetaIdentity == "" {
		return nil, fmt.Errorf("only an owner key holding the metadata identity can create a server key")
	}
	return &KeyMaterial{
		Role:                RoleServer,
		RepoID:              m.RepoID,
		OwnerRecipient:      m.OwnerRecipient,
		OwnerSignPub:        m.OwnerSignPub,
		MetaRecipient:       m.MetaRecipient,
		MetaIdentity:        m.MetaIdentity,
		CoordSignSeed:       random(ed25519.SeedSize),
		MetaRecipientsExtra: m.MetaRecipientsExtra,
	}, nil
}

// MultiRecipient seals to every recipient in it at once: one age file
// with one stanza per recipient, so metadata opens with any of the
// metadata identities (the owner's and the server's in server mode).
// String is the first recipient's, so fingerprints and pinned keys stay
// those of the primary metadata identity.
type MultiRecipient []age.Recipient

// Wrap implements age.Recipient.
func (m MultiRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	var out []*age.Stanza
	for _, r := range m {
		s, err := r.Wrap(fileKey)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

func (m MultiRecipient) String() string {
	if len(m) == 0 {
		return ""
	}
	return recipientString(m[0])
}
