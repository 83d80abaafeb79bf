package repository

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Sequence claims (docs/format.md §12a). Before a key stores the snapshot
// file with statement seq n, it stores claims/<name>, a small file whose
// bytes depend only on the repository, the key and n, and so whose content
// name does too. Storage is write-once (local: a no-replace rename; S3: a
// conditional PUT), so of two commits racing for seq n exactly one stores
// the claim; the other gets ErrExists, waits until the winner's statement
// is visible and re-sequences after it. One key's chain therefore never
// forks however many backups run at once. A cairn server orders commits
// itself (a duplicate seq is refused with 409 bad-sequence), so a client
// of a server takes no claims.

const claimMagic = "CRQ1"

// claimWait bounds how long a commit that lost a claim waits for the
// winner's snapshot file to appear; claimStale is how old (storage time)
// a claim with no snapshot must be before it counts as abandoned (its
// committer died between claim and snapshot) and is taken over.
var (
	claimWait  = 2 * time.Minute
	claimStale = 10 * time.Minute
)

// maxCommitAttempts bounds re-sequencing: each lost race means another
// commit by the same key succeeded.
const maxCommitAttempts = 64

var errSeqTaken = errors.New("sequence number already claimed")

// claimBytes is the claim for seq of this repository's key.
func (r *Repository) claimBytes(seq uint64) []byte {
	b := []byte(claimMagic)
	b = append(b, r.keys.RepoID[:]...)
	b = append(b, r.keys.SignerID()...)
	return binary.LittleEndian.AppendUint64(b, seq)
}

func (r *Repository) claimHandle(seq uint64) (backend.Handle, []byte) {
	buf := r.claimBytes(seq)
	return backend.Handle{Type: backend.Claims, Name: backend.NameOf(buf)}, buf
}

// claimSeq claims seq for this key's next statement; errSeqTaken if
// another commit holds it.
func (r *Repository) claimSeq(ctx context.Context, seq uint64) error {
	if backend.ServerSequenced(r.be) {
		return nil
	}
	h, buf := r.claimHandle(seq)
	err := r.be.Save(ctx, h, backend.NewByteReader(buf))
	if errors.Is(err, backend.ErrExists) {
		return errSeqTaken
	}
	if errors.Is(err, backend.ErrPermission) {
		// A storage that refuses claims outright (a cairn server behind a
		// wrapper that hides it, or a bucket policy) is not one where
		// claims can serve: commit without, as before claims existed; a
		// server orders the commits itself.
		r.log.Debug("sequence claim refused; committing without one", "seq", seq, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim seq %d: %w", seq, err)
	}
	return nil
}

// awaitHead waits until this key's chain head reaches seq (the commit that
// claimed it stored its snapshot). If it does not within claimWait and the
// claim is older than claimStale, the claim is removed as abandoned.
func (r *Repository) awaitHead(ctx context.Context, seq uint64) error {
	deadline := time.Now().Add(claimWait)
	delay := 20 * time.Millisecond
	for {
		head, err := r.chainHead(ctx)
		if err != nil {
			return err
		}
		if head != nil && head.seq >= seq {
			return nil
		}
		h, _ := r.claimHandle(seq)
		fi, err := r.be.Stat(ctx, h)
		if errors.Is(err, backend.ErrNotFound) {
			return nil // released: try it again
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			if !fi.ModTime.IsZero() && time.Since(fi.ModTime) > claimStale {
				r.log.Warn("taking over an abandoned sequence claim", "seq", seq, "claimed", fi.ModTime)
				if err := r.be.Remove(ctx, h); err != nil && !errors.Is(err, backend.ErrNotFound) {
					return err
				}
				return nil
			}
			return fmt.Errorf("seq %d of this key was claimed at %s by another commit that has not stored its snapshot; if no other backup with this key is running, the claim is released %s after it was taken",
				seq, fi.ModTime.Format(time.RFC3339), claimStale)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}
