// Package web is the server's status page for people: an admin logs in
// (`cairn server admin add`) and sees every client's backup age, size,
// last restore drill and open alerts, and per client its history with
// stored size over time as a chart. Pages are rendered on the server
// (html/template, inline SVG): no JavaScript, no build step. It reads
// what package monitor evaluates from the state database and changes
// nothing there.
//
// Security: passwords are bcrypt hashes in the state database, as
// clients' are; failed logins count against the server's limiter of
// failed logins per source address; a session is 32 random bytes in a
// cookie that is HttpOnly, SameSite=Strict, Path=/ui/ and Secure when
// the page is served over TLS; every POST (login and logout included)
// carries a CSRF token that must match the session's (or, before login,
// a random cookie's: double submit); pages forbid framing, scripts and
// caching.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairnbackup/cairn/internal/server/state"
)

// Cookie names.
const (
	sessionCookie = "cairn_session"
	loginCookie   = "cairn_login" // the CSRF token of the login form, before a session
)

// DefaultSessionTTL is how long a session lasts without a request.
const DefaultSessionTTL = 12 * time.Hour

// maxSessions bounds the sessions held; beyond it, the oldest goes.
const maxSessions = 1000

// Limiter is the server's limiter of failed logins per source address
// (the one that guards client logins: server.(*Server).LoginAllowed).
type Limiter interface {
	LoginAllowed(source string) (bool, time.Duration)
	LoginFailed(source string)
}

type session struct {
	admin   string
	csrf    string
	created time.Time
	seen    time.Time
}

// sessions are held in memory: a restart logs everyone out.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]*session
}

func token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *sessions) create(admin string, now time.Time) (id string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*session{}
	}
	for k, v := range s.m {
		if now.Sub(v.seen) > s.ttl {
			delete(s.m, k)
		}
	}
	if len(s.m) >= maxSessions {
		var oldest string
		for k, v := range s.m {
			if oldest == "" || v.seen.Before(s.m[oldest].seen) {
				oldest = k
			}
		}
		delete(s.m, oldest)
	}
	id, sess = token(), &session{admin: admin, csrf: token(), created: now, seen: now}
	s.m[id] = sess
	return id, sess
}

func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[id]
	if v == nil {
		return nil
	}
	if now.Sub(v.seen) > s.ttl {
		delete(s.m, id)
		return nil
	}
	v.seen = now
	return v
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func sameToken(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// source is the address failed logins count against (as for clients:
// the connection's, not a header a client may forge).
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// dummyHash is compared against for an unknown admin, so a login takes
// as long whether the name exists or not. It is made on first use: at
// package init it cost every cairn command, a backup too, a bcrypt hash
// (about 60 ms of CPU).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such admin, no such password"), bcrypt.DefaultCost)
	return h
})

// errLogin is any failed login: the page does not say which part was wrong.
var errLogin = errors.New("wrong name or password")

// checkLogin checks an admin's password.
func checkLogin(ctx context.Context, st *state.State, name, password string) error {
	a, err := st.Admin(ctx, name)
	if errors.Is(err, state.ErrNoAdmin) {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return errLogin
	}
	if err != nil {
		return err
	}
	if bcrypt.CompareHashAndPassword([]byte(a.Hash), []byte(password)) != nil {
		return errLogin
	}
	return nil
}
