package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairnbackup/cairn/internal/backend/location"
)

// metaStorage is the state database's key for the storage location; absent
// or empty means the data directory's repos/.
const metaStorage = "storage"

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

// Storage returns where the server keeps repositories, as given to
// SetStorage; "" means <data>/repos.
func (d *Data) Storage(ctx context.Context) (string, error) {
	return d.State.meta(ctx, metaStorage)
}

// SetStorage makes loc (a directory, or s3:http[s]://host[:port]/bucket
// [/prefix]) the place the server keeps repositories and records it, so
// later runs use it without being told. It checks that the storage can be
// reached (and makes a missing bucket). The storage of a server that holds
// repositories cannot be changed: they would be left behind.
func (d *Data) SetStorage(ctx context.Context, loc string) error {
	l, err := location.Parse(loc)
	if err != nil {
		return fmt.Errorf("--storage: %w", err)
	}
	if l.Kind == location.Rest {
		return fmt.Errorf("--storage %s: a server stores repositories in a directory or an S3 bucket, not on another REST server", loc)
	}
	cur, err := d.Storage(ctx)
	if err != nil {
		return err
	}
	if cur == loc {
		_, err := connectStorage(ctx, d, loc, true)
		return err
	}
	if cur != "" {
		return fmt.Errorf("this server keeps its repositories at %s; it cannot move them to %s (copy them there, then start a new server with --storage %s)", redactLocation(cur), redactLocation(loc), redactLocation(loc))
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Dir, reposDir)); len(ents) > 0 {
		return fmt.Errorf("this server already keeps repositories in %s; it cannot move them to %s", filepath.Join(d.Dir, reposDir), redactLocation(loc))
	}
	if _, err := connectStorage(ctx, d, loc, true); err != nil {
		return err
	}
	return d.State.setMeta(ctx, metaStorage, loc)
}

// redactLocation is loc for messages: locations hold no secrets (s3:
// refuses credentials in the URL), so it is loc itself.
func redactLocation(loc string) string { return loc }

// openStorage opens the storage the state database names.
func openStorage(ctx context.Context, d *Data) (storage, error) {
	loc, err := d.Storage(ctx)
	if err != nil {
		return nil, err
	}
	return connectStorage(ctx, d, loc, false)
}

// connectStorage opens the storage at loc ("" is the data directory's
// repos/); with create it makes a missing directory or bucket.
func connectStorage(ctx context.Context, d *Data, loc string, create bool) (storage, error) {
	if loc == "" {
		return &localStorage{root: filepath.Join(d.Dir, reposDir)}, nil
	}
	l, err := location.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", loc, err)
	}
	switch l.Kind {
	case location.Local:
		if create {
			if err := os.MkdirAll(l.Path, 0o700); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		} else if _, err := os.Stat(l.Path); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return &localStorage{root: l.Path}, nil
	case location.S3:
		return newS3Storage(ctx, l, create)
	}
	return nil, fmt.Errorf("storage %s: a server stores repositories in a directory or an S3 bucket", loc)
}
