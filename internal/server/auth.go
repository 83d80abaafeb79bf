package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairnbackup/cairn/internal/server/state"
)

// authenticator checks HTTP basic credentials against the state database.
// The client record is read on every request, so disable, passwd and
// remove take effect at once; only the slow bcrypt comparison is cached,
// keyed by name, password and the stored hash, for a minute.
type authenticator struct {
	state *state.State
	now   func() time.Time
	dummy []byte // compared against for unknown names, so timing tells nothing

	mu    sync.Mutex
	cache map[[32]byte]time.Time

	slots chan struct{} // bcrypt comparisons running
}

const authCacheTTL = time.Minute

func newAuthenticator(st *state.State, now func() time.Time) (*authenticator, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such client, no such password"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	return &authenticator{state: st, now: now, dummy: dummy, cache: make(map[[32]byte]time.Time),
		slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}, nil
}

var errBadCredentials = errors.New("unknown client or wrong password")

// check returns the client the credentials belong to, or
// errBadCredentials. A disabled client authenticates; the caller refuses it.
// mayCompare, if not nil, is asked before each bcrypt comparison (never
// for credentials found in the cache) and may refuse it with its error.
// Comparisons run at most a few at a time.
func (a *authenticator) check(ctx context.Context, name, password string, mayCompare func() error) (state.Client, error) {
	c, err := a.state.Client(ctx, name)
	if errors.Is(err, state.ErrNoClient) {
		if err := a.compare(ctx, a.dummy, password, mayCompare); err != nil && !errors.Is(err, errBadCredentials) {
			return state.Client{}, err
		}
		return state.Client{}, errBadCredentials
	}
	if err != nil {
		return state.Client{}, err
	}
	key := sha256.Sum256([]byte(name + "\x00" + password + "\x00" + c.Hash))
	now := a.now()
	a.mu.Lock()
	exp, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(exp) {
		return c, nil
	}
	if err := a.compare(ctx, []byte(c.Hash), password, mayCompare); err != nil {
		return state.Client{}, err
	}
	a.mu.Lock()
	if len(a.cache) > 10000 {
		a.cache = make(map[[32]byte]time.Time)
	}
	a.cache[key] = now.Add(authCacheTTL)
	a.mu.Unlock()
	return c, nil
}

// compare checks password against a bcrypt hash, once mayCompare allows
// it and a comparison slot is free.
func (a *authenticator) compare(ctx context.Context, hash []byte, password string, mayCompare func() error) error {
	if mayCompare != nil {
		if err := mayCompare(); err != nil {
			return err
		}
	}
	select {
	case a.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.slots }()
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return errBadCredentials
	}
	return nil
}

// authLimitedError refuses a login from a source with too many failures.
type authLimitedError struct{ wait time.Duration }

func (e *authLimitedError) Error() string {
	return fmt.Sprintf("too many failed logins from this address; retry in %v", e.wait.Round(time.Second))
}
