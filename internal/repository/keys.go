package repository

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/trust"
)

func saveKeyFile(ctx context.Context, be backend.Backend, m *crypto.KeyMaterial, password []byte, kdf crypto.KDFParams, now time.Time, label string) (string, error) {
	if len(password) == 0 {
		return "", errors.New("empty password")
	}
	payload, err := m.Marshal()
	if err != nil {
		return "", err
	}
	buf, err := crypto.SealKeyFile(password, kdf, m.Role, now.Unix(), label, payload)
	if err != nil {
		return "", err
	}
	name := backend.NameOf(buf)
	if err := be.Save(ctx, backend.Handle{Type: backend.Keys, Name: name}, backend.NewByteReader(buf)); err != nil {
		return "", fmt.Errorf("save key file: %w", err)
	}
	return name, nil
}

// KeyInfo describes a key file.
type KeyInfo struct {
	ID      string
	Role    crypto.Role
	Created time.Time
	Label   string
	KDF     crypto.KDFParams
	Current bool
	// Invalid says why a file in keys/ is no key file (malformed, or its
	// name is not its hash); such a file is listed so it can be removed.
	Invalid string
}

// ListKeys lists the files in the repository's keys/, invalid ones too.
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := r.be.List(ctx, backend.Keys, func(fi backend.FileInfo) error {
		k := KeyInfo{ID: fi.Name, Current: fi.Name == r.keyID}
		if fi.Size > crypto.MaxKeyFileSize {
			k.Invalid = fmt.Sprintf("%d bytes is larger than any key file", fi.Size)
			out = append(out, k)
			return nil
		}
		buf, err := backend.LoadAll(ctx, r.be, fi.Handle)
		if err != nil {
			return err
		}
		h, _, err := crypto.ParseKeyFileHeader(buf)
		switch {
		case err != nil:
			k.Invalid = err.Error()
		case backend.NameOf(buf) != fi.Name:
			k.Invalid = "content does not match its name"
		default:
			k.Role, k.Created, k.Label, k.KDF = h.Role, time.Unix(h.Created, 0), h.Label, h.KDF
		}
		out = append(out, k)
		return nil
	})
	return out, err
}

// NewKeyMaterial makes key material for a new key of role: the same owner
// material (another password for the owner), a new writer, or a server key.
func (r *Repository) NewKeyMaterial(role crypto.Role) (*crypto.KeyMaterial, error) {
	m := r.keys.Material
	switch role {
	case crypto.RoleOwner:
		if r.keys.Role != crypto.RoleOwner {
			return nil, fmt.Errorf("adding an owner key %w", crypto.ErrNeedsOwner)
		}
		return &m, nil
	case crypto.RoleWriter:
		return m.NewWriter()
	case crypto.RoleServer:
		return m.NewServer()
	}
	return nil, fmt.Errorf("unknown role %v", role)
}

// AddKey stores key material under a new password in keys/. A writer is
// also enrolled in the roster (AddWriter), bound to hosts.
func (r *Repository) AddKey(ctx context.Context, m *crypto.KeyMaterial, password []byte, kdf crypto.KDFParams, label string, hosts ...string) (string, error) {
	if r.keys.Role != crypto.RoleOwner {
		return "", fmt.Errorf("adding keys %w", crypto.ErrNeedsOwner)
	}
	switch m.Role {
	case crypto.RoleWriter:
		if err := r.AddWriter(ctx, m, label, hosts...); err != nil {
			return "", err
		}
	case crypto.RoleServer:
		if err := r.AddCoordinator(ctx, m, label); err != nil {
			return "", err
		}
	}
	return saveKeyFile(ctx, r.be, m, password, kdf, r.now(), label)
}

// AddWriter publishes a new owner-signed roster that lists the writer
// whose key material is m, bound to the host labels hosts (R25; none:
// its label only). It stores no key file: a writer's key can live only on
// its own machine (see ExportKey).
func (r *Repository) AddWriter(ctx context.Context, m *crypto.KeyMaterial, label string, hosts ...string) error {
	if r.keys.Role != crypto.RoleOwner {
		return fmt.Errorf("enrolling writers %w", crypto.ErrNeedsOwner)
	}
	k, err := m.Parse()
	if err != nil {
		return err
	}
	if k.Role != crypto.RoleWriter {
		return fmt.Errorf("%s key is not a writer", k.Role)
	}
	ro := *r.roster
	ro.Seq++
	ro.Created = r.now().UTC()
	ro.Writers = append(append([]trust.Writer(nil), ro.Writers...), trust.Writer{ID: k.SignerID(), Name: label, Added: ro.Created, DedupGen: k.CurrentDedup, Hosts: boundHosts(label, hosts)})
	return r.publishRoster(ctx, &ro)
}

