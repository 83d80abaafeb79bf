package replicas

// Audit (internal/server/audit): when each stored file on each copy (the
// primary or a destination's replica) was first seen and last re-hashed,
// so that the rolling audit re-hashes the files whose turn it is, and
// each client's last audit result for `cairn server status`, /metrics and
// the monitor's alerts.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// AuditedFile is one stored file's audit record on one copy.
type AuditedFile struct {
	FirstSeen time.Time
	Audited   time.Time // zero: never re-hashed
}

// AuditFiles brings the audit records of repo on copy ("" the primary) in
// line with a listing of it: listed files not yet recorded are recorded as
// first seen at now, records of files no longer listed are dropped. It
// returns the records of the listed files.
func (s *Replicas) AuditFiles(ctx context.Context, copy, repo string, listed []backend.Handle, now time.Time) (map[backend.Handle]AuditedFile, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("audit records of %s: %w", repo, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT type, name, first_seen, audited FROM audit_files WHERE copy = ? AND repo = ?`, copy, repo)
	if err != nil {
		return nil, fmt.Errorf("audit records of %s: %w", repo, err)
	}
	have := map[backend.Handle]AuditedFile{}
	for rows.Next() {
		var t, n string
		var fs, a int64
		if err := rows.Scan(&t, &n, &fs, &a); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit records of %s: %w", repo, err)
		}
		have[backend.Handle{Type: backend.FileType(t), Name: n}] = AuditedFile{schema.FromNanos(fs), schema.FromNanos(a)}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit records of %s: %w", repo, err)
	}
	out := make(map[backend.Handle]AuditedFile, len(listed))
	for _, h := range listed {
		if r, ok := have[h]; ok {
			out[h] = r
			delete(have, h)
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_files (copy, repo, type, name, first_seen) VALUES (?, ?, ?, ?, ?)`,
			copy, repo, string(h.Type), h.Name, schema.Nanos(now)); err != nil {
			return nil, fmt.Errorf("audit records of %s: %w", repo, err)
		}
		out[h] = AuditedFile{FirstSeen: now}
	}
	for h := range have {
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_files WHERE copy = ? AND repo = ? AND type = ? AND name = ?`,
			copy, repo, string(h.Type), h.Name); err != nil {
			return nil, fmt.Errorf("audit records of %s: %w", repo, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("audit records of %s: %w", repo, err)
	}
	return out, nil
}

// MarkAudited records that files of repo on copy were re-hashed and found
// good (or healed) at t.
func (s *Replicas) MarkAudited(ctx context.Context, copy, repo string, files []backend.Handle, t time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record the audit of %s: %w", repo, err)
	}
	defer tx.Rollback()
	for _, h := range files {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_files (copy, repo, type, name, first_seen, audited) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (copy, repo, type, name) DO UPDATE SET audited = excluded.audited`,
			copy, repo, string(h.Type), h.Name, schema.Nanos(t), schema.Nanos(t)); err != nil {
			return fmt.Errorf("record the audit of %s: %w", repo, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record the audit of %s: %w", repo, err)
	}
	return nil
}

// Replicated returns the files of repo the ledger says were copied to
// dest and that dest's own retention has not dropped: the files the
// replica should hold.
func (s *Replicas) Replicated(ctx context.Context, dest, repo string) ([]backend.Handle, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT type, name FROM replication_ledger WHERE destination = ? AND repo = ? AND dropped = 0 ORDER BY type, name`, dest, repo)
	if err != nil {
		return nil, fmt.Errorf("read the ledger of %s on %s: %w", repo, dest, err)
	}
	defer rows.Close()
	var out []backend.Handle
	for rows.Next() {
		var t, n string
		if err := rows.Scan(&t, &n); err != nil {
			return nil, fmt.Errorf("read the ledger of %s on %s: %w", repo, dest, err)
		}
		out = append(out, backend.Handle{Type: backend.FileType(t), Name: n})
	}
	return out, rows.Err()
}

// AuditStatus is a client's last audit.
type AuditStatus struct {
	Client   string
	At       time.Time
	Files    int64 // stored files on every copy
	Covered  int64 // of them, re-hashed within the audit's cycle
	Checked  int64 // re-hashed by the last audit
	Bytes    int64 // read by the last audit
	Bad      int64 // bad or missing files the last audit found
	Healed   int64
	Unhealed int64
	Note     string
}

// Coverage is the share of the client's stored files re-hashed within the
// audit's cycle (1 when it stores none).
func (a AuditStatus) Coverage() float64 {
	if a.Files == 0 {
		return 1
	}
	return float64(a.Covered) / float64(a.Files)
}

// SetAuditStatus records a client's last audit.
func (s *Replicas) SetAuditStatus(ctx context.Context, a AuditStatus) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_status (client, at, files, covered, checked, bytes, bad, healed, unhealed, note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (client) DO UPDATE SET at = excluded.at, files = excluded.files, covered = excluded.covered, checked = excluded.checked,
			bytes = excluded.bytes, bad = excluded.bad, healed = excluded.healed, unhealed = excluded.unhealed, note = excluded.note`,
		a.Client, schema.Nanos(a.At), a.Files, a.Covered, a.Checked, a.Bytes, a.Bad, a.Healed, a.Unhealed, a.Note)
	if err != nil {
		return fmt.Errorf("record the audit of %s: %w", a.Client, err)
	}
	return nil
}

// AuditStatuses returns every audited client's last audit by name.
func (s *Replicas) AuditStatuses(ctx context.Context) (map[string]AuditStatus, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT client, at, files, covered, checked, bytes, bad, healed, unhealed, note FROM audit_status`)
	if err != nil {
		return nil, fmt.Errorf("read audit results: %w", err)
	}
	defer rows.Close()
	out := map[string]AuditStatus{}
	for rows.Next() {
		var a AuditStatus
		var at int64
		if err := rows.Scan(&a.Client, &at, &a.Files, &a.Covered, &a.Checked, &a.Bytes, &a.Bad, &a.Healed, &a.Unhealed, &a.Note); err != nil {
			return nil, fmt.Errorf("read audit results: %w", err)
		}
		a.At = schema.FromNanos(at)
		out[a.Client] = a
	}
	return out, rows.Err()
}

// LastAudit returns when any client was last audited (zero: never).
func (s *Replicas) LastAudit(ctx context.Context) (time.Time, error) {
	var at sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT max(at) FROM audit_status`).Scan(&at)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, fmt.Errorf("read audit results: %w", err)
	}
	return schema.FromNanos(at.Int64), nil
}
