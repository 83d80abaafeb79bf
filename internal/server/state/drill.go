package state

// Restore drills: the last drill record each repository's owner uploaded
// (`cairn drill`, an owner-signed trust.DrillRecord), each client's
// drill-age limit, and a history of what each client stored, for the web
// page's chart.

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrateDrills adds the drill-age limit to clients (0: the default), the
// last drill per repository and the history of stored bytes.
func migrateDrills(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
ALTER TABLE clients ADD COLUMN drill_after INTEGER NOT NULL DEFAULT 0;
CREATE TABLE drills (
	client   TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	repo     TEXT NOT NULL,            -- <client>/<repository…>
	snapshot TEXT NOT NULL,            -- hex
	at       INTEGER NOT NULL,         -- when it ran, the owner's clock
	received INTEGER NOT NULL,         -- when the server took the record, its clock
	files    INTEGER NOT NULL,
	bytes    INTEGER NOT NULL,
	total    INTEGER NOT NULL,
	result   TEXT NOT NULL,
	problems INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (client, repo)
);
CREATE TABLE history (
	client    TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	at        INTEGER NOT NULL,
	last      INTEGER NOT NULL,        -- clients.last_snapshot then
	snapshots INTEGER NOT NULL,
	stored    INTEGER NOT NULL
);
CREATE INDEX history_client ON history (client, at);`)
	return err
}

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
func (s *State) RecordDrill(ctx context.Context, d Drill) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO drills (client, repo, snapshot, at, received, files, bytes, total, result, problems)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(client, repo) DO UPDATE SET snapshot = excluded.snapshot, at = excluded.at, received = excluded.received,
	files = excluded.files, bytes = excluded.bytes, total = excluded.total, result = excluded.result, problems = excluded.problems`,
		d.Client, d.Repo, d.Snapshot, nanos(d.At), nanos(d.Received), d.Files, d.Bytes, d.Total, d.Result, d.Problems)
	if err != nil {
		return fmt.Errorf("record the drill of %s: %w", d.Repo, err)
	}
	return nil
}

// Drills returns the last drill of every repository, by client and
// repository.
func (s *State) Drills(ctx context.Context) ([]Drill, error) {
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
		d.At, d.Received = fromNanos(at), fromNanos(rec)
		out = append(out, d)
	}
	return out, rows.Err()
}

// DrillAfter returns every client's drill-age limit by name (0: the
// default).
func (s *State) DrillAfter(ctx context.Context) (map[string]time.Duration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, drill_after FROM clients`)
	if err != nil {
		return nil, fmt.Errorf("read drill-age limits: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var name string
		var d int64
		if err := rows.Scan(&name, &d); err != nil {
			return nil, fmt.Errorf("read drill-age limits: %w", err)
		}
		out[name] = time.Duration(d)
	}
	return out, rows.Err()
}

// SetDrillAfter sets a client's drill-age limit (0: the default);
// ErrNoClient if there is none.
func (s *State) SetDrillAfter(ctx context.Context, name string, d time.Duration) error {
	return s.update(ctx, name, `drill_after = ?`, int64(d))
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
func (s *State) NoteHistory(ctx context.Context, client string, p Sample) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO history (client, at, last, snapshots, stored)
SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (
	SELECT 1 FROM (SELECT last, snapshots, stored FROM history WHERE client = ? ORDER BY at DESC LIMIT 1)
	WHERE last = ? AND snapshots = ? AND stored = ?)`,
		client, nanos(p.At), nanos(p.Last), p.Snapshots, p.Stored, client, nanos(p.Last), p.Snapshots, p.Stored)
	if err != nil {
		return fmt.Errorf("note the history of %s: %w", client, err)
	}
	return nil
}

// History returns the client's last n samples, oldest first.
func (s *State) History(ctx context.Context, client string, n int) ([]Sample, error) {
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
		p.At, p.Last = fromNanos(at), fromNanos(last)
		out = append(out, p)
	}
	return out, rows.Err()
}
