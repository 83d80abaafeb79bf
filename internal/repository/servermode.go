package repository

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/chunker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/trust"
)

// ServerPublic is what a cairn server publishes for enrolment: the public
// half of its metadata identity and its coordinator signing key.
type ServerPublic struct {
	MetaRecipient string            `json:"meta_recipient"`
	CoordPub      ed25519.PublicKey `json:"coord_pub"`
}

// Fingerprint is the fingerprint `cairn server fingerprint` prints.
func (p ServerPublic) Fingerprint() string {
	return crypto.Fingerprint([]byte(p.MetaRecipient), p.CoordPub)
}

// Validate checks both keys parse.
func (p ServerPublic) Validate() error {
	if _, err := age.ParseX25519Recipient(p.MetaRecipient); err != nil {
		return fmt.Errorf("server metadata recipient: %w", err)
	}
	if len(p.CoordPub) != ed25519.PublicKeySize {
		return errors.New("server coordinator key: wrong length")
	}
	return nil
}

// InitServerMode creates a repository kept on a cairn server (R4, R21).
// The owner makes its own metadata identity too, and metadata is sealed
// to both (config field meta_recipients_extra), so the owner reads the
// index without the server and the server maintains the repository
// without the owner. The server's coordinator key is in the first roster.
// The owner key file is NOT stored in be: it is returned, sealed under
// password, for the caller to keep on the client.
func InitServerMode(ctx context.Context, be backend.Backend, password []byte, srv ServerPublic, opts Options) (*Repository, []byte, error) {
	if err := srv.Validate(); err != nil {
		return nil, nil, err
	}
	if len(password) == 0 {
		return nil, nil, errors.New("empty password")
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"}); err == nil {
		return nil, nil, fmt.Errorf("a repository already exists at %s", be.Properties().Location)
	}
	m, err := crypto.NewOwner("")
	if err != nil {
		return nil, nil, err
	}
	m.MetaRecipientsExtra = []string{srv.MetaRecipient}
	keys, err := m.Parse()
	if err != nil {
		return nil, nil, err
	}
	now := opts.now()()
	cp := chunker.DefaultParams
	cfg := &trust.Config{
		Format: trust.FormatVersion, Seq: 1, RepoID: m.RepoID, Created: now.UTC(),
		Chunker: chunker.ID, ChunkMin: cp.Min, ChunkAvg: cp.Avg, ChunkMax: cp.Max,
		Compression: "zstd", PackSize: DefaultPackSize, Wrap: trust.WrapHybrid,
		OwnerRecipient: m.OwnerRecipient, OwnerSignPub: m.OwnerSignPub, MetaRecipient: m.MetaRecipient,
		MetaRecipientsExtra: m.MetaRecipientsExtra, DedupGen: 1,
	}
	cfgBytes, err := trust.MarshalConfig(cfg, keys.OwnerSign)
	if err != nil {
		return nil, nil, err
	}
	roster := &trust.Roster{RepoID: m.RepoID, Seq: 1, Created: now.UTC(),
		Coordinators: []trust.Writer{{ID: srv.CoordPub, Name: "server", Added: now.UTC()}}}
	rosterBytes, err := trust.MarshalRoster(roster, keys.OwnerSign)
	if err != nil {
		return nil, nil, err
	}
	keyFile, err := ExportKey(m, password, opts.kdf(), now, opts.KeyLabel)
	if err != nil {
		return nil, nil, err
	}
	if err := saveNamed(ctx, be, backend.Rosters, rosterBytes); err != nil {
		return nil, nil, err
	}
	if err := saveNamed(ctx, be, backend.Configs, cfgBytes); err != nil {
		return nil, nil, err
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, backend.NewByteReader(cfgBytes)); err != nil {
		return nil, nil, fmt.Errorf("save config: %w", err)
	}
	r := newRepo(be, keys, cfg, roster, "", opts)
	if err := r.openCache(); err != nil {
		return nil, nil, err
	}
	return r, keyFile, nil
}

// PeekConfig decodes a config and checks it is signed by the owner key it
// names itself. That proves only self-consistency: trust comes from a
// pinned key (R2). It serves to find a repository's ID (and so its key
// file) and, on a server, to recognize a cairn repository.
func PeekConfig(buf []byte) (*trust.Config, error) {
	if len(buf) < 8+ed25519.SignatureSize || string(buf[:4]) != "CRC1" {
		return nil, fmt.Errorf("config: %w: not a cairn config", trust.ErrFormat)
	}
	l := binary.LittleEndian.Uint32(buf[4:])
	if uint64(l)+8+ed25519.SignatureSize != uint64(len(buf)) {
		return nil, fmt.Errorf("config: %w: bad length", trust.ErrFormat)
	}
	var c struct {
		OwnerSignPub []byte `json:"owner_sign_pub"`
	}
	if err := json.Unmarshal(buf[8:8+l], &c); err != nil {
		return nil, fmt.Errorf("config: %w: %v", trust.ErrFormat, err)
	}
	if len(c.OwnerSignPub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("config: %w: owner key", trust.ErrFormat)
	}
	return trust.ParseConfig(buf, c.OwnerSignPub)
}

// ServerKeys builds a server's keys for a repository from its config and
// the server's own secrets. The config must list the server's metadata
// recipient; metadata the server writes (repacked pack headers, index
// fragments) is sealed to every metadata recipient the config lists.
func ServerKeys(cfg *trust.Config, metaIdentity string, coordSeed []byte) (*crypto.Keys, error) {
	id, err := age.ParseX25519Identity(metaIdentity)
	if err != nil {
		return nil, err
	}
	mine := id.Recipient().String()
	var extra []string
	listed := false
	for _, r := range append([]string{cfg.MetaRecipient}, cfg.MetaRecipientsExtra...) {
		if r == mine {
			listed = true
			continue
		}
		extra = append(extra, r)
	}
	if !listed {
		return nil, errors.New("the repository's metadata is not sealed to this server")
	}
	m := &crypto.KeyMaterial{
		Role: crypto.RoleServer, RepoID: cfg.RepoID,
		OwnerRecipient: cfg.OwnerRecipient, OwnerSignPub: cfg.OwnerSignPub,
		MetaRecipient: mine, MetaRecipientsExtra: extra, MetaIdentity: metaIdentity,
		CoordSignSeed: coordSeed,
	}
	return m.Parse()
}
