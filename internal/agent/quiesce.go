package agent

// The quiesce mode of the database recipes: the database is held in a
// state where a copy of its data directory restores, by a session of its
// own client program (psql, mysql) that stays open while `cairn backup`
// reads the directory. No SQL driver: the client programs the dump mode
// uses already speak to the server, with the same host, socket, user and
// password settings.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// sqlSession is a client program run as a coprocess: statements go to
// its standard input, one at a time, and each is followed by a marker
// query whose echo says the statement finished. The session, and with it
// a lock or a backup mode it holds, lasts until close.
type sqlSession struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *limitedBuffer
	n      int
}

// limitedBuffer keeps the first 4 KiB written to it: a client's error.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func startSession(ctx context.Context, argv, env []string) (*sqlSession, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = HookGrace
	s := &sqlSession{cmd: cmd, stderr: &limitedBuffer{}}
	cmd.Stderr = s.stderr
	var err error
	if s.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.out = bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return s, nil
}

// query runs one statement (ending in ";") and returns the lines it
// printed.
func (s *sqlSession) query(sql string) ([]string, error) {
	s.n++
	mark := fmt.Sprintf("cairn-done-%d", s.n)
	if _, err := fmt.Fprintf(s.in, "%s\nSELECT '%s';\n", sql, mark); err != nil {
		return nil, s.failed(sql, err)
	}
	var lines []string
	for {
		line, err := s.out.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == mark {
			return lines, nil
		}
		if err != nil {
			return nil, s.failed(sql, err)
		}
		lines = append(lines, line)
	}
}

// failed is the error of a statement the client did not finish: it
// exited (ON_ERROR_STOP, or a batch client's first error), with its
// standard error as the reason.
func (s *sqlSession) failed(sql string, err error) error {
	s.in.Close()
	s.cmd.Wait()
	msg := strings.TrimSpace(s.stderr.String())
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("%s: %q failed: %s", filepath.Base(s.cmd.Path), sql, oneLine(msg))
}

// close ends the session (and so whatever it still holds) and waits for
// the client to exit.
func (s *sqlSession) close() error {
	s.in.Close()
	if err := s.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(s.cmd.Path), err, oneLine(strings.TrimSpace(s.stderr.String())))
	}
	return nil
}

// clientCommand is the client program's command line and environment
// for d: psql or mysql, with the recipe's host, socket, user and password
// as DumpBackup gives them to the dump tools.
func clientCommand(d *Database) (argv, env []string, err error) {
	var pw string
	if d.PasswordFile != "" {
		if pw, err = readSecret(d.PasswordFile); err != nil {
			return nil, nil, fmt.Errorf("password_file: %w", err)
		}
	}
	switch d.Type {
	case "postgres":
		argv = []string{"psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--no-password"}
		if d.Host != "" {
			argv = append(argv, "--host", d.Host)
		}
		if d.Socket != "" {
			argv = append(argv, "--host", d.Socket)
		}
		if d.User != "" {
			argv = append(argv, "--username", d.User)
		}
		db := "postgres"
		if len(d.Databases) > 0 {
			db = d.Databases[0]
		}
		argv = append(argv, "--dbname", db)
		if pw != "" {
			env = append(env, "PGPASSWORD="+pw)
		}
	case "mariadb", "mysql":
		argv = []string{"mysql", "--batch", "--skip-column-names", "--unbuffered"}
		if d.Host != "" {
			argv = append(argv, "--host", d.Host, "--protocol", "tcp")
		}
		if d.Socket != "" {
			argv = append(argv, "--socket", d.Socket)
		}
		if d.User != "" {
			argv = append(argv, "--user", d.User)
		}
		if pw != "" {
			env = append(env, "MYSQL_PWD="+pw)
		}
	default:
		return nil, nil, fmt.Errorf("unknown database type %q", d.Type)
	}
	return argv, env, nil
}

// QuiescePoll is how often the MariaDB/MySQL recipe looks whether InnoDB
// has written its changed pages out.
var QuiescePoll = 250 * time.Millisecond

