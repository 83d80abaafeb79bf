package web

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// limiter allows max failures per source, then refuses.
type limiter struct {
	mu    sync.Mutex
	max   int
	fails map[string]int
}

func (l *limiter) LoginAllowed(src string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fails[src] < l.max, time.Minute
}

func (l *limiter) LoginFailed(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails[src]++
}

type fixture struct {
	st   *state.State
	h    *Handler
	srv  *httptest.Server
	lim  *limiter
	c    *http.Client
	base string
}

func newFixture(t *testing.T, tls bool) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hash, _ := bcrypt.GenerateFromPassword([]byte("admin-secret-pw"), bcrypt.MinCost)
	if err := st.AddAdmin(ctx, state.Admin{Name: "ops", Hash: string(hash), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.AddClient(ctx, state.Client{Name: "laptop", Hash: "h", Created: now.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSnapshot(ctx, "laptop", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.AddClient(ctx, state.Client{Name: "<b>x</b>", Hash: "h", Created: now.Add(-30 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, lim: &limiter{max: 3, fails: map[string]int{}}}
	f.h = &Handler{State: st, Limiter: f.lim, Secure: tls}
	if tls {
		f.srv = httptest.NewTLSServer(f.h)
		f.c = f.srv.Client()
	} else {
		f.srv = httptest.NewServer(f.h)
		f.c = &http.Client{}
	}
	t.Cleanup(f.srv.Close)
	jar, _ := cookiejar.New(nil)
	f.c.Jar = jar
	f.base = f.srv.URL
	return f
}

func (f *fixture) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := f.c.Get(f.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f *fixture) post(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := f.c.PostForm(f.base+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in:\n%s", page)
	}
	return m[1]
}

func (f *fixture) login(t *testing.T, name, pw string) (*http.Response, string) {
	t.Helper()
	_, page := f.get(t, "/ui/login")
	return f.post(t, "/ui/login", url.Values{"csrf": {csrfOf(t, page)}, "name": {name}, "password": {pw}})
}

func TestLoginSessionLogout(t *testing.T) {
	f := newFixture(t, false)
	// Not logged in: every page sends to the login form.
	resp, page := f.get(t, "/ui/")
	if resp.Request.URL.Path != "/ui/login" || !strings.Contains(page, `type="password"`) {
		t.Fatalf("anonymous overview: ended at %s:\n%s", resp.Request.URL, page)
	}
	if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
	resp, page = f.login(t, "ops", "admin-secret-pw")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/ui/" {
		t.Fatalf("login: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if !strings.Contains(page, `<a href="/ui/client/laptop">laptop</a>`) || !strings.Contains(page, `class="ok"`) {
		t.Fatalf("overview:\n%s", page)
	}
	// A client's name is text, never markup.
	if strings.Contains(page, "<b>x</b>") || !strings.Contains(page, "&lt;b&gt;x&lt;/b&gt;") {
		t.Fatalf("client name not escaped:\n%s", page)
	}
	// The never-backed-up client enrolled 30h ago is ALERT.
	if !strings.Contains(page, `class="alert"`) {
		t.Fatalf("no alert row:\n%s", page)
	}
	resp, page = f.get(t, "/ui/client/laptop")
	if resp.StatusCode != 200 || !strings.Contains(page, "<svg") || !strings.Contains(page, "Client laptop") {
		t.Fatalf("client page %d:\n%s", resp.StatusCode, page)
	}
	if resp, _ := f.get(t, "/ui/client/nobody"); resp.StatusCode != 404 {
		t.Fatalf("unknown client: %d", resp.StatusCode)
	}
	// Logout without the token is refused and keeps the session.
	if resp, _ := f.post(t, "/ui/logout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d", resp.StatusCode)
	}
	if resp, _ := f.post(t, "/ui/logout", url.Values{"csrf": {strings.Repeat("0", 64)}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout with a wrong token: %d", resp.StatusCode)
	}
	_, page = f.get(t, "/ui/")
	resp, _ = f.post(t, "/ui/logout", url.Values{"csrf": {csrfOf(t, page)}})
	if resp.Request.URL.Path != "/ui/login" {
		t.Fatalf("logout ended at %s", resp.Request.URL)
	}
	if resp, _ := f.get(t, "/ui/"); resp.Request.URL.Path != "/ui/login" {
		t.Fatal("still logged in after logout")
	}
}

func TestSessionCookieFlags(t *testing.T) {
	for _, tls := range []bool{false, true} {
		f := newFixture(t, tls)
		_, page := f.get(t, "/ui/login")
		f.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, _ := f.post(t, "/ui/login", url.Values{"csrf": {csrfOf(t, page)}, "name": {"ops"}, "password": {"admin-secret-pw"}})
		var sess *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie && c.Value != "" {
				sess = c
			}
		}
		if resp.StatusCode != http.StatusSeeOther || sess == nil {
			t.Fatalf("tls %v: login %d, cookies %v", tls, resp.StatusCode, resp.Cookies())
		}
		if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure != tls || sess.Path != "/ui/" || len(sess.Value) != 64 {
			t.Fatalf("tls %v: session cookie %+v", tls, sess)
		}
	}
}

func TestLoginRefusals(t *testing.T) {
	f := newFixture(t, false)
	// No CSRF token, or one that does not match the cookie.
	f.get(t, "/ui/login")
	if resp, _ := f.post(t, "/ui/login", url.Values{"name": {"ops"}, "password": {"admin-secret-pw"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without token: %d", resp.StatusCode)
	}
	f.get(t, "/ui/login")
	if resp, _ := f.post(t, "/ui/login", url.Values{"csrf": {strings.Repeat("a", 64)}, "name": {"ops"}, "password": {"admin-secret-pw"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login with a forged token: %d", resp.StatusCode)
	}
	if len(f.lim.fails) != 0 {
		t.Fatalf("CSRF refusals counted as failed logins: %v", f.lim.fails)
	}
	// Wrong passwords, an unknown admin: 401 and counted; then the
	// limiter refuses even the right password.
	for _, c := range [][2]string{{"ops", "wrong-password"}, {"nobody", "admin-secret-pw"}, {"ops", ""}} {
		if resp, page := f.login(t, c[0], c[1]); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong name or password") {
			t.Fatalf("login %v: %d\n%s", c, resp.StatusCode, page)
		}
	}
	if resp, page := f.login(t, "ops", "admin-secret-pw"); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "Too many failed logins") {
		t.Fatalf("login after 3 failures: %d\n%s", resp.StatusCode, page)
	}
	if f.lim.fails["127.0.0.1"] != 3 {
		t.Fatalf("failures %v", f.lim.fails)
	}
}

func TestRemovedAdminLosesSession(t *testing.T) {
	f := newFixture(t, false)
	if resp, _ := f.login(t, "ops", "admin-secret-pw"); resp.Request.URL.Path != "/ui/" {
		t.Fatal("login failed")
	}
	if err := f.st.RemoveAdmin(context.Background(), "ops"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.get(t, "/ui/"); resp.Request.URL.Path != "/ui/login" {
		t.Fatal("a removed admin's session still works")
	}
}

func TestSessionExpires(t *testing.T) {
	s := sessions{ttl: time.Hour}
	t0 := time.Now()
	id, _ := s.create("ops", t0)
	if s.get(id, t0.Add(59*time.Minute)) == nil {
		t.Fatal("session gone within its TTL")
	}
	if s.get(id, t0.Add(59*time.Minute+61*time.Minute)) != nil {
		t.Fatal("idle session still valid")
	}
	// A session in use every half hour still ends MaxSessionAge after
	// its login.
	id, _ = s.create("ops", t0)
	at := t0
	for at.Add(30*time.Minute).Sub(t0) <= MaxSessionAge {
		at = at.Add(30 * time.Minute)
		if s.get(id, at) == nil {
			t.Fatalf("busy session gone %v after login", at.Sub(t0))
		}
	}
	if s.get(id, at.Add(30*time.Minute)) != nil {
		t.Fatalf("session still valid %v after login", at.Add(30*time.Minute).Sub(t0))
	}
}

// TestSessionsBounded: a flood of logins with one admin's password holds
// at most maxAdminSessions and leaves another admin's session alone; the
// whole store holds at most maxSessions.
func TestSessionsBounded(t *testing.T) {
	s := sessions{ttl: time.Hour}
	t0 := time.Now()
	other, _ := s.create("alice", t0)
	for i := range maxSessions + 5 {
		s.create("ops", t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	if s.get(other, t0.Add(time.Second)) == nil {
		t.Fatal("a flood of one admin's logins ended another admin's session")
	}
	if len(s.m) != maxAdminSessions+1 {
		t.Fatalf("%d sessions held, want %d of the flooding admin and 1", len(s.m), maxAdminSessions)
	}
	for i := range maxSessions + 5 {
		s.create(fmt.Sprintf("admin%d", i), t0.Add(2*time.Second))
	}
	if len(s.m) > maxSessions {
		t.Fatalf("%d sessions held, bound %d", len(s.m), maxSessions)
	}
}

// TestSessionTokenNotKept: the store is keyed by the token's digest, not
// the token (no byte-by-byte comparison of a secret; nothing in memory a
// cookie could carry).
func TestSessionTokenNotKept(t *testing.T) {
	s := sessions{ttl: time.Hour}
	id, _ := s.create("ops", time.Now())
	for k := range s.m {
		if strings.Contains(string(k[:]), id) || hex.EncodeToString(k[:]) == id {
			t.Fatal("the session store holds the token itself")
		}
	}
	if s.get(id, time.Now()) == nil || s.get(id[:63]+"x", time.Now()) != nil {
		t.Fatal("lookup by token does not work")
	}
}

// TestSessionEndsServerSide: a logged-out session's cookie, or the one a
// later login replaced, no longer works when sent again (the server
// forgets it; clearing the browser's cookie is not enough).
func TestSessionEndsServerSide(t *testing.T) {
	f := newFixture(t, false)
	cookie := func() string {
		for _, c := range f.c.Jar.Cookies(mustURL(t, f.base+"/ui/")) {
			if c.Name == sessionCookie {
				return c.Value
			}
		}
		return ""
	}
	replay := func(id string) string { // where a request with id ends
		req, _ := http.NewRequest(http.MethodGet, f.base+"/ui/", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Request.URL.Path
	}
	f.login(t, "ops", "admin-secret-pw")
	first := cookie()
	if first == "" || replay(first) != "/ui/" {
		t.Fatal("login gave no working session")
	}
	// A login form loaded before the first login, posted after it.
	tok := strings.Repeat("7", 64)
	form := url.Values{"csrf": {tok}, "name": {"ops"}, "password": {"admin-secret-pw"}}
	req, _ := http.NewRequest(http.MethodPost, f.base+"/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: loginCookie, Value: tok})
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: first})
	once := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := once.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	second := ""
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			second = c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || second == "" || second == first || replay(second) != "/ui/" {
		t.Fatalf("the second login: %d, no new session", resp.StatusCode)
	}
	if replay(first) != "/ui/login" {
		t.Fatal("the session a login replaced still works")
	}
	f.c.Jar.SetCookies(mustURL(t, f.base+"/ui/"), []*http.Cookie{{Name: sessionCookie, Value: second, Path: "/ui/"}})
	_, page := f.get(t, "/ui/")
	f.post(t, "/ui/logout", url.Values{"csrf": {csrfOf(t, page)}})
	if replay(second) != "/ui/login" {
		t.Fatal("a logged-out session's cookie still works")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestChartAndUnits(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	svg := string(chart([]reports.Sample{{At: t0, Stored: 0}, {At: t0.Add(time.Hour), Stored: 1 << 20}, {At: t0.Add(2 * time.Hour), Stored: 3 << 20}}))
	if !strings.HasPrefix(svg, "<svg") || strings.Count(svg, "<circle") != 3 || !strings.Contains(svg, "3.00 MiB") {
		t.Fatalf("chart:\n%s", svg)
	}
	if chart(nil) != "" {
		t.Fatal("chart of nothing")
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.50 KiB", 5 << 30: "5.00 GiB"} {
		if got := iec(n); got != want {
			t.Errorf("iec(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestOverviewShowsQueue: with a fleet limit, the overview shows the
// backups running (counted now) and the queue the server recorded.
func TestOverviewShowsQueue(t *testing.T) {
	f := newFixture(t, false)
	f.login(t, "ops", "admin-secret-pw")
	if _, page := f.get(t, "/ui/"); strings.Contains(page, `id="backups"`) {
		t.Fatalf("a queue line without a limit:\n%s", page)
	}
	ctx := context.Background()
	now := time.Now()
	if err := f.st.OpenSession(ctx, state.BackupSession{ID: strings.Repeat("a", 32), Client: "laptop", Repo: "laptop/main", Opened: now, LastHeartbeat: now, Expires: now.Add(time.Hour)}, now, 10); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetPacing(ctx, state.Pacing{Limit: 1, Running: 0, Queued: []string{"<b>x</b>", "laptop"}, Peak: 1, Started: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	_, page := f.get(t, "/ui/")
	if !strings.Contains(page, "Backups: 1 running of at most 1 (peak 1);\n2 queued: &lt;b&gt;x&lt;/b&gt;, laptop.") {
		t.Fatalf("overview:\n%s", page)
	}
}
