package repository

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
)

// Maintenance (forget, prune, repair) writes two kinds of coordinator-signed
// files: tombstones (a snapshot was deleted, when and by which rule) and
// condemnation plans (packs a prune means to delete). Both are
//
//	magic [4] | body length u32 | body (JSON) | signer public key [32] | Ed25519 signature [64]
//
// signed by Keys().CoordSign under their own context; a reader accepts
// them only from the owner or a coordinator in the roster.

// sigPlan is the signing context of condemnation plans.
const sigPlan = "cairn v1 condemnation plan"

// Every stored object has its own magic: a tombstone's is not a tree's
// (CRT1), so one can never be read as the other.
const (
	tombstoneMagic = "CRD1"
	planMagic      = "CRL1"
	maxSignedFile  = 64 << 20
)

// ErrNotCoordinator means a key that signs no tombstones or plans (a
// writer) tried maintenance.
var ErrNotCoordinator = fmt.Errorf("deleting %w", crypto.ErrNeedsMetadata)

func (r *Repository) signFile(magic, context string, body any) ([]byte, error) {
	if r.keys.CoordSign == nil || r.keys.MetaIdentity == nil {
		return nil, ErrNotCoordinator
	}
	js, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	b := append([]byte(magic), binary.LittleEndian.AppendUint32(nil, uint32(len(js)))...)
	b = append(b, js...)
	b = append(b, r.keys.CoordSign.Public().(ed25519.PublicKey)...)
	return append(b, crypto.Sign(r.keys.CoordSign, context, js)...), nil
}

// openSigned verifies a signed maintenance file and decodes its body.
func (r *Repository) openSigned(buf []byte, magic, context string, out any) (ed25519.PublicKey, error) {
	if len(buf) > maxSignedFile || len(buf) < 8+32+64 || string(buf[:4]) != magic {
		return nil, errors.New("malformed signed file")
	}
	l := binary.LittleEndian.Uint32(buf[4:])
	if uint64(l)+8+32+64 != uint64(len(buf)) {
		return nil, errors.New("signed file length mismatch")
	}
	body := buf[8 : 8+l]
	pub := ed25519.PublicKey(bytes.Clone(buf[8+l : 8+l+32]))
	if !pub.Equal(r.keys.OwnerSignPub) && !r.roster.IsCoordinator(pub) {
		return nil, errors.New("signed by a key that is neither the owner nor a coordinator in the roster")
	}
	if err := crypto.Verify(pub, context, body, buf[8+l+32:]); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return pub, nil
}

// Tombstone records a deleted snapshot (R14, R17).
type Tombstone struct {
	RepoID        []byte    `json:"repo_id"`
	Snapshot      string    `json:"snapshot"`       // the snapshot file's name
	StatementHash []byte    `json:"statement_hash"` // SHA-256 of its statement
	Writer        []byte    `json:"writer"`
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"` // the coordinator's time of deletion
	Rule          string    `json:"rule"` // which policy removed it
}

// LoadedTombstone is a verified tombstone and its file.
type LoadedTombstone struct {
	Tombstone
	Name    string
	ModTime time.Time
	Signer  ed25519.PublicKey
}

// ForgetSnapshot deletes a snapshot: first a signed tombstone goes to
// tombstones/, then the snapshot file is removed, so a snapshot never
// disappears without a record (a seq gap with a tombstone is not an
// attack). Needs the owner or a server key.
func (r *Repository) ForgetSnapshot(ctx context.Context, s *Snapshot, rule string) error {
	st := s.File.Statement
	h := st.Hash()
	t := Tombstone{RepoID: r.keys.RepoID[:], Snapshot: s.ID.String(), StatementHash: h[:], Writer: st.Writer[:],
		Seq: st.Seq, Time: r.now().UTC(), Rule: rule}
	buf, err := r.signFile(tombstoneMagic, crypto.SigTombstone, t)
	if err != nil {
		return err
	}
	if err := saveNamed(ctx, r.be, backend.Tombstones, buf); err != nil {
		return err
	}
	err = r.be.Remove(ctx, backend.Handle{Type: backend.Snapshots, Name: s.ID.String()})
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("remove snapshot %s: %w", s.ID.Short(), err)
	}
	return nil
}

