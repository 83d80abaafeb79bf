// Package replicatenant holds the rules of replica tenants; package
// server answers their requests by them.
//
// Replica tenants (`cairn server client add NAME --replica`): a client
// that is another cairn server replicating its clients' repositories
// here (internal/server/replication on that server, a rest: destination).
// Its repositories hold copies sealed to, and written by, that server:
// this one has no key to them and never opens them. It keeps its own
// guarantees instead, on the stored files alone:
//
//   - every file but the config must be named by the SHA-256 of its
//     bytes (checked as it arrives, as for every client);
//   - nothing is overwritten: a file of the same name is the same bytes,
//     and its upload succeeds without storing anything; the config is
//     replaced only by one of the repository's stored config versions
//     (configs/<its SHA-256>), as replication replaces it;
//   - the first config is stored, as replication stores it, only if it
//     is one of those versions (replication copies configs/ before the
//     config), unless the replica keeps no config version at all (a
//     restic repository's);
//   - nothing is deleted but restic's locks (a restic reader takes one)
//     and a file that no longer hashes to its name (damaged storage,
//     which the primary's audit heals by removing it and storing the
//     sound copy): the replica's append-only guarantee holds whatever
//     the primary asks, and only this server's operator removes a
//     replica;
//   - the client's quota holds;
//   - only the files of a repository are stored: no backup sessions,
//     writer lists, owner requests or agent reports.
//
// Reads (GET, HEAD, listings, ?identity for the fingerprint) are as for
// any client, so the owner restores from the replica with the replica
// tenant's credentials and the owner key.
package replicatenant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// types are the file types a replica tenant stores: what replication
// copies, and restic's locks.
var types = map[backend.FileType]bool{
	backend.Config: true, backend.Configs: true, backend.Keys: true, backend.Rosters: true,
	backend.Data: true, backend.Index: true, backend.Snapshots: true, backend.Receipts: true,
	backend.Tombstones: true, backend.Locks: true,
}

// Stores reports whether a replica tenant stores files of type t.
func Stores(t backend.FileType) bool { return types[t] }

// RepoRequest reports whether a replica tenant may make r, a
// repository-level request: ?identity (for the fingerprint) and
// ?create=true, nothing else (no backup sessions, writer lists, owner
// requests or agent reports).
func RepoRequest(r *http.Request) bool {
	return (r.Method == http.MethodGet && r.URL.RawQuery == restapi.IdentityQuery) ||
		(r.Method == http.MethodPost && r.URL.RawQuery == "create=true")
}

// configReplacer is what the server's storage offers for the one file
// that is ever replaced.
type configReplacer interface {
	ReplaceConfig(ctx context.Context, rd backend.RewindReader) error
}

// ErrNotVersion: a config upload is none of the replica's stored config
// versions while the replica keeps some.
var ErrNotVersion = errors.New("the config is none of the repository's stored config versions (configs/)")

// FirstConfig checks a replica's first config, an upload named name (the
// SHA-256 of its bytes), before it is stored: it must be one of the
// repository's stored config versions (configs/<name>), unless the
// replica keeps none at all (a restic repository's, whose config is
// stored as it comes). Any other config is refused with an error
// wrapping ErrNotVersion.
func FirstConfig(ctx context.Context, be backend.Backend, name string) error {
	_, err := be.Stat(ctx, backend.Handle{Type: backend.Configs, Name: name})
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, backend.ErrNotFound):
		return err
	}
	errFound := errors.New("a config version")
	err = be.List(ctx, backend.Configs, func(backend.FileInfo) error { return errFound })
	switch {
	case errors.Is(err, errFound):
		return fmt.Errorf("%w: it hashes to %s…, and no configs/ file has that name; a replica's config is stored only as one of its config versions, copied before it", ErrNotVersion, name[:min(12, len(name))])
	case err != nil:
		return fmt.Errorf("list config versions: %w", err)
	}
	return nil
}

// ReplaceConfig replaces the config h of a replica in be with an upload
// named name (the SHA-256 of its bytes, read from rd) if the upload is one
// of the repository's stored config versions; replaced is false, and err
// nil, for the same config again, which stores nothing. Any other config
// is refused with an error wrapping backend.ErrExists.
func ReplaceConfig(ctx context.Context, be backend.Backend, h backend.Handle, name string, rd backend.RewindReader) (replaced bool, err error) {
	stored, err := backend.LoadAll(ctx, be, h)
	if err != nil {
		return false, err
	}
	if backend.NameOf(stored) == name {
		return false, nil
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Configs, Name: name}); err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			err = fmt.Errorf("%v exists and is replaced only by one of the repository's stored config versions (configs/), which this is not: %w", h, backend.ErrExists)
		}
		return false, err
	}
	r, ok := be.(configReplacer)
	if !ok {
		return false, fmt.Errorf("%v: the server's storage cannot replace a config", h)
	}
	if err := r.ReplaceConfig(ctx, rd); err != nil {
		return false, err
	}
	return true, nil
}

// Deletable reports whether a replica tenant may delete h from be:
// restic's locks, and a content-named file only when it no longer hashes
// to its name (damaged storage), so the primary's audit can heal it
// (remove, then store the sound copy), while a sound file is never
// deleted. damaged tells which of the two a deletable file is.
func Deletable(ctx context.Context, be backend.Backend, h backend.Handle) (ok, damaged bool, err error) {
	switch h.Type {
	case backend.Locks:
		return true, false, nil
	case backend.Config:
		return false, false, nil
	}
	sum := sha256.New()
	err = be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		sum.Reset()
		_, err := io.Copy(sum, rd)
		return err
	})
	if err != nil {
		return false, false, err
	}
	bad := hex.EncodeToString(sum.Sum(nil)) != h.Name
	return bad, bad, nil
}
