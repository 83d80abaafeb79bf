package server

// Backup sessions (R12). A backup opens a session before it uploads
// anything and holds it as a lease: it heartbeats at least once per TTL,
// and the session ends when its snapshot is stored (the upload names it
// in restapi.HeaderSession), when the client ends it, or when no
// heartbeat arrives for a TTL (expired). Every time is the server's clock.
//
// Prune asks how many sessions that were open when a plan condemned its
// packs are still live (SessionsOpenAt) and sweeps the plan only once
// none is: a backup that started before the condemnation may have
// decided to dedup against a blob in those packs. Expiry bounds how long
// a vanished client holds a sweep back; a commit that arrives after its
// lease expired is validated like any other (R11: a reference to a
// deleted blob is refused).
//
// A client sees only its own sessions: every lookup is by ID, client and
// repository, so another tenant's session ID is "unknown" (404), exactly
// like a made-up one.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// Session defaults (Options.SessionTTL, Options.MaxSessions).
const (
	DefaultSessionTTL  = 10 * time.Minute
	DefaultMaxSessions = 64
	// sessionKeep is how long ended and expired sessions stay in the
	// table (to answer "ended" rather than "unknown", and for an operator
	// looking into a backup) before they are purged.
	sessionKeep = 7 * 24 * time.Hour
)

const sessionSchema = `
CREATE TABLE IF NOT EXISTS sessions (
	id        TEXT PRIMARY KEY,
	client    TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	repo      TEXT NOT NULL,
	opened    INTEGER NOT NULL,
	heartbeat INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	ended     INTEGER NOT NULL DEFAULT 0,
	end_note  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions (client, repo, ended, expires);
`

// BackupSession is one row of the sessions table.
type BackupSession struct {
	ID            string
	Client, Repo  string
	Opened        time.Time
	LastHeartbeat time.Time
	Expires       time.Time // last open or heartbeat + TTL
	Ended         time.Time // zero while not ended
	EndNote       string    // why it ended: "committed", "ended by client"
}

// Live reports whether the session holds its lease at now.
func (b BackupSession) Live(now time.Time) bool { return b.Ended.IsZero() && now.Before(b.Expires) }

// Errors of session state changes.
var (
	ErrNoSession       = errors.New("no such backup session")
	ErrSessionEnded    = errors.New("backup session has ended")
	ErrSessionExpired  = errors.New("backup session lease expired")
	ErrTooManySessions = errors.New("too many open backup sessions")
)

const sessionCols = `id, client, repo, opened, heartbeat, expires, ended, end_note`

func scanSession(row scanner) (BackupSession, error) {
	var b BackupSession
	var opened, hb, exp, ended int64
	err := row.Scan(&b.ID, &b.Client, &b.Repo, &opened, &hb, &exp, &ended, &b.EndNote)
	b.Opened, b.LastHeartbeat, b.Expires, b.Ended = fromNanos(opened), fromNanos(hb), fromNanos(exp), fromNanos(ended)
	return b, err
}

// OpenSession records a new session opened at now, unless the client
// already has max live sessions (ErrTooManySessions). The count and the
// insert are one statement, so concurrent opens cannot pass the cap.
func (s *State) OpenSession(ctx context.Context, b BackupSession, now time.Time, max int) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id, client, repo, opened, heartbeat, expires)
		SELECT ?, ?, ?, ?, ?, ?
		WHERE (SELECT COUNT(*) FROM sessions WHERE client = ? AND ended = 0 AND expires > ?) < ?`,
		b.ID, b.Client, b.Repo, nanos(b.Opened), nanos(b.Opened), nanos(b.Expires), b.Client, nanos(now), max)
	if err != nil {
		return fmt.Errorf("open backup session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrTooManySessions
	}
	return nil
}

// Session returns a session of client's repo, or ErrNoSession (also for
// a session of another client or repository).
func (s *State) Session(ctx context.Context, client, repo, id string) (BackupSession, error) {
	b, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ? AND client = ? AND repo = ?`, id, client, repo))
	if errors.Is(err, sql.ErrNoRows) {
		return BackupSession{}, ErrNoSession
	}
	if err != nil {
		return BackupSession{}, fmt.Errorf("read backup session: %w", err)
	}
	return b, nil
}

