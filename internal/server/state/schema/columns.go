package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// How values are stored in columns: a flag as 0 or 1, a time as Unix
// nanoseconds with 0 for the zero time, a duration as nanoseconds.

// Flag is b as a column value.
func Flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Nanos is t as a column value; the zero time is 0.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos is the time Nanos stored as n.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Scanner is a row (*sql.Row or *sql.Rows).
type Scanner interface{ Scan(dest ...any) error }

// Meta returns the value of key in the meta table ("" if none).
func Meta(ctx context.Context, db *sql.DB, key string) (string, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s from the state database: %w", key, err)
	}
	return v, nil
}

// SetMeta records value under key in the meta table.
func SetMeta(ctx context.Context, db *sql.DB, key, value string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("record %s in the state database: %w", key, err)
	}
	return nil
}
