package verify

// The chain record (R11, R22): per repository and writer, the last
// statement the server knows committed — its seq, its hash and the
// snapshot file's name — kept in the state database so that checking a
// commit's seq and prev costs a row, not a reload of every snapshot.
//
// The record is a high-water mark: it only moves up. It moves when the
// server stores a snapshot (noteCommit), and when it folds in what
// storage holds that it has not seen yet: the statements at the head of
// snapshot files, and the tombstones of forgotten snapshots, which record
// the same seq and statement hash. Each server process folds every file
// once, the first time it validates a commit to the repository (the
// seed: a server started on existing data, or after losing its state,
// is right at once), and then only files that appeared since — another
// server's commits and tombstones while it held the repository's lease,
// the owner's `cairn forget`. So
//
//   - a writer whose last snapshot was forgotten still chains to it: the
//     tombstone keeps its seq and hash;
//   - a deleted snapshot uploaded again (a replay) is refused: its seq is
//     not above the record;
//   - storage rolled back below a writer's last commit is noticed: the
//     record stays above what storage holds, and the writer is told so.

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// chainSeen is what a server process has folded into a repository's chain
// records: snapshot and tombstone file names.
type chainSeen struct {
	snaps map[string]bool
	tombs map[string]bool
}

// syncChain folds the snapshots and tombstones stored in the repository
// that this process has not seen yet into the chain records. The caller
// coordinates the repository.
func (s *Verifier) syncChain(ctx context.Context, cr *Repo, be backend.Backend, repo *repository.Repository) error {
	cr.chainMu.Lock()
	defer cr.chainMu.Unlock()
	if cr.seen.snaps == nil {
		cr.seen = chainSeen{snaps: map[string]bool{}, tombs: map[string]bool{}}
	}
	best := map[[32]byte]state.ChainLink{}
	advance := func(w [32]byte, l state.ChainLink) {
		if o, ok := best[w]; !ok || l.Seq > o.Seq {
			best[w] = l
		}
	}
	if err := cr.foldSnapshots(ctx, be, advance); err != nil {
		return err
	}
	if err := cr.foldTombstones(ctx, be, repo, advance); err != nil {
		return err
	}
	for w, l := range best {
		if err := s.State.AdvanceChain(ctx, cr.path, cr.v.RepoID(), w, l); err != nil {
			return err
		}
	}
	return nil
}

// foldSnapshots reads the statement of each snapshot file not seen yet
// and advances its writer's link. The caller holds chainMu.
func (cr *Repo) foldSnapshots(ctx context.Context, be backend.Backend, advance func([32]byte, state.ChainLink)) error {
	var fresh []backend.FileInfo
	listed := map[string]bool{}
	if err := be.List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
		listed[fi.Name] = true
		if !cr.seen.snaps[fi.Name] {
			fresh = append(fresh, fi)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	for n := range cr.seen.snaps {
		if !listed[n] {
			delete(cr.seen.snaps, n) // forgotten: its tombstone speaks for it
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, fi := range fresh {
		g.Go(func() error {
			st, err := repository.ReadStatement(gctx, be, fi)
			if errors.Is(err, backend.ErrNotFound) {
				return nil // forgotten meanwhile: its tombstone says the same
			}
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			cr.seen.snaps[fi.Name] = true
			if st != nil && st.RepoID == cr.v.RepoID() {
				advance(st.Writer, state.ChainLink{Seq: st.Seq, Hash: st.Hash(), Snapshot: fi.Name})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("read snapshot statements: %w", err)
	}
	return nil
}

// foldTombstones advances each writer's link to its forgotten snapshots'
// tombstones, if tombstones appeared since the last fold. The caller
// holds chainMu.
func (cr *Repo) foldTombstones(ctx context.Context, be backend.Backend, repo *repository.Repository, advance func([32]byte, state.ChainLink)) error {
	newTombs := false
	var tombNames []string
	if err := be.List(ctx, backend.Tombstones, func(fi backend.FileInfo) error {
		tombNames = append(tombNames, fi.Name)
		newTombs = newTombs || !cr.seen.tombs[fi.Name]
		return nil
	}); err != nil {
		return fmt.Errorf("list tombstones: %w", err)
	}
	if !newTombs {
		return nil
	}
	// Tombstones are few next to snapshots and appear after a forget:
	// loading all of them (each verified: by the owner or a roster
	// coordinator) only then is cheap enough.
	ts, _, err := repo.Tombstones(ctx)
	if err != nil {
		return fmt.Errorf("load tombstones: %w", err)
	}
	for _, t := range ts {
		var w, h [32]byte
		if len(t.Writer) != 32 || len(t.StatementHash) != 32 {
			continue
		}
		copy(w[:], t.Writer)
		copy(h[:], t.StatementHash)
		advance(w, state.ChainLink{Seq: t.Seq, Hash: h, Snapshot: t.Snapshot})
	}
	for _, n := range tombNames {
		cr.seen.tombs[n] = true
	}
	return nil
}

// NoteCommit advances the writer's chain record to a snapshot the server
// has just stored (body passed validateSnapshot). The caller coordinates
// the repository.
func (s *Verifier) NoteCommit(ctx context.Context, cr *Repo, name string, body []byte) error {
	f, err := snapshot.ParseFile(body)
	if err != nil {
		return err
	}
	st := f.Statement
	if err := s.State.AdvanceChain(ctx, cr.path, cr.v.RepoID(), st.Writer, state.ChainLink{Seq: st.Seq, Hash: st.Hash(), Snapshot: name}); err != nil {
		return err // not marked seen: the next sync reads it from storage
	}
	cr.chainMu.Lock()
	if cr.seen.snaps != nil {
		cr.seen.snaps[name] = true
	}
	cr.chainMu.Unlock()
	return nil
}
