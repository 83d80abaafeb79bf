package replicas

// Replication (internal/server/replication): the destinations an operator
// configured, the repositories the server has seen commits to, each
// replica's status, and the ledger of what was copied where.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// Errors of replication destinations.
var (
	ErrNoDestination     = errors.New("no such destination")
	ErrDestinationExists = errors.New("destination already exists")
)

// Destination is a place the server copies its clients' repositories to.
type Destination struct {
	Name     string
	Location string // a directory, s3:… or rest:…, without secrets
	// CredentialsFile holds the secrets the location needs (read at each
	// connection); "" for none.
	CredentialsFile string
	// Clients are the clients replicated; empty means every client.
	Clients []string
	// Bandwidth caps the bytes a second read for this destination across
	// its copies; 0 is unlimited.
	Bandwidth int64
	// Concurrency is the number of files copied at once.
	Concurrency int
	// ReconcileEvery is how often every repository is compared with its
	// replica, besides the copy each commit triggers.
	ReconcileEvery time.Duration
	Created        time.Time
	// Retention, when set, is the replicas' own retention policy, which
	// the server applies to each cairn replica (internal/server/maintain)
	// and which decides what is copied: the snapshots it keeps and what
	// they need. nil keeps every snapshot.
	Retention *policy.Policy
	// ServerFingerprint is, for a rest: destination, the fingerprint its
	// far cairn server must present (`cairn server fingerprint` there);
	// every connection checks it.
	ServerFingerprint string
}

// Covers reports whether the destination replicates client.
func (d Destination) Covers(client string) bool {
	if len(d.Clients) == 0 {
		return true
	}
	for _, c := range d.Clients {
		if c == client {
			return true
		}
	}
	return false
}

// AddDestination records a new destination; ErrDestinationExists if the
// name is taken.
func (s *Replicas) AddDestination(ctx context.Context, d Destination) error {
	if _, err := s.Destination(ctx, d.Name); err == nil {
		return fmt.Errorf("add destination %s: %w", d.Name, ErrDestinationExists)
	}
	ret, err := retentionText(d.Retention)
	if err != nil {
		return fmt.Errorf("add destination %s: %w", d.Name, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO replication_destinations (name, location, credentials, clients, bandwidth, concurrency, reconcile_every, created, retention, server_fingerprint)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Name, d.Location, d.CredentialsFile, strings.Join(d.Clients, ","), d.Bandwidth, d.Concurrency, int64(d.ReconcileEvery), schema.Nanos(d.Created), ret, d.ServerFingerprint)
	if err != nil {
		return fmt.Errorf("add destination %s: %w", d.Name, err)
	}
	return nil
}

const destinationCols = `name, location, credentials, clients, bandwidth, concurrency, reconcile_every, created, retention, server_fingerprint`

func scanDestination(row schema.Scanner) (Destination, error) {
	var d Destination
	var clients, ret string
	var every, created int64
	err := row.Scan(&d.Name, &d.Location, &d.CredentialsFile, &clients, &d.Bandwidth, &d.Concurrency, &every, &created, &ret, &d.ServerFingerprint)
	if clients != "" {
		d.Clients = strings.Split(clients, ",")
	}
	d.ReconcileEvery, d.Created = time.Duration(every), schema.FromNanos(created)
	if err == nil && ret != "" {
		d.Retention = new(policy.Policy)
		if jerr := json.Unmarshal([]byte(ret), d.Retention); jerr != nil {
			err = fmt.Errorf("destination %s: stored retention policy: %w", d.Name, jerr)
		}
	}
	return d, err
}

func retentionText(p *policy.Policy) (string, error) {
	if p == nil {
		return "", nil
	}
	if err := p.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(p)
	return string(b), err
}

// SetDestinationRetention replaces a destination's retention policy (nil:
// keep every snapshot from now on; what its retention removed stays
// removed unless the primary still has it).
func (s *Replicas) SetDestinationRetention(ctx context.Context, name string, p *policy.Policy) error {
	ret, err := retentionText(p)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE replication_destinations SET retention = ? WHERE name = ?`, ret, name)
	if err != nil {
		return fmt.Errorf("set the retention of destination %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("destination %q: %w", name, ErrNoDestination)
	}
	return nil
}

// Destination returns the named destination, or ErrNoDestination.
func (s *Replicas) Destination(ctx context.Context, name string) (Destination, error) {
	d, err := scanDestination(s.db.QueryRowContext(ctx, `SELECT `+destinationCols+` FROM replication_destinations WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Destination{}, fmt.Errorf("destination %q: %w", name, ErrNoDestination)
	}
	if err != nil {
		return Destination{}, fmt.Errorf("read destination %s: %w", name, err)
	}
	return d, nil
}

