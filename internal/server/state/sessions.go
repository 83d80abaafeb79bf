package state

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
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

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

func scanSession(row schema.Scanner) (BackupSession, error) {
	var b BackupSession
	var opened, hb, exp, ended int64
	err := row.Scan(&b.ID, &b.Client, &b.Repo, &opened, &hb, &exp, &ended, &b.EndNote)
	b.Opened, b.LastHeartbeat, b.Expires, b.Ended = schema.FromNanos(opened), schema.FromNanos(hb), schema.FromNanos(exp), schema.FromNanos(ended)
	return b, err
}

// OpenSession records a new session opened at now, unless the client
// already has max live sessions (ErrTooManySessions). The count and the
// insert are one statement, so concurrent opens cannot pass the cap.
func (s *State) OpenSession(ctx context.Context, b BackupSession, now time.Time, max int) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id, client, repo, opened, heartbeat, expires)
		SELECT ?, ?, ?, ?, ?, ?
		WHERE (SELECT COUNT(*) FROM sessions WHERE client = ? AND ended = 0 AND expires > ?) < ?`,
		b.ID, b.Client, b.Repo, schema.Nanos(b.Opened), schema.Nanos(b.Opened), schema.Nanos(b.Expires), b.Client, schema.Nanos(now), max)
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
		schema.Nanos(now), schema.Nanos(now.Add(ttl)), id, client, repo, schema.Nanos(now))
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
		WHERE id = ? AND client = ? AND repo = ? AND ended = 0`, schema.Nanos(now), note, id, client, repo); err != nil {
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
		client, repo, schema.Nanos(t), schema.Nanos(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count backup sessions: %w", err)
	}
	return n, nil
}

// LiveSessions counts each client's live sessions at now.
func (s *State) LiveSessions(ctx context.Context, now time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, COUNT(*) FROM sessions WHERE ended = 0 AND expires > ? GROUP BY client`, schema.Nanos(now))
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
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE (ended != 0 AND ended < ?) OR (ended = 0 AND expires < ?)`, schema.Nanos(t), schema.Nanos(t))
	if err != nil {
		return 0, fmt.Errorf("purge backup sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Sessions returns every session of client's repo that the table still
// holds, oldest first.
func (s *State) Sessions(ctx context.Context, client, repo string) ([]BackupSession, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE client = ? AND repo = ? ORDER BY opened, id`, client, repo)
	if err != nil {
		return nil, fmt.Errorf("list backup sessions: %w", err)
	}
	defer rows.Close()
	var out []BackupSession
	for rows.Next() {
		b, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list backup sessions: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
