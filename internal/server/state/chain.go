package state

// The chain record (R11, R22): per repository and writer, the last
// statement the server knows committed. What moves it is the server's
// (internal/server/chain.go); this is how it is stored.

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// ChainLink is a writer's last committed statement.
type ChainLink struct {
	Seq      uint64
	Hash     [32]byte
	Snapshot string // file name; the file may since have been forgotten
}

// ChainLink returns the writer's last committed statement in repo; ok is
// false if the writer never committed there.
func (s *State) ChainLink(ctx context.Context, repo string, repoID, writer [32]byte) (l ChainLink, ok bool, err error) {
	var seq int64
	var h string
	err = s.db.QueryRowContext(ctx, `SELECT seq, hash, snapshot FROM chains WHERE repo = ? AND repo_id = ? AND writer = ?`,
		repo, hex.EncodeToString(repoID[:]), hex.EncodeToString(writer[:])).Scan(&seq, &h, &l.Snapshot)
	if errors.Is(err, sql.ErrNoRows) {
		return ChainLink{}, false, nil
	}
	if err != nil {
		return ChainLink{}, false, fmt.Errorf("read chain record of %s: %w", repo, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 32 {
		return ChainLink{}, false, fmt.Errorf("chain record of %s: bad statement hash %q", repo, h)
	}
	l.Seq = uint64(seq)
	copy(l.Hash[:], raw)
	return l, true, nil
}

// AdvanceChain records l as the writer's last statement unless the record
// already holds a higher (or the same) seq: the record never moves back.
func (s *State) AdvanceChain(ctx context.Context, repo string, repoID, writer [32]byte, l ChainLink) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO chains (repo, repo_id, writer, seq, hash, snapshot) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (repo, repo_id, writer) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, snapshot = excluded.snapshot
		WHERE excluded.seq > chains.seq`,
		repo, hex.EncodeToString(repoID[:]), hex.EncodeToString(writer[:]), int64(l.Seq), hex.EncodeToString(l.Hash[:]), l.Snapshot)
	if err != nil {
		return fmt.Errorf("record chain of %s: %w", repo, err)
	}
	return nil
}

// DropChains forgets every chain record, as a lost state database would;
// the server rebuilds them from storage on the next commit (it folds what
// storage holds into the records).
func (s *State) DropChains(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM chains`); err != nil {
		return fmt.Errorf("drop chain records: %w", err)
	}
	return nil
}