// Destinations returns every destination, sorted by name.
func (s *Replicas) Destinations(ctx context.Context) ([]Destination, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+destinationCols+` FROM replication_destinations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list destinations: %w", err)
	}
	defer rows.Close()
	var out []Destination
	for rows.Next() {
		d, err := scanDestination(rows)
		if err != nil {
			return nil, fmt.Errorf("list destinations: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RemoveDestination forgets a destination, its status and its ledger. The
// replicas themselves are left where they are.
func (s *Replicas) RemoveDestination(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM replication_destinations WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove destination %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("destination %q: %w", name, ErrNoDestination)
	}
	return nil
}

// ReplicaRepo is a repository the server stores, as replication knows it.
type ReplicaRepo struct {
	Repo   string // <client>/<repository…>
	Client string
	// LastCommit is the snapshot file last stored on the primary, at
	// CommitTime (server clock).
	LastCommit string
	CommitTime time.Time
}

// NoteCommit records that the primary stored snapshot file snapshot in
// repo at t, and marks every replica of it that a destination of the
// client lacks as pending since t (unless it already was).
func (s *Replicas) NoteCommit(ctx context.Context, client, repo, snapshot string, t time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("note commit to %s: %w", repo, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO replication_repos (repo, client, last_commit, commit_time) VALUES (?, ?, ?, ?)
		ON CONFLICT (repo) DO UPDATE SET last_commit = excluded.last_commit, commit_time = excluded.commit_time`,
		repo, client, snapshot, schema.Nanos(t)); err != nil {
		return fmt.Errorf("note commit to %s: %w", repo, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO replication_status (destination, repo, pending_since)
		SELECT name, ?, ? FROM replication_destinations WHERE clients = '' OR instr(',' || clients || ',', ',' || ? || ',') > 0
		ON CONFLICT (destination, repo) DO UPDATE SET pending_since = excluded.pending_since WHERE pending_since = 0`,
		repo, schema.Nanos(t), client); err != nil {
		return fmt.Errorf("note commit to %s: %w", repo, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("note commit to %s: %w", repo, err)
	}
	return nil
}

// ReplicaRepos returns every repository replication knows, sorted.
func (s *Replicas) ReplicaRepos(ctx context.Context) ([]ReplicaRepo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT repo, client, last_commit, commit_time FROM replication_repos ORDER BY repo`)
	if err != nil {
		return nil, fmt.Errorf("list replicated repositories: %w", err)
	}
	defer rows.Close()
	var out []ReplicaRepo
	for rows.Next() {
		var r ReplicaRepo
		var t int64
		if err := rows.Scan(&r.Repo, &r.Client, &r.LastCommit, &t); err != nil {
			return nil, fmt.Errorf("list replicated repositories: %w", err)
		}
		r.CommitTime = schema.FromNanos(t)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReplicaStatus is the state of one repository's replica on one
// destination.
type ReplicaStatus struct {
	Destination string
	Repo        string // <client>/<repository…>
	// Snapshot is the newest commit known to be on the replica (its file
	// name), committed on the primary at SnapshotTime.
	Snapshot     string
	SnapshotTime time.Time
	ReplicatedAt time.Time // end of the last pass without error
	// PendingSince is the commit time of the oldest snapshot not yet on
	// the replica; zero when it is up to date.
	PendingSince time.Time
	LagBytes     int64 // what the pass under way has still to copy, or the last one could not
	LastError    string
	ErrorAt      time.Time
	Failures     int // passes failed in a row
	// Retention is the destination's last retention run on the replica
	// (zero At: none yet).
	Retention RetentionRun
}

// RetentionRun is what one run of a destination's own retention did on a
// replica.
type RetentionRun struct {
	At      time.Time
	Kept    int    // snapshots on the replica after the run
	Removed int    // snapshots it forgot
	Packs   int    // packs its prune deleted
	Freed   int64  // bytes of files gone
	Error   string // why it stopped, if it did
}

const statusCols = `destination, repo, snapshot, snapshot_time, replicated_at, pending_since, lag_bytes, last_error, error_at, failures,
	retained_at, retained_kept, retained_removed, retained_packs, retained_freed, retained_error`

func scanStatus(row schema.Scanner) (ReplicaStatus, error) {
	var r ReplicaStatus
	var st, at, ps, et, rt int64
	rr := &r.Retention
	err := row.Scan(&r.Destination, &r.Repo, &r.Snapshot, &st, &at, &ps, &r.LagBytes, &r.LastError, &et, &r.Failures,
		&rt, &rr.Kept, &rr.Removed, &rr.Packs, &rr.Freed, &rr.Error)
	r.SnapshotTime, r.ReplicatedAt, r.PendingSince, r.ErrorAt = schema.FromNanos(st), schema.FromNanos(at), schema.FromNanos(ps), schema.FromNanos(et)
	rr.At = schema.FromNanos(rt)
	return r, err
}

// RecordRetention records a retention run of dest's policy on repo's
// replica.
func (s *Replicas) RecordRetention(ctx context.Context, dest, repo string, run RetentionRun) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO replication_status (destination, repo, retained_at, retained_kept, retained_removed, retained_packs, retained_freed, retained_error)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
		ON CONFLICT (destination, repo) DO UPDATE SET retained_at = ?3, retained_kept = ?4, retained_removed = ?5,
			retained_packs = ?6, retained_freed = ?7, retained_error = ?8`,
		dest, repo, schema.Nanos(run.At), run.Kept, run.Removed, run.Packs, run.Freed, run.Error)
	if err != nil {
		return fmt.Errorf("record the retention run on %s's replica on %s: %w", repo, dest, err)
	}
	return nil
}

// ReplicaStatuses returns every replica's status, by destination and
// repository.
func (s *Replicas) ReplicaStatuses(ctx context.Context) ([]ReplicaStatus, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+statusCols+` FROM replication_status ORDER BY destination, repo`)
	if err != nil {
		return nil, fmt.Errorf("list replica status: %w", err)
	}
	defer rows.Close()
	var out []ReplicaStatus
	for rows.Next() {
		r, err := scanStatus(rows)
		if err != nil {
			return nil, fmt.Errorf("list replica status: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReplicaStatusOf returns one replica's status; ok is false if there is
// none yet.
func (s *Replicas) ReplicaStatusOf(ctx context.Context, dest, repo string) (r ReplicaStatus, ok bool, err error) {
	r, err = scanStatus(s.db.QueryRowContext(ctx, `SELECT `+statusCols+` FROM replication_status WHERE destination = ? AND repo = ?`, dest, repo))
	if errors.Is(err, sql.ErrNoRows) {
		return ReplicaStatus{Destination: dest, Repo: repo}, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("read replica status of %s on %s: %w", repo, dest, err)
	}
	return r, true, nil
}

// PassSucceeded records a pass over repo's replica on dest that ended
// without error at end. stillPending is the oldest commit the pass may
// have missed (it arrived after the pass listed the primary), zero if
// none; snapshot, when not "", is the newest commit the pass covered,
// committed at snapTime.
func (s *Replicas) PassSucceeded(ctx context.Context, dest, repo string, end, stillPending time.Time, snapshot string, snapTime time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO replication_status (destination, repo, snapshot, snapshot_time, replicated_at, pending_since)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)
		ON CONFLICT (destination, repo) DO UPDATE SET
			snapshot = CASE WHEN ?3 = '' THEN snapshot ELSE ?3 END,
			snapshot_time = CASE WHEN ?3 = '' THEN snapshot_time ELSE ?4 END,
			replicated_at = ?5, pending_since = ?6,
			lag_bytes = 0, last_error = '', error_at = 0, failures = 0`,
		dest, repo, snapshot, schema.Nanos(snapTime), schema.Nanos(end), schema.Nanos(stillPending))
	if err != nil {
		return fmt.Errorf("record replication of %s to %s: %w", repo, dest, err)
	}
	return nil
}