// Tombstones loads and verifies every tombstone; bad ones come back in errs.
func (r *Repository) Tombstones(ctx context.Context) (ts []LoadedTombstone, errs []error, err error) {
	err = r.be.List(ctx, backend.Tombstones, func(fi backend.FileInfo) error {
		buf, err := backend.LoadAll(ctx, r.be, fi.Handle)
		if err != nil {
			return err
		}
		if backend.NameOf(buf) != fi.Name {
			errs = append(errs, fmt.Errorf("%s: content does not match its name", fi.Handle))
			return nil
		}
		var t LoadedTombstone
		pub, err := r.openSigned(buf, tombstoneMagic, crypto.SigTombstone, &t.Tombstone)
		if err == nil && !bytes.Equal(t.RepoID, r.keys.RepoID[:]) {
			err = errors.New("belongs to another repository")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fi.Handle, err))
			return nil
		}
		t.Name, t.ModTime, t.Signer = fi.Name, fi.ModTime, pub
		ts = append(ts, t)
		return nil
	})
	return ts, errs, err
}

// WriteIndexFragments seals packs' headers into new index fragments,
// split as a session's are (at most maxFragmentBytes of headers each),
// signed by the coordinator key (it may list every party's packs, R23),
// and returns the name of the fragment listing each pack (names[i] lists
// packs[i]).
func (r *Repository) WriteIndexFragments(ctx context.Context, packs []pack.IndexPack) (names []string, err error) {
	return r.writeFragments(ctx, packs, r.maintenanceSigner())
}

// LoadSealed reads one blob's sealed bytes as stored, without opening it.
func (r *Repository) LoadSealed(ctx context.Context, e index.Entry) ([]byte, error) {
	var sealed []byte
	h := backend.Handle{Type: backend.Data, Name: e.Pack.String()}
	err := r.be.Load(ctx, h, int(e.Length), int64(e.Offset), func(rd io.Reader) error {
		sealed = make([]byte, e.Length)
		_, err := io.ReadFull(rd, sealed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load %s blob %s from %s: %w", e.Type, e.ID.Short(), h, err)
	}
	return sealed, nil
}

// CopySealed adds a sealed blob to w verbatim with its key slot: blobs'
// associated data holds nothing positional, so a copy opens as the
// original did (R7). It needs only the metadata identity.
func (r *Repository) CopySealed(w *pack.Writer, e index.Entry, sealed []byte) error {
	slot, ok := r.Slot(e.Slot)
	if !ok {
		return fmt.Errorf("blob %s: unknown key slot %d", e.ID.Short(), e.Slot)
	}
	w.Add(e.Type, e.ID, sealed, w.AddSlot(slot))
	return nil
}

// SavePack finishes w as a pack of domain dom (header signed by the
// coordinator key, sealed to the metadata recipient), stores it and adds
// it to the in-memory index. It returns the pack's index record. A repack
// passes the domain its blobs came from: a pack holds one domain's blobs.
func (r *Repository) SavePack(ctx context.Context, w *pack.Writer, dom blob.Domain) (pack.IndexPack, error) {
	w.SetSigner(r.keys.RepoID, dom, r.maintenanceSigner())
	buf, hdr, err := w.Finish(r.keys.MetaRecipient)
	if err != nil {
		return pack.IndexPack{}, err
	}
	name := backend.NameOf(buf)
	h := backend.Handle{Type: backend.Data, Name: name}
	if err := r.be.Save(ctx, h, backend.NewByteReader(buf)); err != nil && !errors.Is(err, backend.ErrExists) {
		return pack.IndexPack{}, fmt.Errorf("save %s: %w", h, err)
	}
	id, _ := blob.ParseID(name)
	r.addPack(id, hdr)
	return pack.IndexPack{Pack: id, Header: hdr.Marshal()}, nil
}

// RemoveFile deletes a repository file; a file already gone is no error
// (maintenance resumes after a kill).
func (r *Repository) RemoveFile(ctx context.Context, h backend.Handle) error {
	if err := r.be.Remove(ctx, h); err != nil && !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	if h.Type == backend.Index {
		r.noteFragment(h.Name, nil)
	}
	return nil
}

func nonce() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b
}
