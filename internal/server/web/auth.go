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
// the page is served over TLS, held in memory by its SHA-256, ending
// after DefaultSessionTTL idle, MaxSessionAge in all, at logout or when
// its admin goes; every POST (login and logout included)
// carries a CSRF token that must match the session's (or, before login,
// a random cookie's: double submit); pages forbid framing, scripts and
// caching.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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

// MaxSessionAge is how long a session lasts however busy it is: an admin
// logs in again at least once a day.
const MaxSessionAge = 24 * time.Hour

// maxSessions bounds the sessions held, maxAdminSessions one admin's:
// beyond either, the least recently used goes (the admin's own first), so
// a flood of logins with one admin's password holds at most
// maxAdminSessions and never pushes out another admin's session.
const (
	maxSessions      = 1000
	maxAdminSessions = 16
)

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

// sessions are held in memory: a restart logs everyone out. They are
// kept by the SHA-256 of their token, so a lookup compares no secret
// byte by byte (the map's key comparison is not constant-time) and the
// memory holds no token a cookie could carry.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[[32]byte]*session
}

func token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// live reports whether v may still be used at now: used within the TTL
// and younger than MaxSessionAge.
func (s *sessions) live(v *session, now time.Time) bool {
	return now.Sub(v.seen) <= s.ttl && now.Sub(v.created) <= MaxSessionAge
}

// evict drops the least recently used session that match accepts.
func (s *sessions) evict(match func(*session) bool) {
	var oldest *session
	var key [32]byte
	for k, v := range s.m {
		if match(v) && (oldest == nil || v.seen.Before(oldest.seen)) {
			oldest, key = v, k
		}
	}
	if oldest != nil {
		delete(s.m, key)
	}
}

// create starts a session for admin and returns its token.
func (s *sessions) create(admin string, now time.Time) (id string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[[32]byte]*session{}
	}
	mine := 0
	for k, v := range s.m {
		switch {
		case !s.live(v, now):
			delete(s.m, k)
		case v.admin == admin:
			mine++
		}
	}
	if mine >= maxAdminSessions {
		s.evict(func(v *session) bool { return v.admin == admin })
	}
	if len(s.m) >= maxSessions {
		s.evict(func(*session) bool { return true })
	}
	id, sess = token(), &session{admin: admin, csrf: token(), created: now, seen: now}
	s.m[sessionKey(id)] = sess
	return id, sess
}

func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey(id)
	v := s.m[k]
	if v == nil {
		return nil
	}
	if !s.live(v, now) {
		delete(s.m, k)
		return nil
	}
	v.seen = now
	return v
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sessionKey(id))
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
