package repository

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// receiptMagic starts a receipt file; the layout is that of tombstones
// (magic | u32 len | JSON | signer [32] | signature [64]).
const receiptMagic = "CRE1"

// Receipt records when a snapshot statement arrived, on the
// coordinator's clock (R14). Policy age comes from it, never from the
// time a writer claims.
type Receipt struct {
	RepoID        []byte    `json:"repo_id"`
	Snapshot      string    `json:"snapshot"`       // the snapshot file's name
	StatementHash []byte    `json:"statement_hash"` // SHA-256 of its statement
	Writer        []byte    `json:"writer"`
	Seq           uint64    `json:"seq"`
	Arrived       time.Time `json:"arrived"`
}

// WriteReceipt signs and stores a receipt for the snapshot file name with
// statement st, arrived at the coordinator's time at. Needs a
// coordinator (server) or owner key.
func (r *Repository) WriteReceipt(ctx context.Context, name string, st *snapshot.Statement, at time.Time) error {
	h := st.Hash()
	buf, err := r.signFile(receiptMagic, crypto.SigReceipt, &Receipt{
		RepoID: r.keys.RepoID[:], Snapshot: name, StatementHash: h[:], Writer: st.Writer[:], Seq: st.Seq, Arrived: at.UTC(),
	})
	if err != nil {
		return err
	}
	return saveNamed(ctx, r.be, backend.Receipts, buf)
}

// Receipts loads every receipt signed by the owner or a roster
// coordinator, by snapshot file name (the earliest wins). Receipts that
// do not verify are returned in bad and otherwise ignored.
func (r *Repository) Receipts(ctx context.Context) (map[string]Receipt, []error, error) {
	out := map[string]Receipt{}
	var bad []error
	err := r.be.List(ctx, backend.Receipts, func(fi backend.FileInfo) error {
		buf, err := backend.LoadAll(ctx, r.be, fi.Handle)
		if err != nil {
			return err
		}
		if backend.NameOf(buf) != fi.Name {
			bad = append(bad, fmt.Errorf("receipt %s: content does not match its name", fi.Name[:8]))
			return nil
		}
		var rc Receipt
		if _, err := r.openSigned(buf, receiptMagic, crypto.SigReceipt, &rc); err != nil {
			bad = append(bad, fmt.Errorf("receipt %s: %w", fi.Name[:8], err))
			return nil
		}
		if string(rc.RepoID) != string(r.keys.RepoID[:]) {
			bad = append(bad, fmt.Errorf("receipt %s belongs to another repository", fi.Name[:8]))
			return nil
		}
		if old, ok := out[rc.Snapshot]; !ok || rc.Arrived.Before(old.Arrived) {
			out[rc.Snapshot] = rc
		}
		return nil
	})
	return out, bad, err
}

// ApplyReceipts sets each snapshot's ModTime (the receipt time that
// retention ages it by) from a valid receipt for exactly its statement,
// where there is one. Snapshots without one keep the storage's time.
func (r *Repository) ApplyReceipts(ctx context.Context, snaps []*Snapshot) ([]error, error) {
	rcs, bad, err := r.Receipts(ctx)
	if err != nil {
		return bad, err
	}
	for _, s := range snaps {
		rc, ok := rcs[s.ID.String()]
		if !ok {
			continue
		}
		h := sha256.Sum256(s.File.StatementRaw)
		if string(rc.StatementHash) != string(h[:]) {
			bad = append(bad, fmt.Errorf("receipt for snapshot %s names another statement", s.ID.Short()))
			continue
		}
		s.ModTime = rc.Arrived
	}
	return bad, nil
}