// HeartbeatSession extends a live session's lease to now + ttl.
func (s *State) HeartbeatSession(ctx context.Context, client, repo, id string, now time.Time, ttl time.Duration) (BackupSession, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET heartbeat = ?, expires = ?
		WHERE id = ? AND client = ? AND repo = ? AND ended = 0 AND expires > ?`,
		nanos(now), nanos(now.Add(ttl)), id, client, repo, nanos(now))
	if err != nil {
		return BackupSession{}, fmt.Errorf("heartbeat backup session: %w", err)
	}
	n, _ := res.RowsAffected()
	b, err := s.Session(ctx, client, repo, id)
	switch {
	case err != nil:
		return BackupSession{}, err
	case n == 1:
		return b, nil
	case !b.Ended.IsZero():
		return b, ErrSessionEnded
	default:
		return b, ErrSessionExpired
	}
}

// EndSession ends a session at now with a note; ending one that has
// already ended changes nothing (idempotent), and ending an expired one
// records when it was ended.
func (s *State) EndSession(ctx context.Context, client, repo, id string, now time.Time, note string) (BackupSession, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET ended = ?, end_note = ?
		WHERE id = ? AND client = ? AND repo = ? AND ended = 0`, nanos(now), note, id, client, repo); err != nil {
		return BackupSession{}, fmt.Errorf("end backup session: %w", err)
	}
	return s.Session(ctx, client, repo, id)
}

// SessionsOpenAt counts client's sessions on repo opened at or before t
// that are still live at now (neither ended nor expired).
func (s *State) SessionsOpenAt(ctx context.Context, client, repo string, t, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions
		WHERE client = ? AND repo = ? AND opened <= ? AND ended = 0 AND expires > ?`,
		client, repo, nanos(t), nanos(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count backup sessions: %w", err)
	}
	return n, nil
}

// LiveSessions counts each client's live sessions at now.
func (s *State) LiveSessions(ctx context.Context, now time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, COUNT(*) FROM sessions WHERE ended = 0 AND expires > ? GROUP BY client`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("count backup sessions: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var c string
		var n int
		if err := rows.Scan(&c, &n); err != nil {
			return nil, fmt.Errorf("count backup sessions: %w", err)
		}
		out[c] = n
	}
	return out, rows.Err()
}

