package state

// Fleet pacing and "run now" (docs/server.md "Fleet pacing", docs/agent.md
// "Run now"). The running server keeps its backup queue in memory
// (package sessions) and records a summary of it here, so `cairn server
// status`, which reads this database and not the running process, shows
// it. A run-now request is one row per client: `cairn server client
// run-now` sets it, a daemon agent's poll reads it, and the agent's next
// run report clears it.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// RequestRunNow records that an operator asked client's agent to run at
// now; a request already pending keeps its time. ErrNoClient if there is
// no such client.
func (s *State) RequestRunNow(ctx context.Context, client string, now time.Time) error {
	if _, err := s.Client(ctx, client); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO run_now (client, requested) VALUES (?, ?) ON CONFLICT(client) DO NOTHING`, client, schema.Nanos(now))
	if err != nil {
		return fmt.Errorf("record a run-now request: %w", err)
	}
	return nil
}

// RunNow returns when a run of client's agent was asked for, zero if none
// is pending.
func (s *State) RunNow(ctx context.Context, client string) (time.Time, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT requested FROM run_now WHERE client = ?`, client).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read a run-now request: %w", err)
	}
	return schema.FromNanos(n), nil
}

// ClearRunNow drops client's run-now request if it was made at or before
// t (a request made after the run that reports started stays pending).
func (s *State) ClearRunNow(ctx context.Context, client string, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM run_now WHERE client = ? AND requested <= ?`, client, schema.Nanos(t)); err != nil {
		return fmt.Errorf("clear a run-now request: %w", err)
	}
	return nil
}

// Pacing is the running server's backup queue as it last recorded it.
type Pacing struct {
	Limit   int       `json:"limit"`   // concurrent backup sessions allowed; 0: unlimited
	Running int       `json:"running"` // sessions holding a lease when recorded
	Queued  []string  `json:"queued"`  // clients waiting, first to start first
	Peak    int       `json:"peak"`    // most sessions running at once since the server started
	PeakAt  time.Time `json:"peak_at,omitzero"`
	Started time.Time `json:"started"` // when the server started
	Updated time.Time `json:"updated"`
}

const metaPacing = "pacing"

// SetPacing records the queue's summary.
func (s *State) SetPacing(ctx context.Context, p Pacing) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return schema.SetMeta(ctx, s.db, metaPacing, string(b))
}

// Pacing returns the last recorded summary; ok is false if no server
// with a fleet limit ever recorded one.
func (s *State) Pacing(ctx context.Context) (p Pacing, ok bool, err error) {
	v, err := schema.Meta(ctx, s.db, metaPacing)
	if err != nil || v == "" {
		return p, false, err
	}
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return p, false, fmt.Errorf("read the backup queue from the state database: %w", err)
	}
	return p, true, nil
}
