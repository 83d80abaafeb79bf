package state

// Per-client retention policies and the maintenance records the server
// keeps about them, in the state database: the policy itself, whether a
// space budget is exceeded (then uploads get 507, R13), the repositories
// to maintain and the history of maintenance jobs.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/policy"
	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// SetPolicy sets (or replaces) a client's policy; a budget marked as
// exceeded is cleared, for the next maintenance run to judge again.
func (s *State) SetPolicy(ctx context.Context, client string, p policy.Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := s.Client(ctx, client); err != nil {
		return err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO policies (client, policy) VALUES (?, ?)
		ON CONFLICT (client) DO UPDATE SET policy = excluded.policy, over_budget = 0, budget_note = '', budget_since = 0`, client, string(raw))
	if err != nil {
		return fmt.Errorf("set policy of %s: %w", client, err)
	}
	return nil
}

// ClearPolicy removes a client's policy (and with it any exceeded
// budget); the server then leaves its repositories alone.
func (s *State) ClearPolicy(ctx context.Context, client string) error {
	if _, err := s.Client(ctx, client); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM policies WHERE client = ?`, client); err != nil {
		return fmt.Errorf("clear policy of %s: %w", client, err)
	}
	return nil
}

// PolicyOf returns a client's policy; ok is false if it has none.
func (s *State) PolicyOf(ctx context.Context, client string) (p policy.Policy, ok bool, err error) {
	var raw string
	err = s.db.QueryRowContext(ctx, `SELECT policy FROM policies WHERE client = ?`, client).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read policy of %s: %w", client, err)
	}
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return p, false, fmt.Errorf("policy of %s: %w", client, err)
	}
	return p, true, nil
}

// Policies returns every client's policy, by client.
func (s *State) Policies(ctx context.Context) (map[string]policy.Policy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, policy FROM policies ORDER BY client`)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer rows.Close()
	out := map[string]policy.Policy{}
	for rows.Next() {
		var name, raw string
		if err := rows.Scan(&name, &raw); err != nil {
			return nil, fmt.Errorf("list policies: %w", err)
		}
		var p policy.Policy
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, fmt.Errorf("policy of %s: %w", name, err)
		}
		out[name] = p
	}
	return out, rows.Err()
}

// Budget is whether a client's space budget is exceeded.
type Budget struct {
	Exceeded bool
	Note     string
	Since    time.Time
}

// SetBudget records whether the client's space budget is exceeded. Since
// keeps the time it was first found exceeded.
func (s *State) SetBudget(ctx context.Context, client string, exceeded bool, note string, now time.Time) error {
	var err error
	if exceeded {
		_, err = s.db.ExecContext(ctx, `UPDATE policies SET over_budget = 1, budget_note = ?,
			budget_since = CASE WHEN over_budget = 1 THEN budget_since ELSE ? END WHERE client = ?`, note, schema.Nanos(now), client)
	} else {
		_, err = s.db.ExecContext(ctx, `UPDATE policies SET over_budget = 0, budget_note = '', budget_since = 0 WHERE client = ?`, client)
	}
	if err != nil {
		return fmt.Errorf("record budget of %s: %w", client, err)
	}
	return nil
}

// BudgetOf returns whether the client's budget is exceeded.
func (s *State) BudgetOf(ctx context.Context, client string) (Budget, error) {
	var b Budget
	var ex int
	var since int64
	err := s.db.QueryRowContext(ctx, `SELECT over_budget, budget_note, budget_since FROM policies WHERE client = ?`, client).Scan(&ex, &b.Note, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return Budget{}, nil
	}
	if err != nil {
		return b, fmt.Errorf("read budget of %s: %w", client, err)
	}
	b.Exceeded, b.Since = ex != 0, schema.FromNanos(since)
	return b, nil
}

// NoteRepo records that a client has a cairn repository at repo (a path
// <client>/<repository…>), for maintenance to find.
func (s *State) NoteRepo(ctx context.Context, client, repo string) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO repos (client, repo) VALUES (?, ?)`, client, repo)
	if err != nil {
		return fmt.Errorf("note repository %s: %w", repo, err)
	}
	return nil
}

// Repos returns the client's repositories that maintenance knows.
func (s *State) Repos(ctx context.Context, client string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT repo FROM repos WHERE client = ? ORDER BY repo`, client)
	if err != nil {
		return nil, fmt.Errorf("list repositories of %s: %w", client, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Job is one maintenance run on one repository.
type Job struct {
	Client, Repo     string
	Start, End       time.Time
	SnapshotsRemoved int
	PacksDeleted     int
	BytesFreed       int64
	Error            string
}

// AddJob records a finished job.
func (s *State) AddJob(ctx context.Context, j Job) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (client, repo, start, finish, removed, packs, freed, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		j.Client, j.Repo, schema.Nanos(j.Start), schema.Nanos(j.End), j.SnapshotsRemoved, j.PacksDeleted, j.BytesFreed, j.Error)
	if err != nil {
		return fmt.Errorf("record job of %s: %w", j.Client, err)
	}
	return nil
}

// Jobs returns a client's last n jobs, newest first.
func (s *State) Jobs(ctx context.Context, client string, n int) ([]Job, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, repo, start, finish, removed, packs, freed, error FROM jobs
		WHERE client = ? ORDER BY start DESC, id DESC LIMIT ?`, client, n)
	if err != nil {
		return nil, fmt.Errorf("list jobs of %s: %w", client, err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		var start, end int64
		if err := rows.Scan(&j.Client, &j.Repo, &start, &end, &j.SnapshotsRemoved, &j.PacksDeleted, &j.BytesFreed, &j.Error); err != nil {
			return nil, err
		}
		j.Start, j.End = schema.FromNanos(start), schema.FromNanos(end)
		out = append(out, j)
	}
	return out, rows.Err()
}

// LastJobStart is when the client's last job started (zero if never).
func (s *State) LastJobStart(ctx context.Context, client string) (time.Time, error) {
	var start sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(start) FROM jobs WHERE client = ?`, client).Scan(&start); err != nil {
		return time.Time{}, fmt.Errorf("last job of %s: %w", client, err)
	}
	return schema.FromNanos(start.Int64), nil
}

// JobTotals sums all of a client's recorded jobs.
func (s *State) JobTotals(ctx context.Context, client string) (jobs, removed, packs int, freed int64, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(removed), 0), COALESCE(SUM(packs), 0), COALESCE(SUM(freed), 0) FROM jobs WHERE client = ?`,
		client).Scan(&jobs, &removed, &packs, &freed)
	if err != nil {
		err = fmt.Errorf("job totals of %s: %w", client, err)
	}
	return jobs, removed, packs, freed, err
}
