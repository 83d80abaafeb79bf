package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/server/sessions"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// session sends a session request and returns status, error code and the
// decoded lease (zero unless 200).
func (ts *testServer) session(user, pw, repo, action, id string) (int, string, restapi.SessionLease) {
	ts.t.Helper()
	path := "/" + repo + "/?session=" + action
	if id != "" {
		path += "&id=" + id
	}
	code, ecode, body := ts.do(user, pw, http.MethodPost, path, nil)
	var l restapi.SessionLease
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			ts.t.Fatalf("%s: %v in %q", path, err, body)
		}
	}
	return code, ecode, l
}

func (ts *testServer) openSession(user, pw, repo string) string {
	ts.t.Helper()
	code, ecode, l := ts.session(user, pw, repo, restapi.SessionOpen, "")
	if code != http.StatusOK {
		ts.t.Fatalf("open session in %s: %d %s", repo, code, ecode)
	}
	return l.ID
}

// uploadWithSession stores body as a snapshot file with the session header.
func (ts *testServer) uploadWithSession(user, pw, repo string, body []byte, id string) (int, string) {
	ts.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/"+repo+"/snapshots/"+backend.NameOf(body), bytes.NewReader(body))
	req.SetBasicAuth(user, pw)
	req.Header.Set(restapi.HeaderSession, id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(restapi.HeaderError)
}

func (ts *testServer) create(user, pw, repo string) {
	ts.t.Helper()
	if code, _, _ := ts.do(user, pw, http.MethodPost, "/"+repo+"/?create=true", nil); code != http.StatusOK {
		ts.t.Fatalf("create %s: %d", repo, code)
	}
}

// TestSessionLifecycle: open answers a 128-bit ID, the TTL and the
// server's time; heartbeats extend the lease on the server's clock; a
// lease without a heartbeat for a TTL expires (410); end is idempotent.
func TestSessionLifecycle(t *testing.T) {
	ts := startTest(t, Options{SessionTTL: 10 * time.Minute})
	ts.create("bob", pwBob, "bob/m")
	code, _, l := ts.session("bob", pwBob, "bob/m", restapi.SessionOpen, "")
	if code != http.StatusOK || !restapi.ValidSessionID(l.ID) || l.TTLSeconds != 600 || !l.ServerTime.Equal(ts.nowFn()) {
		t.Fatalf("open: %d %+v", code, l)
	}
	if other := ts.openSession("bob", pwBob, "bob/m"); other == l.ID {
		t.Fatal("two sessions with one ID")
	}
	// Heartbeats 9 minutes apart keep it alive for 27 minutes.
	for range 3 {
		ts.advance(9 * time.Minute)
		if code, ecode, _ := ts.session("bob", pwBob, "bob/m", restapi.SessionHeartbeat, l.ID); code != http.StatusOK {
			t.Fatalf("heartbeat within the TTL: %d %s", code, ecode)
		}
	}
	b, err := ts.data.State.Session(context.Background(), "bob", "bob/m", l.ID)
	if err != nil || !b.Live(ts.nowFn()) || !b.LastHeartbeat.Equal(ts.nowFn()) || !b.Expires.Equal(ts.nowFn().Add(10*time.Minute)) {
		t.Fatalf("row after heartbeats: %+v %v", b, err)
	}
	ts.advance(10*time.Minute + time.Second)
	if code, ecode, _ := ts.session("bob", pwBob, "bob/m", restapi.SessionHeartbeat, l.ID); code != http.StatusGone || ecode != restapi.CodeSessionGone {
		t.Fatalf("heartbeat after the TTL: %d %s", code, ecode)
	}
	// Ending an expired session records it; ending twice is fine.
	for range 2 {
		if code, ecode, _ := ts.session("bob", pwBob, "bob/m", restapi.SessionEnd, l.ID); code != http.StatusOK {
			t.Fatalf("end: %d %s", code, ecode)
		}
	}
	if b, _ := ts.data.State.Session(context.Background(), "bob", "bob/m", l.ID); b.Ended.IsZero() || b.EndNote != "ended by client" {
		t.Fatalf("row after end: %+v", b)
	}
	id := ts.openSession("bob", pwBob, "bob/m")
	ts.session("bob", pwBob, "bob/m", restapi.SessionEnd, id)
	if code, ecode, _ := ts.session("bob", pwBob, "bob/m", restapi.SessionHeartbeat, id); code != http.StatusGone || ecode != restapi.CodeSessionGone {
		t.Fatalf("heartbeat after end: %d %s", code, ecode)
	}

	for _, c := range []struct {
		action, id string
		want       int
	}{
		{restapi.SessionHeartbeat, strings.Repeat("ab", 16), http.StatusNotFound}, // unknown
		{restapi.SessionEnd, strings.Repeat("ab", 16), http.StatusNotFound},
		{restapi.SessionHeartbeat, "", http.StatusBadRequest},
		{restapi.SessionHeartbeat, strings.Repeat("AB", 16), http.StatusBadRequest},
		{restapi.SessionHeartbeat, "x' OR 1=1 --", http.StatusBadRequest},
		{"renew", id, http.StatusBadRequest},
	} {
		if code, _, _ := ts.session("bob", pwBob, "bob/m", c.action, c.id); code != c.want {
			t.Errorf("%s %q: %d, want %d", c.action, c.id, code, c.want)
		}
	}
	if code, _, _ := ts.do("bob", pwBob, http.MethodGet, "/bob/m/?session=open", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET open: %d", code)
	}
	if code, _, _ := ts.session("bob", pwBob, "bob/missing", restapi.SessionOpen, ""); code != http.StatusNotFound {
		t.Errorf("open in a repository that does not exist: %d", code)
	}
	if code, _, _ := ts.session("", "", "bob/m", restapi.SessionOpen, ""); code != http.StatusUnauthorized {
		t.Errorf("open without credentials: %d", code)
	}
}

// TestSessionTenants: a client cannot touch another client's sessions,
// nor a session of one of its repositories through another.
func TestSessionTenants(t *testing.T) {
	ts := startTest(t, Options{})
	ts.create("bob", pwBob, "bob/m")
	ts.create("bob", pwBob, "bob/n")
	ts.create("alice", pwAlice, "alice/x")
	id := ts.openSession("bob", pwBob, "bob/m")
	for _, c := range []struct {
		user, pw, repo string
		want           int
	}{
		{"alice", pwAlice, "alice/x", http.StatusNotFound}, // as if unknown
		{"alice", pwAlice, "bob/m", http.StatusForbidden},  // tenant check
		{"bob", pwBob, "bob/n", http.StatusNotFound},       // another repository
	} {
		for _, action := range []string{restapi.SessionHeartbeat, restapi.SessionEnd} {
			if code, _, _ := ts.session(c.user, c.pw, c.repo, action, id); code != c.want {
				t.Errorf("%s %s on %s: %d, want %d", c.user, action, c.repo, code, c.want)
			}
		}
	}
	b, err := ts.data.State.Session(context.Background(), "bob", "bob/m", id)
	if err != nil || !b.Live(ts.nowFn()) {
		t.Fatalf("bob's session after the others' attempts: %+v %v", b, err)
	}
	// A snapshot upload naming someone else's session is stored (the
	// header is advisory) and leaves that session alone.
	ts.create("alice", pwAlice, "alice/r") // not a cairn repository: no validation
	if code, ecode := ts.uploadWithSession("alice", pwAlice, "alice/r", random(100), id); code != http.StatusOK {
		t.Fatalf("upload naming a foreign session: %d %s", code, ecode)
	}
	if b, _ := ts.data.State.Session(context.Background(), "bob", "bob/m", id); !b.Live(ts.nowFn()) {
		t.Fatalf("alice's upload ended bob's session: %+v", b)
	}
	if !strings.Contains(ts.logs.String(), "snapshot names an unknown backup session") {
		t.Error("the foreign session ID was not logged")
	}
	if code, ecode := ts.uploadWithSession("alice", pwAlice, "alice/r", random(100), "not-an-id"); code != http.StatusBadRequest || ecode != restapi.CodeBadRequest {
		t.Errorf("malformed session header: %d %s", code, ecode)
	}
	// bob's own snapshot upload ends his session.
	ts.create("bob", pwBob, "bob/r")
	id2 := ts.openSession("bob", pwBob, "bob/r")
	if code, ecode := ts.uploadWithSession("bob", pwBob, "bob/r", random(100), id2); code != http.StatusOK {
		t.Fatalf("upload: %d %s", code, ecode)
	}
	if b, _ := ts.data.State.Session(context.Background(), "bob", "bob/r", id2); b.Ended.IsZero() || b.EndNote != "committed" {
		t.Fatalf("session after its snapshot was stored: %+v", b)
	}
}

// TestSessionCap: a client has at most MaxSessions live sessions (429
// beyond); ended and expired ones free their place, other clients are
// not affected, and old rows are purged.
func TestSessionCap(t *testing.T) {
	ts := startTest(t, Options{MaxSessions: 3, SessionTTL: time.Minute})
	ts.create("bob", pwBob, "bob/m")
	ts.create("alice", pwAlice, "alice/x")
	var ids []string
	for range 3 {
		ids = append(ids, ts.openSession("bob", pwBob, "bob/m"))
	}
	if code, ecode, _ := ts.session("bob", pwBob, "bob/m", restapi.SessionOpen, ""); code != http.StatusTooManyRequests || ecode != restapi.CodeTooManySessions {
		t.Fatalf("fourth open: %d %s", code, ecode)
	}
	ts.openSession("alice", pwAlice, "alice/x")

	rec := httptest.NewRecorder()
	srv, _ := New(ts.data, Options{Now: ts.nowFn})
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{`cairn_server_client_open_sessions{client="bob"} 3`, `cairn_server_client_open_sessions{client="alice"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("no %s in /metrics", want)
		}
	}

	ts.session("bob", pwBob, "bob/m", restapi.SessionEnd, ids[0])
	ids = append(ids, ts.openSession("bob", pwBob, "bob/m"))
	ts.advance(2 * time.Minute) // all expire
	for range 3 {
		ts.openSession("bob", pwBob, "bob/m")
	}
	ts.advance(sessions.Keep + time.Hour)
	ts.openSession("bob", pwBob, "bob/m") // purges
	for _, id := range ids {
		if _, err := ts.data.State.Session(context.Background(), "bob", "bob/m", id); err != state.ErrNoSession {
			t.Errorf("session %s not purged: %v", id, err)
		}
	}
}

// TestMaintenanceWaitsForSessions (R12): the server's prune does not
// sweep a plan while a backup session of the repository that was open
// when the plan condemned its packs is live; it sweeps once the session
// ends, or once its lease expires. Grace is 0 so that the storage's own
// (real) clock does not matter: only the sessions hold the sweep back.
func TestMaintenanceWaitsForSessions(t *testing.T) {
	for _, how := range []string{"ended", "expired"} {
		t.Run(how, func(t *testing.T) {
			ticks := make(chan time.Time)
			ts := startTest(t, Options{MaintainTicks: ticks, SessionTTL: time.Hour})
			ctx := context.Background()
			repo, be := ts.cairnClient("p")
			commit(t, repo, "forgotten")
			ts.advance(2 * time.Hour)
			commit(t, repo, "kept")
			packs := count(t, be, backend.Data)
			id := ts.openSession("bob", pwBob, "bob/p") // a backup running through maintenance
			if err := ts.data.State.SetPolicy(ctx, "bob", policy.Policy{Keep: retention.Policy{Last: 1}, GroupBy: policy.DefaultGroupBy, Every: time.Hour}); err != nil {
				t.Fatal(err)
			}
			ticks <- ts.nowFn()
			if j := waitJobs(t, ts, "bob", 1)[0]; j.Error != "" || j.SnapshotsRemoved != 1 || j.PacksDeleted != 0 {
				t.Fatalf("swept at once while a session is live: %+v", j)
			}
			if !strings.Contains(ts.logs.String(), "sweep deferred for backup sessions") {
				t.Fatal("deferral not logged")
			}
			// Two hours later; the session still heartbeats.
			for range 3 {
				ts.advance(40 * time.Minute)
				if code, _, _ := ts.session("bob", pwBob, "bob/p", restapi.SessionHeartbeat, id); code != http.StatusOK {
					t.Fatalf("heartbeat: %d", code)
				}
			}
			ticks <- ts.nowFn()
			if j := waitJobs(t, ts, "bob", 2)[0]; j.Error != "" || j.PacksDeleted != 0 {
				t.Fatalf("swept while a session open at condemnation is live: %+v", j)
			}
			if n := count(t, be, backend.Data); n != packs {
				t.Fatalf("%d packs, want %d", n, packs)
			}
			if how == "ended" {
				ts.session("bob", pwBob, "bob/p", restapi.SessionEnd, id)
			}
			ts.advance(time.Hour + time.Second) // "expired": no heartbeat for a TTL
			ticks <- ts.nowFn()
			if j := waitJobs(t, ts, "bob", 3)[0]; j.Error != "" || j.PacksDeleted != 1 {
				t.Fatalf("not swept after the session %s: %+v", how, j)
			}
			if n := count(t, be, backend.Data); n != packs-1 {
				t.Fatalf("%d packs, want %d", n, packs-1)
			}
		})
	}
}

// cairnClientLogged is cairnClient with the client's log captured.
func (ts *testServer) cairnClientLogged(name string) (*repository.Repository, *logBuffer) {
	t := ts.t
	t.Helper()
	ctx := context.Background()
	u, _ := url.Parse(ts.url + "/bob/" + name + "/")
	u.User = url.UserPassword("bob", pwBob)
	pub, err := fetchPublic(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := rest.Create(ctx, rest.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	be := location.Decorate(rb, location.Options{}) // as `cairn` opens a rest: repository
	logs := &logBuffer{}
	repo, _, err := repository.InitServerMode(ctx, be, []byte("pw"), pub, repository.Options{KDF: &fastKDF, CacheDir: t.TempDir(), Now: ts.nowFn,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return repo, logs
}

// liveSessions returns bob's sessions on repo that hold their lease.
func (ts *testServer) liveSessions(repo string) []state.BackupSession {
	ts.t.Helper()
	all, err := ts.data.State.Sessions(context.Background(), "bob", repo)
	if err != nil {
		ts.t.Fatal(err)
	}
	var out []state.BackupSession
	for _, b := range all {
		if b.Live(ts.nowFn()) {
			out = append(out, b)
		}
	}
	return out
}

// TestBackupHoldsSession: a cairn client backing up to a rest: repository
// (through the retry decorator, as `cairn backup` does) holds a session
// while it uploads, heartbeats it, and the commit ends it; an aborted
// backup ends its session; a backup whose lease expired still commits,
// with a warning, and the server still validates it.
func TestBackupHoldsSession(t *testing.T) {
	ts := startTest(t, Options{SessionTTL: 3 * time.Second})
	ctx := context.Background()
	repo, logs := ts.cairnClientLogged("e")

	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	live := ts.liveSessions("bob/e")
	if len(live) != 1 {
		t.Fatalf("%d live sessions while the backup runs, want 1", len(live))
	}
	id := live[0].ID
	id1, _, err := s.SaveBlob(ctx, blob.Data, []byte("first file"))
	if err != nil {
		t.Fatal(err)
	}
	ts.advance(2 * time.Second) // within the TTL; the client's heartbeat (every second) extends it
	waitFor(t, "a heartbeat", func() bool {
		b, _ := ts.data.State.Session(ctx, "bob", "bob/e", id)
		return b.LastHeartbeat.Equal(ts.nowFn())
	})
	if _, err := s.Commit(ctx, repository.CommitInput{Root: id1, Refs: []snapshot.Ref{{Type: blob.Data, ID: id1}}, Time: repo.Now()}); err != nil {
		t.Fatal(err)
	}
	if b, _ := ts.data.State.Session(ctx, "bob", "bob/e", id); b.Ended.IsZero() || b.EndNote != "committed" {
		t.Fatalf("session after the commit: %+v", b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := ts.data.State.Session(ctx, "bob", "bob/e", id); b.EndNote != "committed" {
		t.Fatalf("Close after the commit ended the session again: %+v", b)
	}

	// An aborted backup ends its session.
	s, err = repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	live = ts.liveSessions("bob/e")
	if len(live) != 1 {
		t.Fatalf("%d live sessions, want 1", len(live))
	}
	s.Abort()
	if b, _ := ts.data.State.Session(ctx, "bob", "bob/e", live[0].ID); b.Ended.IsZero() || b.EndNote != "ended by client" {
		t.Fatalf("session after Abort: %+v", b)
	}

	// A lease that expires (the client was away longer than the TTL)
	// does not fail the backup; its commit is validated as any other.
	ts.advance(2 * time.Hour) // MinInterval
	s, err = repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id2, _, err := s.SaveBlob(ctx, blob.Data, []byte("second file"))
	if err != nil {
		t.Fatal(err)
	}
	ts.advance(time.Minute)
	waitFor(t, "the expiry warning", func() bool { return strings.Contains(logs.String(), "backup session lease expired") })
	snap, err := s.Commit(ctx, repository.CommitInput{Root: id2, Refs: []snapshot.Ref{{Type: blob.Data, ID: id2}, {Type: blob.Data, ID: id1}}, Time: repo.Now()})
	if err != nil {
		t.Fatalf("commit after the lease expired: %v", err)
	}
	s.Close()
	if snap.File.Statement.Seq != 2 || !strings.Contains(logs.String(), "committing after the backup session's lease expired") {
		t.Fatalf("seq %d; log:\n%s", snap.File.Statement.Seq, logs)
	}
	if n := len(ts.liveSessions("bob/e")); n != 0 {
		t.Fatalf("%d live sessions after the backups", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s within 5 s", what)
}
