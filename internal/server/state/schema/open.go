package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

// Open opens (creating if needed) the database at path, private to its
// owner, and migrates it to the current schema.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	// It holds client password hashes: 0600, also in an existing 0755
	// directory, before SQLite creates it (and its -wal, -shm) 0644.
	if err := makePrivate(path, "-wal", "-shm", "-journal"); err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
	// Migrations run on their own handle whose transactions begin
	// IMMEDIATE: each takes the write lock (waiting out busy_timeout)
	// before it reads anything, so two processes opening a new or older
	// database at once queue instead of one failing with SQLITE_BUSY
	// when it would upgrade a stale read to a write.
	// SQLite still answers SQLITE_BUSY without waiting while another
	// process turns a new database to WAL or recovers its WAL index; that
	// is retried for as long as busy_timeout would have waited.
	mdb, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	wait := time.Millisecond
	for deadline := time.Now().Add(10 * time.Second); ; wait = min(2*wait, 100*time.Millisecond) {
		err = migrate(ctx, mdb)
		if !isBusy(err) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	mdb.Close()
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	// Opening a connection (its pragmas, the schema read) costs more
	// than most queries: keep enough idle for the server's concurrent
	// requests, not database/sql's default of two.
	db.SetMaxIdleConns(8)
	return db, nil
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5
}