// PurgeSessions deletes sessions that ended, or whose lease expired,
// before t.
func (s *State) PurgeSessions(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE (ended != 0 AND ended < ?) OR (ended = 0 AND expires < ?)`, nanos(t), nanos(t))
	if err != nil {
		return 0, fmt.Errorf("purge backup sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// sessionsOpenAt is prune.Options.SessionsOpenAt for one repository.
func (s *Server) sessionsOpenAt(client, repo string) func(ctx context.Context, t time.Time) (int, error) {
	return func(ctx context.Context, t time.Time) (int, error) {
		return s.data.State.SessionsOpenAt(ctx, client, repo, t, s.opts.Now())
	}
}

func newSessionID() (string, error) {
	b := make([]byte, 16) // 128 bits
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// validSessionID reports whether id has the form newSessionID makes: 32
// lowercase hex digits.
func validSessionID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isSessionRequest reports whether a repository request is a session one.
func isSessionRequest(q *request) bool { return q.r.URL.Query().Has(restapi.SessionParam) }

// serveSession answers POST {repo}/?session=open|heartbeat|end[&id=ID].
// Auth and the tenant check have passed: the path is the client's own.
func (s *Server) serveSession(q *request) {
	if q.r.Method != http.MethodPost {
		q.methodNotAllowed("POST")
		return
	}
	ctx := q.r.Context()
	client, repo := q.client.Name, q.path.RepoPath()
	qv := q.r.URL.Query()
	action, id := qv.Get(restapi.SessionParam), qv.Get(restapi.SessionIDParam)
	if action != restapi.SessionOpen && !validSessionID(id) {
		q.refuse(http.StatusBadRequest, restapi.CodeBadRequest, "session %s needs id=<32 lowercase hex digits>", action)
		return
	}
	now := s.opts.Now()
	var b BackupSession
	var err error
	switch action {
	case restapi.SessionOpen:
		if _, err := s.repos.get(ctx, repo); err != nil {
			q.fail("open session", err)
			return
		}
		if _, err := s.data.State.PurgeSessions(ctx, now.Add(-sessionKeep)); err != nil {
			q.log.Error("purge backup sessions", "err", err)
		}
		if id, err = newSessionID(); err != nil {
			q.fail("open session", err)
			return
		}
		b = BackupSession{ID: id, Client: client, Repo: repo, Opened: now, LastHeartbeat: now, Expires: now.Add(s.opts.SessionTTL)}
		err = s.data.State.OpenSession(ctx, b, now, s.opts.MaxSessions)
		if errors.Is(err, ErrTooManySessions) {
			q.refuse(http.StatusTooManyRequests, restapi.CodeTooManySessions,
				"client %s already has %d open backup sessions, the server's limit; end some (or let them expire, %v after their last heartbeat) and retry",
				client, s.opts.MaxSessions, s.opts.SessionTTL)
			return
		}
		if err == nil {
			q.log.Info("backup session opened", "client", client, "repo", repo, "session", id)
		}
	case restapi.SessionHeartbeat:
		b, err = s.data.State.HeartbeatSession(ctx, client, repo, id, now, s.opts.SessionTTL)
	case restapi.SessionEnd:
		b, err = s.data.State.EndSession(ctx, client, repo, id, now, "ended by client")
		if err == nil {
			q.log.Info("backup session ended", "client", client, "repo", repo, "session", id, "note", b.EndNote)
		}
	default:
		q.refuse(http.StatusBadRequest, restapi.CodeBadRequest, "unknown session action %q; use open, heartbeat or end", action)
		return
	}
	switch {
	case errors.Is(err, ErrNoSession):
		q.refuse(http.StatusNotFound, restapi.CodeNotFound, "no backup session %s in repository %s", id, repo)
		return
	case errors.Is(err, ErrSessionEnded):
		q.refuse(http.StatusGone, restapi.CodeSessionGone, "backup session %s ended at %s (%s); open a new one",
			id, b.Ended.UTC().Format(time.RFC3339), b.EndNote)
		return
	case errors.Is(err, ErrSessionExpired):
		q.refuse(http.StatusGone, restapi.CodeSessionGone, "backup session %s expired at %s: no heartbeat for %v; open a new one",
			id, b.Expires.UTC().Format(time.RFC3339), s.opts.SessionTTL)
		return
	case err != nil:
		q.fail("session", err)
		return
	}
	body, _ := json.Marshal(restapi.SessionLease{ID: b.ID, TTLSeconds: int64(s.opts.SessionTTL / time.Second), ServerTime: now.UTC()})
	q.w.Header().Set("Content-Type", "application/json")
	q.w.WriteHeader(http.StatusOK)
	q.w.Write(body)
}

// endCommittedSession ends the session a snapshot upload names, once the
// snapshot is stored. The header is advisory: a snapshot is valid or not
// on its own (R11, R15), so an unknown ID (or one of another client or
// repository, which is never touched) does not refuse the commit; it is
// logged. A malformed ID is refused before anything is stored
// (sessionHeader).
func (s *Server) endCommittedSession(q *request, id string) {
	if id == "" {
		return
	}
	ctx := context.WithoutCancel(q.r.Context())
	b, err := s.data.State.EndSession(ctx, q.client.Name, q.path.RepoPath(), id, s.opts.Now(), "committed")
	switch {
	case errors.Is(err, ErrNoSession):
		q.log.Warn("snapshot names an unknown backup session", "client", q.client.Name, "repo", q.path.RepoPath(), "session", id)
	case err != nil:
		q.log.Error("end backup session", "session", id, "err", err)
	case b.EndNote == "committed":
		q.log.Info("backup session ended", "client", q.client.Name, "repo", q.path.RepoPath(), "session", id, "note", b.EndNote)
	}
}

// sessionHeader returns a snapshot upload's session ID ("" if none); ok is
// false after refusing a malformed one.
func sessionHeader(q *request) (id string, ok bool) {
	id = q.r.Header.Get(restapi.HeaderSession)
	if id != "" && !validSessionID(id) {
		q.refuse(http.StatusBadRequest, restapi.CodeBadRequest, "%s must be 32 lowercase hex digits", restapi.HeaderSession)
		return "", false
	}
	return id, true
}
