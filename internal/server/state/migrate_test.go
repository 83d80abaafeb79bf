package state

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// previousSchema is the database the server made before schema versions:
// every table with CREATE TABLE IF NOT EXISTS and a meta row 'schema' that
// nothing read. Written out by hand, not taken from migrations, so that a
// change to the baseline migration that would break such databases fails.
const previousSchema = `
CREATE TABLE clients (
	name TEXT PRIMARY KEY, hash TEXT NOT NULL, quota INTEGER NOT NULL DEFAULT 0,
	append_only INTEGER NOT NULL DEFAULT 1, disabled INTEGER NOT NULL DEFAULT 0,
	min_interval INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,
	last_snapshot INTEGER NOT NULL DEFAULT 0, snapshots INTEGER NOT NULL DEFAULT 0,
	requests INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
	bytes_stored INTEGER NOT NULL DEFAULT 0);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('schema', '1');
INSERT INTO meta (key, value) VALUES ('storage', '/srv/repos');
CREATE TABLE policies (
	client TEXT PRIMARY KEY REFERENCES clients(name) ON DELETE CASCADE, policy TEXT NOT NULL,
	over_budget INTEGER NOT NULL DEFAULT 0, budget_note TEXT NOT NULL DEFAULT '',
	budget_since INTEGER NOT NULL DEFAULT 0);
CREATE TABLE repos (client TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
	repo TEXT NOT NULL, PRIMARY KEY (client, repo));
CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT,
	client TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE, repo TEXT NOT NULL,
	start INTEGER NOT NULL, finish INTEGER NOT NULL, removed INTEGER NOT NULL DEFAULT 0,
	packs INTEGER NOT NULL DEFAULT 0, freed INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '');
CREATE INDEX jobs_client ON jobs (client, start);
CREATE TABLE sessions (id TEXT PRIMARY KEY,
	client TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE, repo TEXT NOT NULL,
	opened INTEGER NOT NULL, heartbeat INTEGER NOT NULL, expires INTEGER NOT NULL,
	ended INTEGER NOT NULL DEFAULT 0, end_note TEXT NOT NULL DEFAULT '');
CREATE INDEX sessions_client ON sessions (client, repo, ended, expires);
CREATE TABLE chains (repo TEXT NOT NULL, repo_id TEXT NOT NULL, writer TEXT NOT NULL,
	seq INTEGER NOT NULL, hash TEXT NOT NULL, snapshot TEXT NOT NULL,
	PRIMARY KEY (repo, repo_id, writer));
INSERT INTO clients (name, hash, quota, append_only, min_interval, created, snapshots)
	VALUES ('bob', '$2a$10$hash', 1000, 1, 3600000000000, 1, 7);
INSERT INTO policies (client, policy) VALUES ('bob', '{"keep":{"last":3},"group_by":"host","grace":0,"every":3600000000000}');
INSERT INTO jobs (client, repo, start, finish, removed) VALUES ('bob', 'bob/laptop', 5, 6, 2);
`

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func dbVersion(t *testing.T, path string) int {
	t.Helper()
	var v int
	if err := rawDB(t, path).QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenPreviousSchema opens a database of the schema before versions:
// it is migrated to the current version, keeps every record, and loses
// only the meta row nothing read.
func TestOpenPreviousSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	if _, err := rawDB(t, path).Exec(previousSchema); err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Client(ctx, "bob")
	if err != nil || c.Quota != 1000 || !c.AppendOnly || c.MinInterval != time.Hour || c.Snapshots != 7 {
		t.Fatalf("client after migration: %+v, %v", c, err)
	}
	if p, ok, err := st.PolicyOf(ctx, "bob"); err != nil || !ok || p.Keep.Last != 3 || p.GroupBy != "host" {
		t.Fatalf("policy after migration: %+v %v %v", p, ok, err)
	}
	if j, err := st.Jobs(ctx, "bob", 10); err != nil || len(j) != 1 || j[0].SnapshotsRemoved != 2 {
		t.Fatalf("jobs after migration: %+v %v", j, err)
	}
	if loc, err := st.Storage(ctx); err != nil || loc != "/srv/repos" {
		t.Fatalf("storage after migration: %q %v", loc, err)
	}
	if v, err := schema.Meta(ctx, st.db, "schema"); err != nil || v != "" {
		t.Fatalf("meta schema row after migration: %q %v", v, err)
	}
	// The tables work as the current schema expects.
	now := time.Unix(100, 0)
	if err := st.OpenSession(ctx, BackupSession{ID: "s1", Client: "bob", Repo: "bob/laptop", Opened: now, Expires: now.Add(time.Minute)}, now, 4); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if v := dbVersion(t, path); v != schema.Version() {
		t.Fatalf("schema version %d after migration, want %d", v, schema.Version())
	}
	// Opening again applies nothing and changes nothing.
	st, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := st.Sessions(ctx, "bob", "bob/laptop"); err != nil || len(ss) != 1 {
		t.Fatalf("sessions after reopening: %+v %v", ss, err)
	}
	st.Close()
}

// TestOpenNewDatabase: a new database gets the current version.
func TestOpenNewDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if v := dbVersion(t, path); v != schema.Version() {
		t.Fatalf("new database at version %d, want %d", v, schema.Version())
	}
}

// TestOpenNewerSchema: a database a newer cairn migrated is refused, not
// guessed at, and left as it was.
func TestOpenNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := rawDB(t, path).Exec(`UPDATE schema_version SET version = ?`, schema.Version()+1); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer than this cairn knows") {
		t.Fatalf("open a newer database: %v", err)
	}
	if v := dbVersion(t, path); v != schema.Version()+1 {
		t.Fatalf("version changed to %d", v)
	}
}

// TestMigrateConcurrently: two processes opening one new database at
// once each apply every migration exactly once between them.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			st, err := Open(ctx, path)
			if err == nil {
				st.Close()
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if v := dbVersion(t, path); v != schema.Version() {
		t.Fatalf("version %d, want %d", v, schema.Version())
	}
}
