package datadir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/server/storage"
)

// Storage returns where the server keeps repositories, as given to
// SetStorage; "" means <data>/repos.
func (d *Data) Storage(ctx context.Context) (string, error) {
	return d.State.Storage(ctx)
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
	if ents, _ := os.ReadDir(filepath.Join(d.Dir, ReposDir)); len(ents) > 0 {
		return fmt.Errorf("this server already keeps repositories in %s; it cannot move them to %s", filepath.Join(d.Dir, ReposDir), redactLocation(loc))
	}
	if _, err := connectStorage(ctx, d, loc, true); err != nil {
		return err
	}
	return d.State.SetStorage(ctx, loc)
}

// redactLocation is loc for messages: locations hold no secrets (s3:
// refuses credentials in the URL), so it is loc itself.
func redactLocation(loc string) string { return loc }

// OpenStorage opens the storage the state database names: the server's
// repositories, and `cairn server audit`'s work outside `cairn server run`.
func (d *Data) OpenStorage(ctx context.Context) (storage.Storage, error) {
	loc, err := d.Storage(ctx)
	if err != nil {
		return nil, err
	}
	return connectStorage(ctx, d, loc, false)
}

// connectStorage opens the storage at loc ("" is the data directory's
// repos/); with create it makes a missing directory or bucket.
func connectStorage(ctx context.Context, d *Data, loc string, create bool) (storage.Storage, error) {
	return storage.Connect(ctx, filepath.Join(d.Dir, ReposDir), loc, create)
}
