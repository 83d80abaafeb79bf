// Package datadir is a cairn server's data directory: the state database,
// the server's identity, the client records with their passwords, and
// where the repositories are stored (repos/ in the directory, or the
// storage recorded in the state database).
package datadir

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/identity"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/storage"
)

// Layout of a server data directory.
const (
	StateFile    = "state.db"
	IdentityFile = "identity.json"
	ReposDir     = "repos" // ReposDir/<client>/<repository…>
)

// ErrNotInitialized means a data directory has no server in it.
var ErrNotInitialized = errors.New("no cairn server data directory")

// Data is an opened server data directory.
type Data struct {
	Dir      string
	State    *state.State
	Identity *identity.Identity
}

// Init creates a server data directory in dir (missing or empty): the
// state database and the server's identity.
func Init(ctx context.Context, dir string) (*Data, error) {
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); err == nil {
		return nil, fmt.Errorf("%s already holds a cairn server", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, ReposDir), 0o700); err != nil {
		return nil, err
	}
	id, err := identity.New()
	if err != nil {
		return nil, err
	}
	st, err := state.Open(ctx, filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	if err := identity.Write(filepath.Join(dir, IdentityFile), id); err != nil {
		st.Close()
		return nil, err
	}
	return &Data{Dir: dir, State: st, Identity: id}, nil
}

// Open opens an initialized data directory.
func Open(ctx context.Context, dir string) (*Data, error) {
	id, err := identity.Read(filepath.Join(dir, IdentityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNotInitialized, dir)
	}
	if err != nil {
		return nil, err
	}
	st, err := state.Open(ctx, filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	return &Data{Dir: dir, State: st, Identity: id}, nil
}

// Close closes the state database.
func (d *Data) Close() error { return d.State.Close() }

// NewClient hashes password and records a new client.
func (d *Data) NewClient(ctx context.Context, c state.Client, password []byte) error {
	if err := restapi.ValidClientName(c.Name); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	c.Hash = hash
	return d.State.AddClient(ctx, c)
}

// Remove removes a client's record and, with purge, every file it stores
// in the storage the state database names (the data directory's repos/,
// another directory, or a bucket). The record goes first, so the client
// can no longer log in while its files are deleted; a purge that fails
// after that says where the files are.
func (d *Data) Remove(ctx context.Context, name string, purge bool) error {
	if err := restapi.ValidClientName(name); err != nil {
		return err
	}
	var st storage.Storage
	if purge {
		var err error
		if st, err = d.OpenStorage(ctx); err != nil { // before the record goes
			return fmt.Errorf("client %s not removed: %w", name, err)
		}
	}
	if err := d.State.RemoveClient(ctx, name); err != nil {
		return err
	}
	if purge {
		if err := st.Purge(ctx, name); err != nil {
			return fmt.Errorf("client %s removed, but its repositories in %s were not all deleted: %w", name, st.ClientWhere(name), err)
		}
	}
	return nil
}

// ClientWhere names where a client's repositories are, in the storage the
// state database names.
func (d *Data) ClientWhere(ctx context.Context, name string) (string, error) {
	st, err := d.OpenStorage(ctx)
	if err != nil {
		return "", err
	}
	return st.ClientWhere(name), nil
}

// HashPassword returns the bcrypt hash of a client password.
func HashPassword(pw []byte) (string, error) {
	if len(pw) < 8 {
		return "", errors.New("the password is too short: use at least 8 characters")
	}
	if len(pw) > 72 {
		return "", errors.New("the password is too long for bcrypt: use at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword(pw, bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// GeneratePassword returns a random password of 128 bits, URL-safe so it
// can sit in a rest: URL unescaped.
func GeneratePassword() string {
	buf := make([]byte, 16)
	rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// StoredBytes measures what a client stores on disk now.
func (d *Data) StoredBytes(name string) (int64, error) {
	st, err := d.OpenStorage(context.Background())
	if err != nil {
		return 0, fmt.Errorf("measure storage of %s: %w", name, err)
	}
	return st.Used(context.Background(), name)
}
