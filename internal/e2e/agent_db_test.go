//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// unprivileged is the user database servers run as: they refuse root.
type unprivileged struct{ uid, gid int }

func nobody(t *testing.T) unprivileged {
	t.Helper()
	if os.Geteuid() != 0 {
		// Already unprivileged: the servers run as this user.
		return unprivileged{os.Getuid(), os.Getgid()}
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody to run a database server as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return unprivileged{uid, gid}
}

// dir makes a directory under t.TempDir() owned by the user, and lets
// the user through the test's own temporary directories above it.
func (u unprivileged) dir(t *testing.T, name string) string {
	t.Helper()
	base := t.TempDir()
	for d := base; strings.HasPrefix(d, os.TempDir()+"/") && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(base, name)
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	return p
}

func (u unprivileged) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	}
	cmd.Env = append(os.Environ(), "HOME=/nonexistent", "LC_ALL=C")
	return cmd
}

func (u unprivileged) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := u.command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// serve starts a database server as the user and returns once its log
// (stderr) says it is ready; it is stopped at the end of the test.
func (u unprivileged) serve(t *testing.T, ready string, name string, args ...string) {
	t.Helper()
	cmd := u.command(name, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), ready) {
			go io.Copy(io.Discard, stderr)
			return
		}
	}
	t.Fatalf("%s exited before it was ready:\n%s", name, log.String())
}

// agentForLocalRepo makes a repository with a writer key and an agent
// configuration backing up paths (an empty directory when none) with it;
// extra is appended to the file.
func agentForLocalRepo(t *testing.T, e *env, extra string, paths ...string) string {
	t.Helper()
	e.ok("init")
	wpw := filepath.Join(e.dir, "writer.password")
	os.WriteFile(wpw, []byte("writer secret pw\n"), 0o600)
	key := filepath.Join(e.dir, "writer.key")
	e.ok("key", "add", "--role", "writer", "--export", key, "--new-password-file", wpw, "--host", "dbhost")
	cfg := filepath.Join(e.dir, "agent.yaml")
	if len(paths) == 0 {
		empty := filepath.Join(e.dir, "empty")
		os.MkdirAll(empty, 0o755)
		paths = []string{empty}
	}
	body := fmt.Sprintf("repository: %s\nkey_file: %s\npassword_file: %s\nhost: dbhost\npaths: [%s]\nretries: {attempts: 1}\n%s", e.repo, key, wpw, strings.Join(paths, ", "), extra)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// dumpOf is the content of file in the snapshot tagged tag.
func dumpOf(t *testing.T, e *env, tag, file string) []byte {
	t.Helper()
	var snaps []snapJSON
	lastJSON(t, e.ok("snapshots", "--json", "--tag", tag).stdout, &snaps)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots tagged %s", len(snaps), tag)
	}
	out := e.ok("dump", snaps[0].ID, "/"+file).stdout
	if len(out) == 0 {
		t.Fatalf("%s is empty", file)
	}
	return []byte(out)
}

// pgBin is the newest Debian PostgreSQL's bin directory, "" when none is
// installed.
var pgBin = func() string {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	best, bestV := "", 0
	for _, b := range bins {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		if v > bestV {
			best, bestV = filepath.Dir(b), v
		}
	}
	return best
}()

