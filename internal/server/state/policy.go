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
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/retention"
)

// Policy is a client's retention policy, applied by the server to each of
// the client's cairn repositories every Every.
type Policy struct {
	Keep       retention.Policy `json:"keep"`
	Within     time.Duration    `json:"within,omitempty"` // Keep.Within, which Policy's JSON leaves out
	GroupBy    string           `json:"group_by"`
	Importance int              `json:"importance,omitempty"`
	// MaxSize makes the policy space-driven: each repository of the client
	// is kept within MaxSize bytes by deleting its least important
	// snapshots, never a floor snapshot.
	MaxSize int64         `json:"max_size,omitempty"`
	Grace   time.Duration `json:"grace"`
	Every   time.Duration `json:"every"`
}

// Policy defaults.
const (
	DefaultEvery   = time.Hour
	DefaultGroupBy = "host,paths"
)

// DefaultPolicy is a policy with no rules and the default schedule.
func DefaultPolicy() Policy {
	return Policy{GroupBy: DefaultGroupBy, Grace: prune.DefaultGrace, Every: DefaultEvery}
}

// Validate checks a policy; errors name the flag of `cairn server client
// policy` that sets the wrong value.
func (p Policy) Validate() error {
	for _, f := range []struct {
		flag string
		n    int
	}{{"--keep-last", p.Keep.Last}, {"--keep-hourly", p.Keep.Hourly}, {"--keep-daily", p.Keep.Daily},
		{"--keep-weekly", p.Keep.Weekly}, {"--keep-monthly", p.Keep.Monthly}, {"--keep-yearly", p.Keep.Yearly},
		{"--importance", p.Importance}} {
		if f.n < 0 {
			return fmt.Errorf("%s %d: must not be negative", f.flag, f.n)
		}
	}
	switch {
	case p.Within < 0:
		return fmt.Errorf("--keep-within %v: must not be negative", p.Within)
	case p.MaxSize < 0:
		return fmt.Errorf("--max-size %d: must not be negative", p.MaxSize)
	case p.Grace < 0:
		return fmt.Errorf("--grace %v: must not be negative", p.Grace)
	case p.Every < time.Second:
		return fmt.Errorf("--every %v: must be at least 1s", p.Every)
	}
	if _, err := retention.ParseGroupBy(p.GroupBy); err != nil {
		return err
	}
	rules := !p.keep().Empty()
	n := 0
	for _, b := range []bool{rules, p.Importance > 0, p.MaxSize > 0} {
		if b {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("no rule: give --keep-* rules, --importance N or --max-size SIZE (a policy without rules would remove every snapshot)")
	case n > 1:
		return errors.New("--keep-* rules, --importance and --max-size are alternatives: give one kind (--max-size already keeps the most important snapshots and the floors)")
	}
	return nil
}

func (p Policy) keep() retention.Policy {
	k := p.Keep
	k.Within = p.Within
	return k
}

// RepoPolicy is the policy in retention's terms.
func (p Policy) RepoPolicy() (forget.Policy, error) {
	gb, err := retention.ParseGroupBy(p.GroupBy)
	if err != nil {
		return forget.Policy{}, err
	}
	return forget.Policy{Keep: p.keep(), GroupBy: gb, Importance: p.Importance, MaxSize: uint64(p.MaxSize)}, nil
}

// String renders the policy in its flags.
func (p Policy) String() string {
	var parts []string
	if !p.keep().Empty() {
		parts = append(parts, p.keep().String())
	}
	if p.Importance > 0 {
		parts = append(parts, fmt.Sprintf("importance %d", p.Importance))
	}
	if p.MaxSize > 0 {
		parts = append(parts, fmt.Sprintf("max size %d bytes", p.MaxSize))
	}
	parts = append(parts, "group by "+p.GroupBy, "grace "+p.Grace.String(), "every "+p.Every.String())
	return strings.Join(parts, "; ")
}

// SetPolicy sets (or replaces) a client's policy; a budget marked as
// exceeded is cleared, for the next maintenance run to judge again.
func (s *State) SetPolicy(ctx context.Context, client string, p Policy) error {
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
func (s *State) PolicyOf(ctx context.Context, client string) (p Policy, ok bool, err error) {
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
func (s *State) Policies(ctx context.Context) (map[string]Policy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, policy FROM policies ORDER BY client`)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer rows.Close()
	out := map[string]Policy{}
	for rows.Next() {
		var name, raw string
		if err := rows.Scan(&name, &raw); err != nil {
			return nil, fmt.Errorf("list policies: %w", err)
		}
		var p Policy
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
			budget_since = CASE WHEN over_budget = 1 THEN budget_since ELSE ? END WHERE client = ?`, note, nanos(now), client)
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
	b.Exceeded, b.Since = ex != 0, fromNanos(since)
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
		j.Client, j.Repo, nanos(j.Start), nanos(j.End), j.SnapshotsRemoved, j.PacksDeleted, j.BytesFreed, j.Error)
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
		j.Start, j.End = fromNanos(start), fromNanos(end)
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
	return fromNanos(start.Int64), nil
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
