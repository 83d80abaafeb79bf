package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// Prefix is where the pages live.
const Prefix = "/ui/"

// ReplicaLag is how far one replication destination of a client is
// behind.
type ReplicaLag struct {
	Destination string
	Lag         time.Duration
	Error       string
}

// Replication is the hook for replication status: per client, each
// destination's lag (`cairn server run` reads replication's status; nil:
// the page says there is no source).
type Replication func(ctx context.Context, client string) ([]ReplicaLag, error)

// Handler serves the status page.
type Handler struct {
	State       *state.State
	Stored      monitor.Stored   // as `cairn server status` measures; nil: the state database's figure
	Now         func() time.Time // the monitor's clock (monitor.Clock()); default time.Now
	Limiter     Limiter          // failed logins per source; required
	Secure      bool             // served over TLS: cookies get Secure
	SessionTTL  time.Duration    // default DefaultSessionTTL
	Replication Replication      // nil: no replication status source
	Log         *slog.Logger

	once sync.Once
	sess sessions
}

func (h *Handler) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(func() {
		h.sess.ttl = h.SessionTTL
		if h.sess.ttl <= 0 {
			h.sess.ttl = DefaultSessionTTL
		}
	})
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	p := r.URL.Path
	switch {
	case p == "/" || p == "/ui":
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
	case p == Prefix+"login" && r.Method == http.MethodGet:
		h.loginForm(w, r, "", http.StatusOK)
	case p == Prefix+"login" && r.Method == http.MethodPost:
		h.login(w, r)
	case p == Prefix+"logout" && r.Method == http.MethodPost:
		h.logout(w, r)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case p == Prefix:
		h.authed(w, r, h.overview)
	case strings.HasPrefix(p, Prefix+"client/"):
		h.authed(w, r, func(w http.ResponseWriter, r *http.Request, s *session) {
			h.client(w, r, s, strings.TrimPrefix(p, Prefix+"client/"))
		})
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteStrictMode}
}

// current returns the request's session, or nil.
func (h *Handler) current(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil
	}
	s := h.sess.get(c.Value, time.Now())
	if s == nil {
		return "", nil
	}
	// A removed admin's sessions end at their next request.
	if _, err := h.State.Admin(r.Context(), s.admin); err != nil {
		h.sess.drop(c.Value)
		return "", nil
	}
	return c.Value, s
}

func (h *Handler) authed(w http.ResponseWriter, r *http.Request, f func(http.ResponseWriter, *http.Request, *session)) {
	if _, s := h.current(r); s != nil {
		f(w, r, s)
		return
	}
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request, msg string, status int) {
	if _, s := h.current(r); s != nil && msg == "" {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	tok := token()
	http.SetCookie(w, h.cookie(loginCookie, tok, 3600))
	h.render(w, status, "login", map[string]any{"CSRF": tok, "Error": msg})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostForm.Get("csrf"), c.Value) {
		h.loginForm(w, r, "The form expired or did not come from this page; try again.", http.StatusForbidden)
		return
	}
	src := source(r)
	if ok, wait := h.Limiter.LoginAllowed(src); !ok {
		h.log().Warn("web: login refused: too many failures", "source", src)
		h.loginForm(w, r, fmt.Sprintf("Too many failed logins from %s; try again in %s.", src, wait.Round(time.Second)), http.StatusTooManyRequests)
		return
	}
	name := r.PostForm.Get("name")
	if err := checkLogin(r.Context(), h.State, name, r.PostForm.Get("password")); err != nil {
		if errors.Is(err, errLogin) {
			h.Limiter.LoginFailed(src)
			h.log().Warn("web: login failed", "admin", name, "source", src)
			h.loginForm(w, r, "Wrong name or password.", http.StatusUnauthorized)
			return
		}
		h.log().Error("web: login", "err", err)
		http.Error(w, "state database unavailable", http.StatusServiceUnavailable)
		return
	}
	if old, err := r.Cookie(sessionCookie); err == nil {
		h.sess.drop(old.Value) // a login replaces the browser's session
	}
	id, _ := h.sess.create(name, time.Now())
	http.SetCookie(w, h.cookie(loginCookie, "", -1))
	http.SetCookie(w, h.cookie(sessionCookie, id, 0))
	h.log().Info("web: login", "admin", name, "source", src)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	id, s := h.current(r)
	if s == nil {
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil || !sameToken(r.PostForm.Get("csrf"), s.csrf) {
		http.Error(w, "the form did not come from this page", http.StatusForbidden)
		return
	}
	h.sess.drop(id)
	http.SetCookie(w, h.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		h.log().Error("web: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

// clientURL is a client page's path.
func clientURL(name string) string { return Prefix + "client/" + url.PathEscape(name) }
