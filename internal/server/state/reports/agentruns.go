package reports

// Agent run reports (internal/server/agentreport): the last runs each
// client's agent reported, for monitoring.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// AgentRunsKept is how many reported attempts are kept per client.
const AgentRunsKept = 50

// AgentRun is one attempt of an agent run as its agent reported it.
type AgentRun struct {
	Client     string
	RunID      string
	Attempt    int
	Start, End time.Time
	Received   time.Time // the server's clock
	Result     string    // restapi.AgentOK, AgentFailed or AgentGaveUp
	BytesAdded int64
	Duration   time.Duration
	Error      string
}

// RecordAgentRun keeps a reported attempt, and drops the client's oldest
// beyond AgentRunsKept.
func (s *Reports) RecordAgentRun(ctx context.Context, r AgentRun) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record agent run: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO agent_runs (client, run_id, attempt, start, finish, received, result, bytes, duration, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Client, r.RunID, r.Attempt, schema.Nanos(r.Start), schema.Nanos(r.End), schema.Nanos(r.Received), r.Result, r.BytesAdded, int64(r.Duration), r.Error); err != nil {
		return fmt.Errorf("record agent run of %s: %w", r.Client, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM agent_runs WHERE client = ? AND id NOT IN
(SELECT id FROM agent_runs WHERE client = ? ORDER BY id DESC LIMIT ?)`, r.Client, r.Client, AgentRunsKept); err != nil {
		return fmt.Errorf("record agent run of %s: %w", r.Client, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record agent run of %s: %w", r.Client, err)
	}
	return nil
}

// AgentRuns returns the client's kept attempts, newest first.
func (s *Reports) AgentRuns(ctx context.Context, client string) ([]AgentRun, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, run_id, attempt, start, finish, received, result, bytes, duration, error
FROM agent_runs WHERE client = ? ORDER BY id DESC`, client)
	if err != nil {
		return nil, fmt.Errorf("read agent runs of %s: %w", client, err)
	}
	defer rows.Close()
	var out []AgentRun
	for rows.Next() {
		r, err := scanAgentRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// LastAgentRuns returns each client's last reported attempt (the one
// received last).
func (s *Reports) LastAgentRuns(ctx context.Context) (map[string]AgentRun, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, run_id, attempt, start, finish, received, result, bytes, duration, error
FROM agent_runs WHERE id IN (SELECT max(id) FROM agent_runs GROUP BY client)`)
	if err != nil {
		return nil, fmt.Errorf("read agent runs: %w", err)
	}
	defer rows.Close()
	out := map[string]AgentRun{}
	for rows.Next() {
		r, err := scanAgentRun(rows)
		if err != nil {
			return nil, err
		}
		out[r.Client] = r
	}
	return out, rows.Err()
}

func scanAgentRun(rows *sql.Rows) (AgentRun, error) {
	var r AgentRun
	var start, end, recv, dur int64
	if err := rows.Scan(&r.Client, &r.RunID, &r.Attempt, &start, &end, &recv, &r.Result, &r.BytesAdded, &dur, &r.Error); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return r, err
		}
		return r, fmt.Errorf("read agent run: %w", err)
	}
	r.Start, r.End, r.Received, r.Duration = schema.FromNanos(start), schema.FromNanos(end), schema.FromNanos(recv), time.Duration(dur)
	return r, nil
}
