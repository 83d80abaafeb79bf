// Package sessions serves backup sessions (R12) over the REST API: a
// lease on the server's clock that a cairn backup opens, heartbeats and
// ends (the snapshot upload that names it ends it too). The sessions
// table and its rules are the state database's (state/sessions.go);
// scheduled maintenance sweeps only once the sessions open when its plan
// was made have ended or expired.
package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// Keep is how long ended and expired sessions stay in the table (to
// answer "ended" rather than "unknown", and for an operator looking into
// a backup) before they are purged.
const Keep = 7 * 24 * time.Hour

func newID() (string, error) {
	b := make([]byte, 16) // 128 bits
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// IsRequest reports whether a repository request is a session one.
func IsRequest(r *http.Request) bool { return r.URL.Query().Has(restapi.SessionParam) }

// Sessions answers the backup session requests of the server's clients.
type Sessions struct {
	State *state.State
	Now   func() time.Time
	TTL   time.Duration // a lease lasts this long after its last heartbeat
	Max   int           // open sessions a client may hold
	// Exists fails unless repo exists (a session opens on one that does).
	Exists func(ctx context.Context, repo string) error
	// MaxBackups, when above 0, paces the fleet: at most that many
	// sessions of all clients together are live, further opens queue
	// (pace.go). Hold and Grace tune the queue (DefaultHold,
	// DefaultGrace when 0).
	MaxBackups  int
	Hold, Grace time.Duration
	// Log receives the queue's own errors (none if nil).
	Log *slog.Logger

	paceOnce sync.Once
	pacer    *pacer
}

// Serve answers POST {repo}/?session=open|heartbeat|end[&id=ID] of
// client. Auth and the tenant check have passed: the path is the
// client's own.
func (s *Sessions) Serve(q *repohttp.Request, client string) {
	if q.R.Method != http.MethodPost {
		q.MethodNotAllowed("POST")
		return
	}
	ctx, repo := q.R.Context(), q.Path.RepoPath()
	qv := q.R.URL.Query()
	action, id := qv.Get(restapi.SessionParam), qv.Get(restapi.SessionIDParam)
	if action != restapi.SessionOpen && !restapi.ValidSessionID(id) {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "session %s needs id=<32 lowercase hex digits>", action)
		return
	}
	now := s.Now()
	var b state.BackupSession
	var err error
	switch action {
	case restapi.SessionOpen:
		if err := s.Exists(ctx, repo); err != nil {
			q.Fail("open session", err)
			return
		}
		if _, err := s.State.PurgeSessions(ctx, now.Add(-Keep)); err != nil {
			q.Log.Error("purge backup sessions", "err", err)
		}
		if s.MaxBackups > 0 {
			s.openPaced(q, client, repo)
			return
		}
		if id, err = newID(); err != nil {
			q.Fail("open session", err)
			return
		}
		b = state.BackupSession{ID: id, Client: client, Repo: repo, Opened: now, LastHeartbeat: now, Expires: now.Add(s.TTL)}
		err = s.State.OpenSession(ctx, b, now, s.Max)
		if errors.Is(err, state.ErrTooManySessions) {
			q.Refuse(http.StatusTooManyRequests, restapi.CodeTooManySessions,
				"client %s already has %d open backup sessions, the server's limit; end some (or let them expire, %v after their last heartbeat) and retry",
				client, s.Max, s.TTL)
			return
		}
		if err == nil {
			q.Log.Info("backup session opened", "client", client, "repo", repo, "session", id)
		}
	case restapi.SessionHeartbeat:
		b, err = s.State.HeartbeatSession(ctx, client, repo, id, now, s.TTL)
	case restapi.SessionEnd:
		b, err = s.State.EndSession(ctx, client, repo, id, now, "ended by client")
		if err == nil {
			q.Log.Info("backup session ended", "client", client, "repo", repo, "session", id, "note", b.EndNote)
			s.freed(ctx)
		}
	default:
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "unknown session action %q; use open, heartbeat or end", action)
		return
	}
	switch {
	case errors.Is(err, state.ErrNoSession):
		q.Refuse(http.StatusNotFound, restapi.CodeNotFound, "no backup session %s in repository %s", id, repo)
		return
	case errors.Is(err, state.ErrSessionEnded):
		q.Refuse(http.StatusGone, restapi.CodeSessionGone, "backup session %s ended at %s (%s); open a new one",
			id, b.Ended.UTC().Format(time.RFC3339), b.EndNote)
		return
	case errors.Is(err, state.ErrSessionExpired):
		q.Refuse(http.StatusGone, restapi.CodeSessionGone, "backup session %s expired at %s: no heartbeat for %v; open a new one",
			id, b.Expires.UTC().Format(time.RFC3339), s.TTL)
		return
	case err != nil:
		q.Fail("session", err)
		return
	}
	s.answer(q, b, now)
}

// answer writes the lease of b.
func (s *Sessions) answer(q *repohttp.Request, b state.BackupSession, now time.Time) {
	q.W.Header().Set("Content-Type", "application/json")
	q.W.WriteHeader(http.StatusOK)
	writeJSON(q.W, restapi.SessionLease{ID: b.ID, TTLSeconds: int64(s.TTL / time.Second), ServerTime: now.UTC()})
}

func writeJSON(w io.Writer, v any) {
	body, _ := json.Marshal(v)
	w.Write(body)
}

// freed hands a slot a session left to the head of the queue at once,
// when the fleet is paced.
func (s *Sessions) freed(ctx context.Context) {
	if s.MaxBackups > 0 {
		s.dispatch(ctx)
	}
}

// EndCommitted ends the session a snapshot upload names, once the
// snapshot is stored. The header is advisory: a snapshot is valid or not
// on its own (R11, R15), so an unknown ID (or one of another client or
// repository, which is never touched) does not refuse the commit; it is
// logged. A malformed ID is refused before anything is stored
// (Header).
func (s *Sessions) EndCommitted(q *repohttp.Request, client, id string) {
	if id == "" {
		return
	}
	ctx := context.WithoutCancel(q.R.Context())
	b, err := s.State.EndSession(ctx, client, q.Path.RepoPath(), id, s.Now(), "committed")
	switch {
	case errors.Is(err, state.ErrNoSession):
		q.Log.Warn("snapshot names an unknown backup session", "client", client, "repo", q.Path.RepoPath(), "session", id)
	case err != nil:
		q.Log.Error("end backup session", "session", id, "err", err)
	case b.EndNote == "committed":
		q.Log.Info("backup session ended", "client", client, "repo", q.Path.RepoPath(), "session", id, "note", b.EndNote)
		s.freed(ctx)
	}
}

// Header returns a snapshot upload's session ID ("" if none); ok is
// false after refusing a malformed one.
func Header(q *repohttp.Request) (id string, ok bool) {
	id = q.R.Header.Get(restapi.HeaderSession)
	if id != "" && !restapi.ValidSessionID(id) {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "%s must be 32 lowercase hex digits", restapi.HeaderSession)
		return "", false
	}
	return id, true
}