// quiesce runs a database recipe in quiesce mode: its data directory
// backed up while the database is held quiet, as snapshots tagged
// "database", the type and "quiesce". What they stored is added to
// *added.
func (r *Runner) quiesce(ctx context.Context, d *Database, added *uint64) error {
	argv, env, err := clientCommand(d)
	if err != nil {
		return err
	}
	s, err := startSession(ctx, argv, env)
	if err != nil {
		return err
	}
	defer s.close()
	switch d.Type {
	case "postgres":
		return r.quiescePostgres(ctx, s, d, added)
	default:
		return r.quiesceMariaDB(ctx, s, d, added)
	}
}

var (
	lsnRE        = regexp.MustCompile(`Log sequence number\s+(\d+)`)
	checkpointRE = regexp.MustCompile(`Last checkpoint at\s+(\d+)`)
	historyRE    = regexp.MustCompile(`History list length\s+(\d+)`)
)

// innodb is what the recipe watches of InnoDB: the number of its changed
// pages not yet written, its log sequence number, which moves with every
// change it logs, and its last checkpoint.
type innodb struct {
	dirty           int64
	lsn, checkpoint uint64
	history         uint64 // undo logs purge has yet to clean up
}

// QuiesceSettle is how long InnoDB must have had no changed page and an
// unmoving log sequence number before the copy starts: a checkpoint
// follows the last page written out within a second or so, and it moves
// the log sequence number (its own records), which after the copy would
// fail the run.
var QuiesceSettle = 5 * time.Second

func innodbState(s *sqlSession) (innodb, error) {
	var st innodb
	dirty, lsn, err := innodbStatus(s)
	if err != nil {
		return st, err
	}
	st.dirty = dirty
	for _, x := range []struct {
		re  *regexp.Regexp
		dst *uint64
	}{{lsnRE, &st.lsn}, {checkpointRE, &st.checkpoint}, {historyRE, &st.history}} {
		m := x.re.FindStringSubmatch(lsn)
		if m == nil {
			return st, fmt.Errorf("SHOW ENGINE INNODB STATUS has no %q", strings.SplitN(x.re.String(), `\s`, 2)[0])
		}
		*x.dst, _ = strconv.ParseUint(m[1], 10, 64)
	}
	return st, nil
}

// innodbStatus is the number of changed pages and the text of SHOW
// ENGINE INNODB STATUS.
func innodbStatus(s *sqlSession) (dirty int64, status string, err error) {
	lines, err := s.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty';")
	if err != nil {
		return 0, "", err
	}
	if len(lines) != 1 {
		return 0, "", fmt.Errorf("SHOW GLOBAL STATUS: unexpected answer %q", lines)
	}
	f := strings.Fields(lines[0])
	if len(f) != 2 {
		return 0, "", fmt.Errorf("SHOW GLOBAL STATUS: unexpected answer %q", lines[0])
	}
	if dirty, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return 0, "", fmt.Errorf("SHOW GLOBAL STATUS: %w", err)
	}
	lines, err = s.query("SHOW ENGINE INNODB STATUS;")
	if err != nil {
		return 0, "", err
	}
	return dirty, strings.Join(lines, "\n"), nil
}