// PassFailed records a failed pass over repo's replica on dest: the error,
// the bytes it left uncopied, and, if the replica lacked a commit, since
// when it is pending (unless it already was).
func (s *Replicas) PassFailed(ctx context.Context, dest, repo string, at time.Time, msg string, lagBytes int64, pendingSince time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO replication_status (destination, repo, pending_since, lag_bytes, last_error, error_at, failures)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
		ON CONFLICT (destination, repo) DO UPDATE SET
			pending_since = CASE WHEN pending_since = 0 THEN ?3 ELSE pending_since END,
			lag_bytes = ?4, last_error = ?5, error_at = ?6, failures = failures + 1`,
		dest, repo, schema.Nanos(pendingSince), lagBytes, msg, schema.Nanos(at))
	if err != nil {
		return fmt.Errorf("record replication failure of %s to %s: %w", repo, dest, err)
	}
	return nil
}

// SetLagBytes records, during a pass, the bytes it has still to copy.
func (s *Replicas) SetLagBytes(ctx context.Context, dest, repo string, n int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO replication_status (destination, repo, lag_bytes) VALUES (?, ?, ?)
		ON CONFLICT (destination, repo) DO UPDATE SET lag_bytes = excluded.lag_bytes`, dest, repo, n)
	if err != nil {
		return fmt.Errorf("record the lag of %s on %s: %w", repo, dest, err)
	}
	return nil
}