// AddCoordinator publishes a roster that lists a server key's coordinator
// signing key, so its receipts and tombstones are trusted.
func (r *Repository) AddCoordinator(ctx context.Context, m *crypto.KeyMaterial, label string) error {
	if r.keys.Role != crypto.RoleOwner {
		return fmt.Errorf("enrolling servers %w", crypto.ErrNeedsOwner)
	}
	k, err := m.Parse()
	if err != nil {
		return err
	}
	if k.CoordSign == nil || k.Role != crypto.RoleServer {
		return fmt.Errorf("%s key has no coordinator signing key", k.Role)
	}
	ro := *r.roster
	ro.Seq++
	ro.Created = r.now().UTC()
	ro.Coordinators = append(append([]trust.Writer(nil), ro.Coordinators...), trust.Writer{ID: k.CoordSign.Public().(ed25519.PublicKey), Name: label, Added: ro.Created})
	return r.publishRoster(ctx, &ro)
}

func (r *Repository) publishRoster(ctx context.Context, ro *trust.Roster) error {
	buf, err := trust.MarshalRoster(ro, r.keys.OwnerSign)
	if err != nil {
		return err
	}
	if err := saveNamed(ctx, r.be, backend.Rosters, buf); err != nil {
		return err
	}
	r.roster = ro
	return r.cache.checkVersion("roster", ro.Seq)
}

// RemoveKey deletes a key file (owner only). It refuses to remove the key
// that unlocked the repository, and the last owner key.
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	if r.keys.Role != crypto.RoleOwner {
		return fmt.Errorf("removing keys %w", crypto.ErrNeedsOwner)
	}
	if id == r.keyID {
		return errors.New("refusing to remove the key in use; unlock with another key first")
	}
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return err
	}
	owners := 0
	var target *KeyInfo
	for i, k := range keys {
		if k.Role == crypto.RoleOwner && k.Invalid == "" {
			owners++
		}
		if k.ID == id {
			target = &keys[i]
		}
	}
	if target == nil {
		return fmt.Errorf("key %s: %w", id, backend.ErrNotFound)
	}
	if target.Role == crypto.RoleOwner && target.Invalid == "" && owners <= 1 {
		return errors.New("refusing to remove the last owner key in the repository")
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.Keys, Name: id})
}

// ChangePassword stores the current key material under a new password and
// removes the old key file.
func (r *Repository) ChangePassword(ctx context.Context, password []byte, kdf crypto.KDFParams, label string) (string, error) {
	if r.keyID == "" {
		return "", errors.New("the key in use is not stored in the repository")
	}
	m := r.keys.Material
	id, err := saveKeyFile(ctx, r.be, &m, password, kdf, r.now(), label)
	if err != nil {
		return "", err
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.Keys, Name: r.keyID}); err != nil {
		return id, fmt.Errorf("new key %s saved, but removing the old one failed: %w", id[:8], err)
	}
	r.keyID = id
	return id, nil
}

// ExportKey encrypts the current key material under password for use
// outside the repository (e.g. a writer's key file on its machine).
func ExportKey(m *crypto.KeyMaterial, password []byte, kdf crypto.KDFParams, now time.Time, label string) ([]byte, error) {
	payload, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	return crypto.SealKeyFile(password, kdf, m.Role, now.Unix(), label, payload)
}

// RevokeWriter publishes a new owner-signed roster that moves the writer
// whose signing key is id from Writers to Revoked (owner only). Its
// statements up to the highest seq it has signed so far, stored or
// forgotten, stay valid; any later one is refused by the server and by
// every reader (Roster.Has). It returns that seq.
func (r *Repository) RevokeWriter(ctx context.Context, id ed25519.PublicKey) (uint64, error) {
	if r.keys.Role != crypto.RoleOwner {
		return 0, fmt.Errorf("revoking writers %w", crypto.ErrNeedsOwner)
	}
	listed := false
	for _, w := range r.roster.Writers {
		listed = listed || id.Equal(ed25519.PublicKey(w.ID))
	}
	if !listed {
		return 0, fmt.Errorf("writer %x… is not in the roster", id[:4])
	}
	last, err := r.lastSignedSeq(ctx, id)
	if err != nil {
		return 0, err
	}
	now := r.now().UTC()
	// Revoke keeps the writer's name and host binding, so its remaining
	// snapshots keep their attribution (R25).
	ro, err := r.roster.Revoke(id, last, now)
	if err != nil {
		return 0, err
	}
	ro.Seq++
	ro.Created = now
	return last, r.publishRoster(ctx, ro)
}

// lastSignedSeq is the highest seq of a statement signed by id, from the
// verified snapshot files and the valid tombstones of forgotten ones.
func (r *Repository) lastSignedSeq(ctx context.Context, id ed25519.PublicKey) (uint64, error) {
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		return 0, fmt.Errorf("load snapshots: %w", err)
	}
	var last uint64
	for _, s := range snaps {
		if st := s.File.Statement; id.Equal(ed25519.PublicKey(st.Writer[:])) {
			last = max(last, st.Seq)
		}
	}
	ts, _, err := r.Tombstones(ctx)
	if err != nil {
		return 0, fmt.Errorf("load tombstones: %w", err)
	}
	for _, t := range ts {
		if id.Equal(ed25519.PublicKey(t.Writer)) {
			last = max(last, t.Seq)
		}
	}
	return last, nil
}
