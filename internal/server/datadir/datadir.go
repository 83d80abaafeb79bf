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

// ClientDir is where a client's repositories live.
func (d *Data) ClientDir(name string) string { return filepath.Join(d.Dir, ReposDir, name) }

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

// Purge removes a client's record and, with purge, its stored data.
func (d *Data) Remove(ctx context.Context, name string, purge bool) error {
	if err := d.State.RemoveClient(ctx, name); err != nil {
		return err
	}
	if purge {
		if err := restapi.ValidClientName(name); err != nil {
			return err
		}
		return os.RemoveAll(d.ClientDir(name))
	}
	return nil
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
