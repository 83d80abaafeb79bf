// Package schema is the state database's file and tables: opening it
// private to its owner, every table with its ordered, versioned
// migrations, and how values are stored in columns. Package state and its
// record packages (reports, replicas) query the tables; none of them
// creates or changes one.
package schema

// Migrations. The schema_version table holds one row, the number of
// migrations applied; Open applies the ones after it in order, each in
// its own transaction with the version bump, so a crash leaves the
// database at one version or the next, never between. A database newer
// than this program (a downgrade) is refused rather than guessed at.
//
// To change the schema, append a migration; never edit one that has
// shipped: databases in the field have applied it.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migration changes the schema from version i to i+1 (its index + 1).
type migration struct {
	what string
	up   func(ctx context.Context, tx *sql.Tx) error
}

// migrations are every schema change, oldest first.
var migrations = []migration{
	{"tables of the first release", execSQL(baseline)},
	{"drop the unread meta schema row (schema_version replaces it)", execSQL(`DELETE FROM meta WHERE key = 'schema';`)},
	{"backup-age thresholds per client, and notifiers (monitor.go)", migrateMonitor},
	{"replication destinations, status and ledger", migrateReplication},
	{"restore drills, drill-age limits and stored-size history (drill.go)", migrateDrills},
	{"admins of the web status page (admin.go)", migrateAdmins},
	{"audit coverage per stored file, and each client's last audit (audit.go)", migrateAudit},
	{"a retention policy per replication destination", migrateReplicaRetention},
	{"the last agent runs each client reported (agentruns.go)", migrateAgentRuns},
	{"run-now requests for agents (pacing.go)", migrateRunNow},
	{"replica tenants, pinned fingerprints of rest: destinations, replicas' retention runs (replication.go)", migrateReplicaTenants},
}

// baseline is the schema before migrations existed. It keeps IF NOT
// EXISTS: a database that release made already has these tables, and
// its data stays.
const baseline = `
CREATE TABLE IF NOT EXISTS clients (
	name          TEXT PRIMARY KEY,
	hash          TEXT NOT NULL,
	quota         INTEGER NOT NULL DEFAULT 0,
	append_only   INTEGER NOT NULL DEFAULT 1,
	disabled      INTEGER NOT NULL DEFAULT 0,
	min_interval  INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL,
	last_snapshot INTEGER NOT NULL DEFAULT 0,
	snapshots     INTEGER NOT NULL DEFAULT 0,
	requests      INTEGER NOT NULL DEFAULT 0,
	errors        INTEGER NOT NULL DEFAULT 0,
	bytes_stored  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
	client        TEXT PRIMARY KEY REFERENCES clients(name) ON DELETE CASCADE,
	policy        TEXT NOT NULL,
	over_budget   INTEGER NOT NULL DEFAULT 0,
	budget_note   TEXT NOT NULL DEFAULT '',
	budget_since  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS repos (
	client TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	repo   TEXT NOT NULL,
	PRIMARY KEY (client, repo)
);
CREATE TABLE IF NOT EXISTS jobs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	client      TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	repo        TEXT NOT NULL,
	start       INTEGER NOT NULL,
	finish      INTEGER NOT NULL,
	removed     INTEGER NOT NULL DEFAULT 0,
	packs       INTEGER NOT NULL DEFAULT 0,
	freed       INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_client ON jobs (client, start);
CREATE TABLE IF NOT EXISTS sessions (
	id        TEXT PRIMARY KEY,
	client    TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	repo      TEXT NOT NULL,
	opened    INTEGER NOT NULL,
	heartbeat INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	ended     INTEGER NOT NULL DEFAULT 0,
	end_note  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions (client, repo, ended, expires);
CREATE TABLE IF NOT EXISTS chains (
	repo     TEXT NOT NULL, -- <client>/<repository…>
	repo_id  TEXT NOT NULL, -- hex repository ID: a repository made again at the same path starts afresh
	writer   TEXT NOT NULL, -- hex Ed25519 public key
	seq      INTEGER NOT NULL,
	hash     TEXT NOT NULL, -- hex SHA-256 of the statement
	snapshot TEXT NOT NULL, -- the snapshot file's name
	PRIMARY KEY (repo, repo_id, writer)
);
`

func execSQL(q string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q)
		return err
	}
}

// Version is the schema version this program writes.
func Version() int { return len(migrations) }

// migrate brings the database to SchemaVersion, one migration per
// transaction. Each transaction first takes the write lock, then reads the
// version: of two processes opening one database at once, the second sees
// what the first applied and applies nothing twice.
func migrate(ctx context.Context, db *sql.DB) error {
	for {
		done, err := step(ctx, db)
		if err != nil || done {
			return err
		}
	}
}

// step applies the migration after the database's version, if any; done
// reports that there was none.
func step(ctx context.Context, db *sql.DB) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("state database: %w", err)
	}
	defer tx.Rollback()
	// The transaction began IMMEDIATE (Open): it holds the write lock
	// before it reads the version.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return false, fmt.Errorf("state database schema version: %w", err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("state database schema version: %w", err)
	}
	switch {
	case v == len(migrations):
		return true, nil
	case v > len(migrations):
		return false, fmt.Errorf("the state database has schema version %d, newer than this cairn knows (%d): run the cairn that wrote it", v, len(migrations))
	}
	m := migrations[v]
	if err := m.up(ctx, tx); err != nil {
		return false, fmt.Errorf("migrate the state database to version %d (%s): %w", v+1, m.what, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, v+1); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate the state database to version %d: %w", v+1, err)
	}
	return false, nil
}