// quiesceMariaDB: FLUSH TABLES WITH READ LOCK closes the tables and
// blocks every write, MyISAM's and Aria's included. InnoDB still writes in
// the background (changed pages, purge), so the recipe has it write out
// every changed page (innodb_max_dirty_pages_pct 0, as it was afterwards)
// and waits until none is left and its log sequence number stands still.
// The directory is backed up then; a log sequence number that moved
// during the backup fails the run, as the copy may not be consistent.
// UNLOCK TABLES (and closing the session) ends the lock.
func (r *Runner) quiesceMariaDB(ctx context.Context, s *sqlSession, d *Database, added *uint64) error {
	if _, err := s.query("FLUSH TABLES WITH READ LOCK;"); err != nil {
		return err
	}
	// Every changed page written out now; no statistics recalculated
	// in the background (it writes to mysql.innodb_*_stats) until the end.
	var undo []string
	restore := func() error {
		var errs []error
		for _, q := range undo {
			if _, err := s.query(q); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	for _, v := range []struct{ name, quiet string }{{"innodb_max_dirty_pages_pct", "0"}, {"innodb_stats_auto_recalc", "OFF"}} {
		was, err := s.query("SELECT @@GLOBAL." + v.name + ";")
		if err != nil {
			restore()
			return err
		}
		if len(was) != 1 || !settingRE.MatchString(was[0]) {
			restore()
			return fmt.Errorf("%s: unexpected answer %q", v.name, was)
		}
		if _, err := s.query("SET GLOBAL " + v.name + " = " + v.quiet + ";"); err != nil {
			restore()
			return err
		}
		undo = append(undo, "SET GLOBAL "+v.name+" = "+was[0]+";")
	}
	before, err := waitInnoDBQuiet(ctx, r, s)
	if err != nil {
		restore()
		return err
	}
	r.logf("%s: tables locked and written out (log sequence number %d); backing up %s", d.Type, before.lsn, d.DataDir)
	if err := testQuiesceSQL(s); err != nil {
		restore()
		return err
	}
	// The commit gate: the snapshot is committed only if the log
	// sequence number still stands where it stood when the copy began,
	// checked while the lock is still held.
	gate := func(context.Context) error {
		after, err := innodbState(s)
		if err != nil {
			return err
		}
		if after.lsn != before.lsn {
			return fmt.Errorf("%s: InnoDB wrote while %s was backed up (log sequence number %d, then %d): the copy may not be consistent, so no snapshot was committed",
				d.Type, d.DataDir, before.lsn, after.lsn)
		}
		return nil
	}
	res, berr := r.Backuper.Backup(ctx, r.Config, Backup{Paths: []string{d.DataDir}, Exclude: mariadbExcludes(d.DataDir),
		Tags: []string{"database", d.Type, "quiesce"}, Gate: gate})
	*added += res.BytesAdded
	rerr := restore()
	if berr != nil {
		return fmt.Errorf("%s data directory: %w", d.Type, berr)
	}
	if rerr != nil {
		return rerr
	}
	if _, err := s.query("UNLOCK TABLES;"); err != nil {
		return err
	}
	return nil
}

// TestQuiesceSQLEnv names a test hook: set, its SQL runs in the quiesce
// recipe's session once the copy of the data directory began, before the
// consistency check (a write the check must catch). It exists for the
// end-to-end tests only.
const TestQuiesceSQLEnv = "CAIRN_AGENT_TEST_QUIESCE_SQL"

func testQuiesceSQL(s *sqlSession) error {
	if q := os.Getenv(TestQuiesceSQLEnv); q != "" {
		if _, err := s.query(q); err != nil {
			return fmt.Errorf("%s: %w", TestQuiesceSQLEnv, err)
		}
	}
	return nil
}

// settingRE is the value of a numeric or boolean server variable.
var settingRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?|ON|OFF|0|1)$`)

// waitInnoDBQuiet polls until InnoDB has had no changed page left to
// write, nothing left to purge and an unmoving log sequence number for
// QuiesceSettle, logging
// where it stands every minute. Its data files then hold every change it
// logged; recovery from the copied log's checkpoint redoes nothing they
// lack.
func waitInnoDBQuiet(ctx context.Context, r *Runner, s *sqlSession) (innodb, error) {
	var last innodb
	var since time.Time
	for n := 1; ; n++ {
		st, err := innodbState(s)
		if err != nil {
			return st, err
		}
		now := r.Clock.Now()
		if st.dirty != 0 || st.history != 0 || st.lsn != last.lsn || since.IsZero() {
			since = now
		} else if now.Sub(since) >= QuiesceSettle {
			return st, nil
		}
		last = st
		if n%int(time.Minute/QuiescePoll) == 0 {
			r.logf("waiting for InnoDB to write out its changes: %d pages left, %d undo logs to purge, log sequence number %d, checkpoint %d", st.dirty, st.history, st.lsn, st.checkpoint)
		}
		if err := r.Clock.Sleep(ctx, QuiescePoll); err != nil {
			return st, fmt.Errorf("waiting for InnoDB to write out its changed pages (%d left, log sequence number %d, checkpoint %d): %w", st.dirty, st.lsn, st.checkpoint, err)
		}
	}
}

// mariadbExcludes leave out of a data directory's backup what a server
// makes afresh: its pid file, socket and temporary tables.
func mariadbExcludes(dir string) []string {
	p := globEscape(filepath.Clean(dir))
	return []string{p + "/*.pid", p + "/*.sock", p + "/**/#sql*", p + "/#innodb_temp/"}
}

// postgresExcludes leave out of a data directory's backup what
// PostgreSQL's documentation on the low-level backup API says to omit:
// the contents of pg_wal (the WAL the backup needs is stored after
// pg_backup_stop), postmaster.pid and .opts, the contents of the
// directories a server fills afresh, temporary files, relation cache
// files, and a stale backup_label or tablespace_map.
func postgresExcludes(dir string) []string {
	p := globEscape(filepath.Clean(dir))
	ex := []string{p + "/postmaster.pid", p + "/postmaster.opts", p + "/backup_label", p + "/tablespace_map",
		"pgsql_tmp*", "pg_internal.init"}
	for _, sub := range []string{"pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp", "pg_subtrans"} {
		ex = append(ex, p+"/"+sub+"/*")
	}
	return ex
}

// globEscape quotes the pattern characters of an exclude pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\!`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// PostgresEndFile is the file of the second snapshot of the postgres
// quiesce recipe: a tar of backup_label, tablespace_map and the WAL
// segments from the backup's start to its stop.
const PostgresEndFile = "postgres-backup-end.tar"

// quiescePostgres: pg_backup_start in the session (a fast checkpoint);
// the data directory is backed up without the contents of pg_wal and
// what the server makes afresh; pg_backup_stop returns backup_label and
// tablespace_map. A second snapshot holds PostgresEndFile: those two
// files and the WAL segments from the one holding the start location to
// the one holding the stop location, copied from pg_wal. The data
// directory restored, with that tar unpacked into it, starts as a server
// that recovers to the end of the backup.
func (r *Runner) quiescePostgres(ctx context.Context, s *sqlSession, d *Database, added *uint64) error {
	lines, err := s.query("SELECT pg_walfile_name(pg_backup_start('cairn', true));")
	if err != nil {
		return err
	}
	if len(lines) != 1 || !walName.MatchString(lines[0]) {
		return fmt.Errorf("pg_backup_start: unexpected answer %q", lines)
	}
	first := lines[0]
	r.logf("postgres: backup started (WAL %s); backing up %s", first, d.DataDir)
	if err := testQuiesceSQL(s); err != nil {
		return err
	}
	// The commit gate: the data directory's snapshot is committed only
	// once pg_backup_stop succeeded and the end file (backup_label and
	// every WAL segment the copy needs) is in a temporary file, and,
	// where two backups may run at once, once the end file's own
	// snapshot is committed: the data directory is then never stored
	// without what makes it restorable.
	end, err := os.CreateTemp("", "cairn-postgres-end-*.tar")
	if err != nil {
		return fmt.Errorf("a temporary file for %s: %w", PostgresEndFile, err)
	}
	defer os.Remove(end.Name())
	defer end.Close()
	// Two backups at once need two server sessions, which a server that
	// paces its fleet may not grant while the first waits at its gate;
	// with the run's held session (slot.go) they share it.
	together := !strings.HasPrefix(r.Config.Repository, "rest:") || backend.HeldLeaseFrom(ctx) != ""
	stopped, endStored := false, false
	var last string
	storeEnd := func() error {
		if _, err := end.Seek(0, io.SeekStart); err != nil {
			return err
		}
		res, err := r.Backuper.Backup(ctx, r.Config, Backup{Stdin: end, Filename: PostgresEndFile, Tags: []string{"database", d.Type, "quiesce"}})
		*added += res.BytesAdded
		if err != nil {
			return fmt.Errorf("postgres backup_label and WAL: %w", err)
		}
		endStored = true
		return nil
	}
	gate := func(context.Context) error {
		stopped = true
		l, err := postgresBackupStop(s, d, first, end)
		if err != nil {
			return err
		}
		last = l
		if together {
			return storeEnd()
		}
		return nil
	}
	res, berr := r.Backuper.Backup(ctx, r.Config, Backup{Paths: []string{d.DataDir}, Exclude: postgresExcludes(d.DataDir),
		Tags: []string{"database", d.Type, "quiesce"}, Gate: gate})
	*added += res.BytesAdded
	if berr != nil {
		if !stopped {
			// pg_backup_stop even after a failed copy: the session ending
			// would abort the backup too, but say so in the server's terms.
			s.query("SELECT 1 FROM pg_backup_stop();")
		}
		if endStored {
			return fmt.Errorf("postgres data directory: %w (its %s was stored alone, which restores nothing)", berr, PostgresEndFile)
		}
		return fmt.Errorf("postgres data directory: %w", berr)
	}
	if !endStored {
		if err := storeEnd(); err != nil {
			return fmt.Errorf("%w; the data directory's snapshot is stored without them and does not restore on its own", err)
		}
	}
	r.logf("postgres: backup stopped; backup_label and WAL %s to %s stored as %s", first, last, PostgresEndFile)
	return nil
}

// postgresBackupStop ends the backup started at WAL segment first and
// writes the tar of PostgresEndFile to w; it returns the last segment.
func postgresBackupStop(s *sqlSession, d *Database, first string, w io.Writer) (string, error) {
	lines, err := s.query("SELECT pg_walfile_name(lsn) || ' ' || encode(convert_to(labelfile, 'UTF8'), 'hex') || ' ' || encode(convert_to(coalesce(spcmapfile, ''), 'UTF8'), 'hex') FROM pg_backup_stop();")
	if err != nil {
		return "", err
	}
	f := strings.Fields(strings.Join(lines, " "))
	if len(f) < 2 || len(f) > 3 || !walName.MatchString(f[0]) {
		return "", fmt.Errorf("pg_backup_stop: unexpected answer %q", lines)
	}
	last := f[0]
	label, err := hex.DecodeString(f[1])
	if err != nil {
		return "", fmt.Errorf("pg_backup_stop: backup_label: %w", err)
	}
	var spcmap []byte
	if len(f) == 3 {
		if spcmap, err = hex.DecodeString(f[2]); err != nil {
			return "", fmt.Errorf("pg_backup_stop: tablespace_map: %w", err)
		}
	}
	segs, err := walSegments(filepath.Join(d.DataDir, "pg_wal"), first, last)
	if err != nil {
		return "", err
	}
	if err := writeEndTar(w, label, spcmap, filepath.Join(d.DataDir, "pg_wal"), segs); err != nil {
		return "", fmt.Errorf("%s: %w", PostgresEndFile, err)
	}
	return last, nil
}

var walName = regexp.MustCompile(`^[0-9A-F]{24}$`)

// walSegments are the names of the segment files in dir from first to
// last (same timeline, so their names sort in WAL order), and the
// timelines' history files. A missing first or last segment is an error:
// the server removed WAL the backup needs.
func walSegments(dir, first, last string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pg_wal: %w", err)
	}
	var out []string
	have := map[string]bool{}
	for _, e := range ents {
		n := e.Name()
		switch {
		case walName.MatchString(n) && n[:8] == first[:8] && n >= first && n <= last:
			out = append(out, n)
			have[n] = true
		case strings.HasSuffix(n, ".history"):
			out = append(out, n)
		}
	}
	for _, n := range []string{first, last} {
		if !have[n] {
			return nil, fmt.Errorf("pg_wal: segment %s, which the backup needs, is gone (recycled by a checkpoint during the backup): raise wal_keep_size, or archive WAL, and run again", n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// writeEndTar writes the tar of PostgresEndFile: backup_label,
// tablespace_map (when there are tablespaces) and pg_wal/SEGMENT for each
// of segs, read from walDir.
func writeEndTar(w io.Writer, label, spcmap []byte, walDir string, segs []string) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := add("backup_label", label); err != nil {
		return err
	}
	if len(spcmap) > 0 {
		if err := add("tablespace_map", spcmap); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "pg_wal/", Mode: 0o700, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	for _, n := range segs {
		if err := addFile(tw, filepath.Join(walDir, n), "pg_wal/"+n); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	// A segment is written in place; what was flushed up to the stop
	// location is in it, and its size does not change.
	_, err = io.CopyN(tw, f, fi.Size())
	return err
}
