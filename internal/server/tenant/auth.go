// Package tenant is the server's tenant layer below HTTP: who a request
// is (credentials against bcrypt hashes in the state database), how many
// failed logins a source address may make, how many uploads a client may
// run at once, and how many bytes each client stores against its quota.
package tenant

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"

	"github.com/cairnbackup/cairn/internal/server/state"
)

// Authenticator checks HTTP basic credentials against the state database.
// The client record is checked against the database on every request
// (state's client cache answers from memory only while SQLite says
// nothing committed since), so disable, passwd and remove take effect at
// the next request; only the slow bcrypt comparison is cached,
// keyed by name, password and the stored hash, for a minute. Requests
// that bring the same credentials while their comparison runs wait for it
// instead of queueing comparisons of their own: a client opens several
// connections at once when a backup starts, and each would otherwise cost
// a bcrypt comparison, all of them queued behind every other client's.
type Authenticator struct {
	state *state.State
	now   func() time.Time
	dummy []byte // compared against for unknown names, so timing tells nothing

	mu    sync.Mutex
	cache map[[32]byte]time.Time

	slots  chan struct{}      // bcrypt comparisons running
	flight singleflight.Group // comparisons running, by cache key
}

const authCacheTTL = time.Minute

// NewAuthenticator checks credentials against the clients in st.
func NewAuthenticator(st *state.State, now func() time.Time) (*Authenticator, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such client, no such password"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	return &Authenticator{state: st, now: now, dummy: dummy, cache: make(map[[32]byte]time.Time),
		slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}, nil
}

// ErrBadCredentials: an unknown client or a wrong password.
var ErrBadCredentials = errors.New("unknown client or wrong password")

// Check returns the client the credentials belong to, or
// ErrBadCredentials. A disabled client authenticates; the caller refuses it.
// mayCompare, if not nil, is asked before each bcrypt comparison (never
// for credentials found in the cache) and may refuse it with its error.
// Comparisons run at most a few at a time.
func (a *Authenticator) Check(ctx context.Context, name, password string, mayCompare func() error) (state.Client, error) {
	c, err := a.state.Client(ctx, name)
	if errors.Is(err, state.ErrNoClient) {
		if err := a.compare(ctx, a.dummy, password, mayCompare); err != nil && !errors.Is(err, ErrBadCredentials) {
			return state.Client{}, err
		}
		return state.Client{}, ErrBadCredentials
	}
	if err != nil {
		return state.Client{}, err
	}
	key := sha256.Sum256([]byte(name + "\x00" + password + "\x00" + c.Hash))
	for {
		if a.cached(key) {
			return c, nil
		}
		ran := false // this request's own comparison (it led the flight)
		ch := a.flight.DoChan(string(key[:]), func() (any, error) {
			ran = true
			if a.cached(key) { // a comparison that ended since
				return nil, nil
			}
			if err := a.compare(ctx, []byte(c.Hash), password, mayCompare); err != nil {
				return nil, err
			}
			a.mu.Lock()
			if len(a.cache) > 10000 {
				a.cache = make(map[[32]byte]time.Time)
			}
			a.cache[key] = a.now().Add(authCacheTTL)
			a.mu.Unlock()
			return nil, nil
		})
		select {
		case <-ctx.Done():
			return state.Client{}, ctx.Err()
		case res := <-ch:
			if res.Err == nil {
				return c, nil
			}
			// Another request ran the comparison and went away before it
			// ended, or its source address may not log in now: compare
			// again, for this one. A request's own refusal is its answer.
			var le *AuthLimitedError
			if res.Shared && !ran && ctx.Err() == nil && (errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded) || errors.As(res.Err, &le)) {
				continue
			}
			return state.Client{}, res.Err
		}
	}
}

// cached reports whether the credentials with this key compared equal
// less than authCacheTTL ago.
func (a *Authenticator) cached(key [32]byte) bool {
	a.mu.Lock()
	exp, ok := a.cache[key]
	a.mu.Unlock()
	return ok && a.now().Before(exp)
}

// compare checks password against a bcrypt hash, once mayCompare allows
// it and a comparison slot is free.
func (a *Authenticator) compare(ctx context.Context, hash []byte, password string, mayCompare func() error) error {
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
		return ErrBadCredentials
	}
	return nil
}

// AuthLimitedError refuses a login from a source with too many failures;
// Wait is how long until it may try again.
type AuthLimitedError struct{ Wait time.Duration }

func (e *AuthLimitedError) Error() string {
	return fmt.Sprintf("too many failed logins from this address; retry in %v", e.Wait.Round(time.Second))
}
