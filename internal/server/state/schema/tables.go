package schema

// The tables and columns each migration after the baseline adds. Package
// state queries the clients, policies, jobs, sessions, chains, admins and
// run-now requests; package reports the notifiers, drills, history and
// agent runs; package replicas the replication tables and the audit's.

import (
	"context"
	"database/sql"
)

// replicationSchema is the migration that adds replication.
const replicationSchema = `
CREATE TABLE replication_destinations (
	name            TEXT PRIMARY KEY,
	location        TEXT NOT NULL,
	credentials     TEXT NOT NULL DEFAULT '', -- a file's path: the secrets stay in the file
	clients         TEXT NOT NULL DEFAULT '', -- comma-separated; '' means every client
	bandwidth       INTEGER NOT NULL DEFAULT 0, -- bytes a second; 0: unlimited
	concurrency     INTEGER NOT NULL DEFAULT 4,
	reconcile_every INTEGER NOT NULL,
	created         INTEGER NOT NULL
);
CREATE TABLE replication_repos (
	repo        TEXT PRIMARY KEY, -- <client>/<repository…>
	client      TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	last_commit TEXT NOT NULL DEFAULT '', -- the snapshot file last stored on the primary
	commit_time INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE replication_status (
	destination   TEXT NOT NULL REFERENCES replication_destinations(name) ON DELETE CASCADE,
	repo          TEXT NOT NULL,
	snapshot      TEXT NOT NULL DEFAULT '', -- the newest commit known to be on the replica
	snapshot_time INTEGER NOT NULL DEFAULT 0, -- its commit time on the primary
	replicated_at INTEGER NOT NULL DEFAULT 0, -- end of the last pass without error
	pending_since INTEGER NOT NULL DEFAULT 0, -- the oldest commit not yet on the replica
	lag_bytes     INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	error_at      INTEGER NOT NULL DEFAULT 0,
	failures      INTEGER NOT NULL DEFAULT 0, -- passes failed in a row
	PRIMARY KEY (destination, repo)
);
CREATE TABLE replication_ledger (
	destination TEXT NOT NULL REFERENCES replication_destinations(name) ON DELETE CASCADE,
	repo        TEXT NOT NULL,
	type        TEXT NOT NULL,
	name        TEXT NOT NULL,
	dropped     INTEGER NOT NULL DEFAULT 0, -- removed by the destination's own retention: never copied again
	PRIMARY KEY (destination, repo, type, name)
) WITHOUT ROWID;
`

// migrateReplication is the migration that adds replication's tables.
func migrateReplication(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, replicationSchema)
	return err
}

// migrateReplicaRetention adds each destination's own retention policy
// (a Policy as JSON; empty keeps every snapshot).
func migrateReplicaRetention(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `ALTER TABLE replication_destinations ADD COLUMN retention TEXT NOT NULL DEFAULT ''`)
	return err
}

// migrateReplicaTenants adds replica tenants (Client.Replica), the
// fingerprint a rest: destination's far server must present
// (Destination.ServerFingerprint), and each replica's last retention run
// (RetentionRun).
func migrateReplicaTenants(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
ALTER TABLE clients ADD COLUMN replica INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replication_destinations ADD COLUMN server_fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE replication_status ADD COLUMN retained_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replication_status ADD COLUMN retained_kept INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replication_status ADD COLUMN retained_removed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replication_status ADD COLUMN retained_packs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replication_status ADD COLUMN retained_freed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replication_status ADD COLUMN retained_error TEXT NOT NULL DEFAULT '';
`)
	return err
}

// migrateMonitor adds the warn/alert thresholds to clients (0: the
// defaults) and the notifiers table.
func migrateMonitor(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
ALTER TABLE clients ADD COLUMN warn_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN alert_after INTEGER NOT NULL DEFAULT 0;
CREATE TABLE notifiers (
	name    TEXT PRIMARY KEY,
	kind    TEXT NOT NULL,           -- "webhook" or "smtp"
	config  TEXT NOT NULL,           -- JSON, the kind's settings
	repeat  INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL,
	health  TEXT NOT NULL DEFAULT '' -- JSON, the running server's last view of it
);`)
	return err
}

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

func migrateAdmins(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE admins (
	name    TEXT PRIMARY KEY,
	hash    TEXT NOT NULL,    -- bcrypt, as clients.hash
	created INTEGER NOT NULL
);`)
	return err
}

// migrateAudit adds the audit's tables.
func migrateAudit(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE audit_files (
	copy       TEXT NOT NULL, -- "" for the primary, else the destination's name
	repo       TEXT NOT NULL, -- <client>/<repository…>
	type       TEXT NOT NULL,
	name       TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	audited    INTEGER NOT NULL DEFAULT 0, -- last re-hashed and found good (or healed); 0: never
	PRIMARY KEY (copy, repo, type, name)
) WITHOUT ROWID;
CREATE TABLE audit_status (
	client    TEXT PRIMARY KEY REFERENCES clients(name) ON DELETE CASCADE,
	at        INTEGER NOT NULL, -- the last audit's time (audit clock)
	files     INTEGER NOT NULL DEFAULT 0, -- stored files on every copy
	covered   INTEGER NOT NULL DEFAULT 0, -- of them, re-hashed within the cycle
	checked   INTEGER NOT NULL DEFAULT 0, -- files re-hashed by the last audit
	bytes     INTEGER NOT NULL DEFAULT 0, -- bytes read by the last audit
	bad       INTEGER NOT NULL DEFAULT 0, -- bad or missing files it found
	healed    INTEGER NOT NULL DEFAULT 0,
	unhealed  INTEGER NOT NULL DEFAULT 0, -- damage still standing: an alert
	note      TEXT NOT NULL DEFAULT ''    -- the first unhealed file and why
);`)
	return err
}

func migrateAgentRuns(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE agent_runs (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	client   TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	run_id   TEXT NOT NULL,
	attempt  INTEGER NOT NULL,
	start    INTEGER NOT NULL,
	finish   INTEGER NOT NULL,
	received INTEGER NOT NULL,
	result   TEXT NOT NULL,
	bytes    INTEGER NOT NULL DEFAULT 0,
	duration INTEGER NOT NULL DEFAULT 0, -- nanoseconds
	error    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX agent_runs_client ON agent_runs (client, id);`)
	return err
}

func migrateRunNow(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE run_now (
	client    TEXT PRIMARY KEY REFERENCES clients(name) ON DELETE CASCADE,
	requested INTEGER NOT NULL
);`)
	return err
}
