package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// authenticator checks HTTP basic credentials against the state database.
// The client record is read on every request, so disable, passwd and
// remove take effect at once; only the slow bcrypt comparison is cached,
// keyed by name, password and the stored hash, for a minute.
type authenticator struct {
	state *State
	now   func() time.Time
	dummy []byte // compared against for unknown names, so timing tells nothing

	mu    sync.Mutex
	cache map[[32]byte]time.Time
}

const authCacheTTL = time.Minute

func newAuthenticator(st *State, now func() time.Time) (*authenticator, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such client, no such password"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	return &authenticator{state: st, now: now, dummy: dummy, cache: make(map[[32]byte]time.Time)}, nil
}

var errBadCredentials = errors.New("unknown client or wrong password")

// check returns the client the credentials belong to, or
// errBadCredentials. A disabled client authenticates; the caller refuses it.
func (a *authenticator) check(ctx context.Context, name, password string) (Client, error) {
	c, err := a.state.Client(ctx, name)
	if errors.Is(err, ErrNoClient) {
		bcrypt.CompareHashAndPassword(a.dummy, []byte(password))
		return Client{}, errBadCredentials
	}
	if err != nil {
		return Client{}, err
	}
	key := sha256.Sum256([]byte(name + "\x00" + password + "\x00" + c.Hash))
	now := a.now()
	a.mu.Lock()
	exp, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(exp) {
		return c, nil
	}
	if bcrypt.CompareHashAndPassword([]byte(c.Hash), []byte(password)) != nil {
		return Client{}, errBadCredentials
	}
	a.mu.Lock()
	if len(a.cache) > 10000 {
		a.cache = make(map[[32]byte]time.Time)
	}
	a.cache[key] = now.Add(authCacheTTL)
	a.mu.Unlock()
	return c, nil
}
