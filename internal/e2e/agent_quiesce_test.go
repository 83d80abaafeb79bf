//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// quiesceSnapshots are the snapshots tagged quiesce, oldest first.
func quiesceSnapshots(t *testing.T, e *env) []snapJSON {
	t.Helper()
	var snaps []snapJSON
	lastJSON(t, e.ok("snapshots", "--json", "--tag", "quiesce").stdout, &snaps)
	return snaps
}

// TestMariaDBQuiesceRecipe: the mariadb recipe in quiesce mode backs up
// the data directory of a running MariaDB while FLUSH TABLES WITH READ
// LOCK is held and InnoDB has written out its pages; a fresh mariadbd
// started on the restored directory has the data.
func TestMariaDBQuiesceRecipe(t *testing.T) {
	for _, tool := range []string{"mariadbd", "mariadb-install-db", "mysql", "mariadb"} {
		if _, err := exec.LookPath(tool); err != nil {
			missingTool(t, tool+" is not installed (Debian package mariadb-server)")
		}
	}
	u := nobody(t)
	sock := startMariaDB(t, u)
	data := filepath.Clean(strings.TrimSpace(mariadb(t, sock, "", "SELECT @@datadir")))
	// STATS_PERSISTENT=0: no statistics recalculation queued by the load
	// writes to mysql.innodb_*_stats during the copy, which the recipe
	// would (rightly) fail on.
	mariadb(t, sock, "", `CREATE DATABASE app; USE app;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(100) NOT NULL, total DECIMAL(10,2), note TEXT) ENGINE=InnoDB STATS_PERSISTENT=0;
INSERT INTO orders (customer, total, note) SELECT CONCAT('customer ', seq), seq * 1.25, IF(seq % 7 = 0, 'tab\there', NULL) FROM seq_1_to_5000;
CREATE TABLE log (id INT PRIMARY KEY, msg TEXT) ENGINE=Aria;
INSERT INTO log SELECT seq, CONCAT('line ', seq) FROM seq_1_to_300;`)
	const q = "SELECT COUNT(*), SUM(total), MD5(GROUP_CONCAT(id, customer, COALESCE(note, '-') ORDER BY id SEPARATOR ',')), (SELECT COUNT(*) FROM log) FROM orders"
	want := mariadb(t, sock, "app", "SET SESSION group_concat_max_len = 100000000; "+q)

	e := newEnv(t)
	cfg := agentForLocalRepo(t, e, fmt.Sprintf("databases:\n  - type: mariadb\n    mode: quiesce\n    user: root\n    socket: %s\n    data_dir: %s\n", sock, data))
	r := e.run("agent", "once", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("agent once: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "tables locked and written out") {
		t.Errorf("the agent's log does not say the tables were locked:\n%s", r.stderr)
	}
	// The lock is gone with the run: a write goes through.
	mariadb(t, sock, "app", "INSERT INTO orders (customer) VALUES ('after the backup')")

	snaps := quiesceSnapshots(t, e)
	if len(snaps) != 1 || len(snaps[0].Paths) != 1 || snaps[0].Paths[0] != data {
		t.Fatalf("quiesce snapshots: %+v", snaps)
	}
	restored := u.dir(t, "restored")
	e.ok("restore", snaps[0].ID+":"+data, "--target", restored)
	fresh := serveMariaDB(t, u, restored)
	if got := mariadb(t, fresh, "app", "SET SESSION group_concat_max_len = 100000000; "+q); got != want {
		t.Fatalf("the restored server has %q, want %q", got, want)
	}
}

// TestPostgresQuiesceRecipe: the postgres recipe in quiesce mode backs up
// the data directory of a running PostgreSQL between pg_backup_start and
// pg_backup_stop, and stores backup_label with the WAL from the start to
// the stop; a postgres started on the restored directory, with that tar
// unpacked into it, recovers and has the data.
func TestPostgresQuiesceRecipe(t *testing.T) {
	if pgBin == "" {
		missingTool(t, "PostgreSQL is not installed (Debian package postgresql)")
	}
	u := nobody(t)
	sock := startPostgres(t, u)
	data := filepath.Clean(strings.TrimSpace(psql(t, sock, "postgres", "SHOW data_directory")))
	psql(t, sock, "postgres", "CREATE DATABASE app")
	psql(t, sock, "app", `CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2), note text);
INSERT INTO orders (customer, total, note) SELECT 'customer ' || i, i * 1.25, CASE WHEN i % 7 = 0 THEN E'tab\there' END FROM generate_series(1, 5000) i;`)
	const q = "SELECT count(*), sum(total), md5(string_agg(id || customer || coalesce(note, '-'), ',' ORDER BY id)) FROM orders"
	want := psql(t, sock, "app", q)

	e := newEnv(t)
	cfg := agentForLocalRepo(t, e, fmt.Sprintf("databases:\n  - type: postgres\n    mode: quiesce\n    user: postgres\n    socket: %s\n    data_dir: %s\n", sock, data))
	r := e.runWith(map[string]string{"PATH": pgBin + ":" + os.Getenv("PATH")}, "agent", "once", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("agent once: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Written after the backup: not in it.
	psql(t, sock, "app", "INSERT INTO orders (customer) VALUES ('after the backup')")

	// The end file's snapshot is committed first (the lower sequence
	// number): the data directory's waits for it at its commit gate, so it
	// never stands alone.
	snaps := quiesceSnapshots(t, e)
	if len(snaps) != 2 {
		t.Fatalf("quiesce snapshots: %+v", snaps)
	}
	dataSnap, endSnap := snaps[0], snaps[1]
	if endSnap.Paths[0] == data {
		dataSnap, endSnap = endSnap, dataSnap
	}
	if dataSnap.Paths[0] != data || endSnap.Paths[0] != "/postgres-backup-end.tar" || endSnap.Seq > dataSnap.Seq {
		t.Fatalf("quiesce snapshots: %+v", snaps)
	}
	restored := u.dir(t, "restored")
	e.ok("restore", dataSnap.ID+":"+data, "--target", restored)
	end := e.ok("dump", endSnap.ID, "/postgres-backup-end.tar").stdout
	untar := exec.Command("tar", "-x", "-C", restored)
	untar.Stdin = bytes.NewReader([]byte(end))
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("unpack postgres-backup-end.tar: %v\n%s", err, out)
	}
	if label, err := os.ReadFile(filepath.Join(restored, "backup_label")); err != nil || !strings.Contains(string(label), "LABEL: cairn") {
		t.Fatalf("backup_label: %v\n%s", err, label)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), restored).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	fresh := servePostgres(t, u, restored)
	if got := psql(t, fresh, "app", q); got != want {
		t.Fatalf("the restored server has %q, want %q", got, want)
	}
}

// TestQuiesceCommitGate: when the quiesce recipes' consistency check
// fails after the copy, the copy's snapshot is never committed (backup
// --commit-gate): nothing tagged quiesce appears, the run fails and says
// why. The test hook makes the check fail for certain: for MariaDB a
// write InnoDB logs under the read lock (a temporary table), for
// PostgreSQL the backup ended before the recipe's own pg_backup_stop.
func TestQuiesceCommitGate(t *testing.T) {
	t.Run("mariadb", func(t *testing.T) {
		for _, tool := range []string{"mariadbd", "mariadb-install-db", "mysql", "mariadb"} {
			if _, err := exec.LookPath(tool); err != nil {
				missingTool(t, tool+" is not installed (Debian package mariadb-server)")
			}
		}
		u := nobody(t)
		sock := startMariaDB(t, u)
		data := filepath.Clean(strings.TrimSpace(mariadb(t, sock, "", "SELECT @@datadir")))
		mariadb(t, sock, "", `CREATE DATABASE app; USE app;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(100) NOT NULL) ENGINE=InnoDB STATS_PERSISTENT=0;
INSERT INTO orders (customer) SELECT CONCAT('customer ', seq) FROM seq_1_to_500;`)
		e := newEnv(t)
		cfg := agentForLocalRepo(t, e, fmt.Sprintf("databases:\n  - type: mariadb\n    mode: quiesce\n    user: root\n    socket: %s\n    data_dir: %s\n", sock, data))
		r := e.runWith(map[string]string{"CAIRN_AGENT_TEST_QUIESCE_SQL": "USE app; CREATE TEMPORARY TABLE cairn_probe (a INT) ENGINE=InnoDB; INSERT INTO cairn_probe SELECT seq FROM seq_1_to_1000;"},
			"agent", "once", "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "InnoDB wrote while") || !strings.Contains(r.stderr, "no snapshot was committed") {
			t.Fatalf("agent once: exit %d, want 1 naming the moved log sequence number\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if snaps := quiesceSnapshots(t, e); len(snaps) != 0 {
			t.Fatalf("a copy that failed its check was committed: %+v", snaps)
		}
		// The lock is gone with the failed run: a write goes through.
		mariadb(t, sock, "app", "INSERT INTO orders (customer) VALUES ('after the run')")
		// Without the hook the same configuration commits.
		if r := e.run("agent", "once", "--config", cfg); r.code != 0 {
			t.Fatalf("agent once without the hook: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if snaps := quiesceSnapshots(t, e); len(snaps) != 1 {
			t.Fatalf("quiesce snapshots after a clean run: %+v", snaps)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		if pgBin == "" {
			missingTool(t, "PostgreSQL is not installed (Debian package postgresql)")
		}
		u := nobody(t)
		sock := startPostgres(t, u)
		data := filepath.Clean(strings.TrimSpace(psql(t, sock, "postgres", "SHOW data_directory")))
		e := newEnv(t)
		cfg := agentForLocalRepo(t, e, fmt.Sprintf("databases:\n  - type: postgres\n    mode: quiesce\n    user: postgres\n    socket: %s\n    data_dir: %s\n", sock, data))
		path := map[string]string{"PATH": pgBin + ":" + os.Getenv("PATH")}
		hooked := map[string]string{"PATH": path["PATH"], "CAIRN_AGENT_TEST_QUIESCE_SQL": "SELECT 1 FROM pg_backup_stop();"}
		r := e.runWith(hooked, "agent", "once", "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "not committed") || !strings.Contains(r.stderr, "pg_backup_stop") {
			t.Fatalf("agent once: exit %d, want 1 naming pg_backup_stop\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if snaps := quiesceSnapshots(t, e); len(snaps) != 0 {
			t.Fatalf("a data directory whose backup did not stop was committed: %+v", snaps)
		}
		if r := e.runWith(path, "agent", "once", "--config", cfg); r.code != 0 {
			t.Fatalf("agent once without the hook: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if snaps := quiesceSnapshots(t, e); len(snaps) != 2 {
			t.Fatalf("quiesce snapshots after a clean run: %+v", snaps)
		}
	})
}

// TestPostgresQuiesceThroughPacedServer: against a server that lets one
// backup run at a time, the postgres quiesce recipe's two backups (the
// data directory waiting at its commit gate while the end file is
// stored) share the run's held session instead of the second queueing
// behind the first: the run finishes with both snapshots.
func TestPostgresQuiesceThroughPacedServer(t *testing.T) {
	if pgBin == "" {
		missingTool(t, "PostgreSQL is not installed (Debian package postgresql)")
	}
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.ok("server", "init")
	pw := filepath.Join(e.dir, "alice.pass")
	os.WriteFile(pw, []byte("alice-secret-pw\n"), 0o600)
	e.ok("server", "client", "add", "alice", "--password-file", pw)
	s.start(t, "--max-backups", "1")
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	cfg, ownerKey := setupClient(t, s, src)

	u := nobody(t)
	sock := startPostgres(t, u)
	data := filepath.Clean(strings.TrimSpace(psql(t, sock, "postgres", "SHOW data_directory")))
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "databases:\n  - type: postgres\n    mode: quiesce\n    user: postgres\n    socket: %s\n    data_dir: %s\n    timeout: 3m\n", sock, data)
	f.Close()
	r := s.runWith(map[string]string{"PATH": pgBin + ":" + os.Getenv("PATH")}, "agent", "once", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("agent once: exit %d\n%s\n%s\nserver log:\n%s", r.code, r.stdout, r.stderr, s.log())
	}
	if strings.Contains(r.stderr, "waiting for the server:") {
		t.Errorf("a backup of the run queued behind the run's own slot:\n%s", r.stderr)
	}
	var snaps []snapJSON
	lastJSON(t, ownerRun(s, ownerKey, "snapshots", "--json", "--tag", "quiesce").stdout, &snaps)
	if len(snaps) != 2 {
		t.Fatalf("quiesce snapshots: %+v", snaps)
	}
}
