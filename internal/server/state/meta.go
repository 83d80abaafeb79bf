package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// metaStorage is the meta key of the storage location; absent or empty
// means the data directory's repos/.
const metaStorage = "storage"

// Storage returns the storage location SetStorage recorded ("" if none).
func (s *State) Storage(ctx context.Context) (string, error) {
	return s.meta(ctx, metaStorage)
}

// SetStorage records the storage location.
func (s *State) SetStorage(ctx context.Context, loc string) error {
	return s.setMeta(ctx, metaStorage, loc)
}

func (s *State) meta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s from the state database: %w", key, err)
	}
	return v, nil
}

func (s *State) setMeta(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("record %s in the state database: %w", key, err)
	}
	return nil
}