// RecordReplicated notes in dest's ledger that h of repo was copied.
func (s *Replicas) RecordReplicated(ctx context.Context, dest, repo string, h backend.Handle) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO replication_ledger (destination, repo, type, name) VALUES (?, ?, ?, ?)`,
		dest, repo, string(h.Type), h.Name)
	if err != nil {
		return fmt.Errorf("record %s of %s copied to %s: %w", h, repo, dest, err)
	}
	return nil
}

// ReplicaDropped returns the files of repo that dest's own retention
// removed from the replica: they are never copied again.
func (s *Replicas) ReplicaDropped(ctx context.Context, dest, repo string) (map[backend.Handle]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT type, name FROM replication_ledger WHERE destination = ? AND repo = ? AND dropped = 1`, dest, repo)
	if err != nil {
		return nil, fmt.Errorf("read the ledger of %s on %s: %w", repo, dest, err)
	}
	defer rows.Close()
	out := map[backend.Handle]bool{}
	for rows.Next() {
		var t, n string
		if err := rows.Scan(&t, &n); err != nil {
			return nil, fmt.Errorf("read the ledger of %s on %s: %w", repo, dest, err)
		}
		out[backend.Handle{Type: backend.FileType(t), Name: n}] = true
	}
	return out, rows.Err()
}

// LedgerSize returns how many files of repo the ledger says were copied
// to dest.
func (s *Replicas) LedgerSize(ctx context.Context, dest, repo string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM replication_ledger WHERE destination = ? AND repo = ?`, dest, repo).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read the ledger of %s on %s: %w", repo, dest, err)
	}
	return n, nil
}