// startPostgres runs initdb and a postgres listening only on a unix
// socket in a directory of its own, which it returns.
func startPostgres(t *testing.T, u unprivileged) string {
	t.Helper()
	data := u.dir(t, "pgdata")
	u.run(t, filepath.Join(pgBin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	return servePostgres(t, u, data)
}

// servePostgres runs a postgres on the data directory data, listening
// only on a unix socket in a directory of its own, which it returns.
func servePostgres(t *testing.T, u unprivileged, data string) string {
	t.Helper()
	sock := u.dir(t, "pgsock")
	u.serve(t, "database system is ready to accept connections", filepath.Join(pgBin, "postgres"),
		"-D", data, "-k", sock, "-c", "listen_addresses=", "-c", "fsync=off")
	return sock
}

func psql(t *testing.T, sock, db, sql string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(pgBin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", sock, "-U", "postgres", "-d", db, "-c", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return string(out)
}

// TestPostgresRecipe: the agent's postgres recipe dumps a real
// PostgreSQL database with pg_dump into a snapshot; the dump restores
// into a fresh server and the data matches.
func TestPostgresRecipe(t *testing.T) {
	if pgBin == "" {
		missingTool(t, "PostgreSQL is not installed (Debian package postgresql)")
	}
	u := nobody(t)
	sock := startPostgres(t, u)
	psql(t, sock, "postgres", "CREATE DATABASE app")
	psql(t, sock, "app", `CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2), note text);
INSERT INTO orders (customer, total, note) SELECT 'customer ' || i, i * 1.25, CASE WHEN i % 7 = 0 THEN E'tab\there ''quoted'' ünïcode' END FROM generate_series(1, 5000) i;
CREATE VIEW big AS SELECT * FROM orders WHERE total > 1000;`)
	const q = "SELECT count(*), sum(total), md5(string_agg(id || customer || coalesce(note, '-'), ',' ORDER BY id)) FROM orders"
	want := psql(t, sock, "app", q)

	e := newEnv(t)
	cfg := agentForLocalRepo(t, e, fmt.Sprintf("databases:\n  - type: postgres\n    databases: [app]\n    user: postgres\n    socket: %s\n", sock))
	r := e.runWith(map[string]string{"PATH": pgBin + ":" + os.Getenv("PATH")}, "agent", "once", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("agent once: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	dump := dumpOf(t, e, "postgres", "postgres-app.sql")

	fresh := startPostgres(t, u)
	psql(t, fresh, "postgres", "CREATE DATABASE app")
	restore := exec.Command(filepath.Join(pgBin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", fresh, "-U", "postgres", "-d", "app")
	restore.Stdin = bytes.NewReader(dump)
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("restore the dump: %v\n%s", err, out)
	}
	if got := psql(t, fresh, "app", q); got != want {
		t.Fatalf("restored data differs: %q, want %q", got, want)
	}
	if got := psql(t, fresh, "app", "SELECT count(*) FROM big"); strings.TrimSpace(got) != "4200" {
		t.Errorf("restored view: %q", got)
	}
}

// startMariaDB runs mariadb-install-db and a mariadbd listening only on
// a unix socket, whose path it returns.
func startMariaDB(t *testing.T, u unprivileged) string {
	t.Helper()
	data := u.dir(t, "mydata")
	u.run(t, "mariadb-install-db", "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal", "--skip-test-db")
	return serveMariaDB(t, u, data)
}

// serveMariaDB runs a mariadbd on the data directory data, listening only
// on a unix socket, whose path it returns.
func serveMariaDB(t *testing.T, u unprivileged, data string) string {
	t.Helper()
	run := u.dir(t, "myrun")
	sock := filepath.Join(run, "mysqld.sock")
	u.serve(t, "ready for connections", "mariadbd", "--no-defaults", "--datadir="+data, "--socket="+sock, "--skip-networking",
		"--pid-file="+filepath.Join(run, "pid"), "--innodb-flush-log-at-trx-commit=0")
	return sock
}

func mariadb(t *testing.T, sock, db, sql string) string {
	t.Helper()
	args := []string{"--no-defaults", "-S", sock, "-u", "root", "-N", "-B", "-e", sql}
	if db != "" {
		args = append(args, db)
	}
	out, err := exec.Command("mariadb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb %q: %v\n%s", sql, err, out)
	}
	return string(out)
}

// TestMariaDBRecipe: the agent's mariadb recipe dumps a real MariaDB with
// mysqldump --single-transaction into a snapshot; the dump restores into
// a fresh server and the data matches.
func TestMariaDBRecipe(t *testing.T) {
	for _, tool := range []string{"mariadbd", "mariadb-install-db", "mysqldump", "mariadb"} {
		if _, err := exec.LookPath(tool); err != nil {
			missingTool(t, tool+" is not installed (Debian package mariadb-server)")
		}
	}
	u := nobody(t)
	sock := startMariaDB(t, u)
	mariadb(t, sock, "", `CREATE DATABASE app; USE app;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(100) NOT NULL, total DECIMAL(10,2), note TEXT) ENGINE=InnoDB;
INSERT INTO orders (customer, total, note) SELECT CONCAT('customer ', seq), seq * 1.25, IF(seq % 7 = 0, 'tab\there ''quoted'' ünïcode', NULL) FROM seq_1_to_5000;`)
	const q = "SELECT COUNT(*), SUM(total), MD5(GROUP_CONCAT(id, customer, COALESCE(note, '-') ORDER BY id SEPARATOR ',')) FROM orders"
	want := mariadb(t, sock, "app", "SET SESSION group_concat_max_len = 100000000; "+q)

	e := newEnv(t)
	cfg := agentForLocalRepo(t, e, fmt.Sprintf("databases:\n  - type: mariadb\n    databases: [app]\n    user: root\n    socket: %s\n", sock))
	r := e.run("agent", "once", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("agent once: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	dump := dumpOf(t, e, "mariadb", "mariadb-app.sql")
	if !bytes.Contains(dump, []byte("CREATE DATABASE")) {
		t.Fatalf("the dump has no CREATE DATABASE:\n%.500s", dump)
	}

	fresh := startMariaDB(t, u)
	restore := exec.Command("mariadb", "--no-defaults", "-S", fresh, "-u", "root")
	restore.Stdin = bytes.NewReader(dump)
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("restore the dump: %v\n%s", err, out)
	}
	if got := mariadb(t, fresh, "app", "SET SESSION group_concat_max_len = 100000000; "+q); got != want {
		t.Fatalf("restored data differs: %q, want %q", got, want)
	}
}
