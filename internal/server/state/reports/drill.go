package reports

// Restore drills: the last drill record each repository's owner uploaded
// (`cairn drill`, an owner-signed trust.DrillRecord), and a history of
// what each client stored, for the web page's chart. Each client's
// drill-age limit is a column of its own (package state).

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// Drill is the last restore drill recorded for one repository.
type Drill struct {
	Client   string
	Repo     string
	Snapshot string
	At       time.Time // when the drill ran (the owner's clock, checked within minutes of the server's)
	Received time.Time
	Files    int64
	Bytes    int64
	Total    int64
	Result   string
	Problems int64
}

// RecordDrill keeps d as its repository's last drill.
func (s *Reports) RecordDrill(ctx context.Context, d Drill) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO drills (client, repo, snapshot, at, received, files, bytes, total, result, problems)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(client, repo) DO UPDATE SET snapshot = excluded.snapshot, at = excluded.at, received = excluded.received,
	files = excluded.files, bytes = excluded.bytes, total = excluded.total, result = excluded.result, problems = excluded.problems`,
		d.Client, d.Repo, d.Snapshot, schema.Nanos(d.At), schema.Nanos(d.Received), d.Files, d.Bytes, d.Total, d.Result, d.Problems)
	if err != nil {
		return fmt.Errorf("record the drill of %s: %w", d.Repo, err)
	}
	return nil
}

// Drills returns the last drill of every repository, by client and
// repository.
func (s *Reports) Drills(ctx context.Context) ([]Drill, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, repo, snapshot, at, received, files, bytes, total, result, problems FROM drills ORDER BY client, repo`)
	if err != nil {
		return nil, fmt.Errorf("read drills: %w", err)
	}
	defer rows.Close()
	var out []Drill
	for rows.Next() {
		var d Drill
		var at, rec int64
		if err := rows.Scan(&d.Client, &d.Repo, &d.Snapshot, &at, &rec, &d.Files, &d.Bytes, &d.Total, &d.Result, &d.Problems); err != nil {
			return nil, fmt.Errorf("read drills: %w", err)
		}
		d.At, d.Received = schema.FromNanos(at), schema.FromNanos(rec)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Sample is one point of a client's history.
type Sample struct {
	At        time.Time
	Last      time.Time // its last snapshot then
	Snapshots int64
	Stored    int64
}

// NoteHistory appends a sample of the client's history unless the last
// one says the same (same last snapshot, count and stored bytes).
func (s *Reports) NoteHistory(ctx context.Context, client string, p Sample) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO history (client, at, last, snapshots, stored)
SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (
	SELECT 1 FROM (SELECT last, snapshots, stored FROM history WHERE client = ? ORDER BY at DESC LIMIT 1)
	WHERE last = ? AND snapshots = ? AND stored = ?)`,
		client, schema.Nanos(p.At), schema.Nanos(p.Last), p.Snapshots, p.Stored, client, schema.Nanos(p.Last), p.Snapshots, p.Stored)
	if err != nil {
		return fmt.Errorf("note the history of %s: %w", client, err)
	}
	return nil
}

// History returns the client's last n samples, oldest first.
func (s *Reports) History(ctx context.Context, client string, n int) ([]Sample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, last, snapshots, stored FROM
(SELECT at, last, snapshots, stored FROM history WHERE client = ? ORDER BY at DESC LIMIT ?) ORDER BY at`, client, n)
	if err != nil {
		return nil, fmt.Errorf("read the history of %s: %w", client, err)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var p Sample
		var at, last int64
		if err := rows.Scan(&at, &last, &p.Snapshots, &p.Stored); err != nil {
			return nil, fmt.Errorf("read the history of %s: %w", client, err)
		}
		p.At, p.Last = schema.FromNanos(at), schema.FromNanos(last)
		out = append(out, p)
	}
	return out, rows.Err()
}
