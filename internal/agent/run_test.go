package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeBackuper records the backups asked for and fails the first fail
// of them.
type fakeBackuper struct {
	calls []Backup
	at    []time.Time
	clock Clock
	fail  int
	onRun func()
	// added is what each successful backup reports it stored.
	added uint64
}

func (f *fakeBackuper) Backup(ctx context.Context, c *Config, b Backup) (Result, error) {
	f.calls = append(f.calls, b)
	f.at = append(f.at, f.clock.Now())
	if f.onRun != nil {
		f.onRun()
	}
	if len(f.calls) <= f.fail {
		return Result{}, errors.New("server went away")
	}
	return Result{BytesAdded: f.added}, nil
}

func testConfig(t *testing.T, extra string) *Config {
	t.Helper()
	c, err := Parse("agent.yaml", []byte("repository: /srv/repo\nkey_file: /k\npassword_file: /p\npaths: [/etc]\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunOnceRetriesThenGivesUp(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "hooks")
	c := testConfig(t, "retries: {attempts: 3, interval: 7m}\nhooks:\n  before: [{run: echo before >> "+out+"}]\n  after: [{run: echo after >> "+out+"}]\n  on_error: [{run: echo \"error $CAIRN_ERROR\" >> "+out+"}]\n")
	clock := &VirtualClock{T: time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)}
	fb := &fakeBackuper{clock: clock, fail: 100}
	var log bytes.Buffer
	r := &Runner{Config: c, Backuper: fb, Clock: clock, Log: &log}
	err := r.RunOnce(context.Background())
	if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "server went away") {
		t.Fatalf("RunOnce: %v", err)
	}
	if len(fb.calls) != 3 {
		t.Fatalf("%d attempts, want 3", len(fb.calls))
	}
	for i := 1; i < 3; i++ {
		if d := fb.at[i].Sub(fb.at[i-1]); d != 7*time.Minute {
			t.Errorf("attempt %d came %s after the last, want 7m", i+1, d)
		}
	}
	b, _ := os.ReadFile(out)
	want := strings.Repeat("before\nerror cairn backup: server went away\nafter\n", 3)
	want = strings.ReplaceAll(want, "cairn backup: ", "")
	if string(b) != want {
		t.Errorf("hooks ran:\n%s\nwant:\n%s", b, want)
	}
}

func TestRunOnceSucceedsOnRetry(t *testing.T) {
	c := testConfig(t, "")
	clock := &VirtualClock{T: time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)}
	fb := &fakeBackuper{clock: clock, fail: 2}
	r := &Runner{Config: c, Backuper: fb, Clock: clock}
	if err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(fb.calls) != 3 || len(clock.Slept) != 2 || clock.Slept[0] != DefaultRetryInterval {
		t.Fatalf("calls %d, sleeps %v", len(fb.calls), clock.Slept)
	}
	if fb.calls[2].Paths[0] != "/etc" {
		t.Errorf("backed up %v", fb.calls[2].Paths)
	}
}

func TestFailingBeforeHookSkipsBackup(t *testing.T) {
	c := testConfig(t, "retries: {attempts: 1}\nhooks:\n  before: [{run: exit 3}]\n")
	clock := &VirtualClock{T: time.Now()}
	fb := &fakeBackuper{clock: clock}
	r := &Runner{Config: c, Backuper: fb, Clock: clock}
	err := r.RunOnce(context.Background())
	var he *HookError
	if !errors.As(err, &he) || he.ExitCode != 3 || len(fb.calls) != 0 {
		t.Fatalf("err %v, %d backups", err, len(fb.calls))
	}
}

// TestServeJitterInsideWindow: on an injected clock, each run of a
// "daily 04:00" schedule with 20m jitter starts inside 04:00-04:20 in the
// schedule's zone, across a DST change, once a day.
func TestServeJitterInsideWindow(t *testing.T) {
	c := testConfig(t, "schedule: {at: daily 04:00, time_zone: Europe/Berlin, jitter: 20m}\n")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	clock := &VirtualClock{T: time.Date(2026, 3, 27, 12, 0, 0, 0, berlin)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fb := &fakeBackuper{clock: clock}
	fb.onRun = func() {
		if len(fb.calls) == 6 {
			cancel()
		}
	}
	r := &Runner{Config: c, Backuper: fb, Clock: clock, Rand: rand.New(rand.NewPCG(1, 2))}
	if err := r.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	if len(fb.calls) != 6 {
		t.Fatalf("%d runs", len(fb.calls))
	}
	distinct := map[time.Duration]bool{}
	for i, at := range fb.at {
		l := at.In(berlin)
		day := time.Date(2026, 3, 28+i, 4, 0, 0, 0, berlin)
		off := l.Sub(day)
		if off < 0 || off >= 20*time.Minute {
			t.Errorf("run %d at %s: outside 04:00-04:20 of %s", i, l, day.Format("01-02"))
		}
		distinct[off] = true
	}
	if len(distinct) < 3 {
		t.Errorf("jitter does not vary: %v", fb.at)
	}
}

func TestDumpBackupCommands(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	b, err := DumpBackup(&Database{Type: "postgres", Mode: "dump", Databases: []string{"app"}, User: "backup", Host: "127.0.0.1", PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.Command, " "); got != "pg_dump --host 127.0.0.1 --username backup --no-password --clean --if-exists --dbname app" {
		t.Errorf("postgres: %s", got)
	}
	if b.Filename != "postgres-app.sql" || len(b.Env) != 1 || b.Env[0] != "PGPASSWORD=s3cret" {
		t.Errorf("postgres: %+v", b)
	}
	b, err = DumpBackup(&Database{Type: "mariadb", Mode: "dump", Socket: "/run/mysqld/mysqld.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.Command, " "); got != "mysqldump --single-transaction --routines --events --socket /run/mysqld/mysqld.sock --all-databases" {
		t.Errorf("mariadb: %s", got)
	}
	if _, err := DumpBackup(&Database{Type: "postgres", Mode: "quiesce"}); err == nil {
		t.Error("quiesce accepted")
	}
}

func TestExecBackuperArgs(t *testing.T) {
	dir := t.TempDir()
	cpw := filepath.Join(dir, "client.pw")
	os.WriteFile(cpw, []byte("p@ss\n"), 0o600)
	c, err := Parse("a.yaml", []byte(`repository: rest:https://backup.example:8443/web1/main
server_fingerprint: SHA256:00
client_password_file: `+cpw+`
key_file: /k
password_file: /p
paths: [/etc, /srv]
exclude: ["*.tmp"]
tags: [nightly]
host: web1
`))
	if err != nil {
		t.Fatal(err)
	}
	args, env, err := (&ExecBackuper{}).Args(c, Backup{Paths: c.Paths})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); got != "backup --host web1 --tag nightly --exclude *.tmp -- /etc /srv" {
		t.Errorf("args %s", got)
	}
	if env[0] != "CAIRN_REPOSITORY=rest:https://web1:p%40ss@backup.example:8443/web1/main" {
		t.Errorf("env %v", env)
	}
	// bandwidth limits both directions of the child; its summary goes to
	// the file the agent reads.
	c.Bandwidth = "5MiB/s"
	args, _, err = (&ExecBackuper{Extra: []string{"-q"}, SummaryFile: "/run/s.json"}).Args(c, Backup{Paths: c.Paths})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); !strings.HasPrefix(got, "-q --limit-upload 5MiB/s --limit-download 5MiB/s backup --summary-file /run/s.json --host web1 ") {
		t.Errorf("args %s", got)
	}
	// A quiesce recipe's data directory is left out of the paths' backup,
	// and backed up with its own excludes only.
	c.Bandwidth = ""
	c.Databases = []Database{{Type: "mariadb", Mode: "quiesce", DataDir: "/srv/my*sql/"}}
	args, _, _ = (&ExecBackuper{}).Args(c, Backup{Paths: c.Paths})
	if got := strings.Join(args, " "); got != `backup --host web1 --tag nightly --exclude *.tmp --exclude /srv/my\*sql -- /etc /srv` {
		t.Errorf("args %s", got)
	}
	args, _, _ = (&ExecBackuper{}).Args(c, Backup{Paths: []string{"/srv/my*sql"}, Exclude: []string{"/x"}})
	if got := strings.Join(args, " "); got != "backup --host web1 --tag nightly --exclude /x -- /srv/my*sql" {
		t.Errorf("args %s", got)
	}
}

// fakeEngine is a Docker Engine API on a unix socket: containers by name
// with their state, and the calls made. There is no Docker daemon on the
// test machines; this follows the Engine API's inspect, stop and start.
type fakeEngine struct {
	mu      sync.Mutex
	running map[string]bool
	calls   []string
}

func startFakeEngine(t *testing.T, running map[string]bool) (*fakeEngine, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fe := &fakeEngine{running: running}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(fe.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return fe, sock
}

func (fe *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containers/"), "/")
	if len(parts) != 2 {
		http.NotFound(w, r)
		return
	}
	name, op := parts[0], parts[1]
	fe.calls = append(fe.calls, r.Method+" "+op+" "+name)
	running, ok := fe.running[name]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"No such container: ` + name + `"}`))
		return
	}
	switch {
	case r.Method == http.MethodGet && op == "json":
		w.Write([]byte(`{"Name":"/` + name + `","State":{"Running":` + map[bool]string{true: "true", false: "false"}[running] + `}}`))
	case r.Method == http.MethodPost && op == "stop":
		if !running {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fe.running[name] = false
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && op == "start":
		if running {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fe.running[name] = true
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// TestContainersRestartedAfterFailedBackup: the group is stopped for the
// backup and started again after it failed; a container that was not
// running stays stopped.
func TestContainersRestartedAfterFailedBackup(t *testing.T) {
	fe, sock := startFakeEngine(t, map[string]bool{"db": true, "web": true, "idle": false})
	c := testConfig(t, "retries: {attempts: 1}\ncontainers: {stop: [db, web, idle], socket: "+sock+"}\n")
	clock := &VirtualClock{T: time.Now()}
	fb := &fakeBackuper{clock: clock, fail: 1}
	fb.onRun = func() {
		fe.mu.Lock()
		defer fe.mu.Unlock()
		if fe.running["db"] || fe.running["web"] {
			t.Error("a container runs during the backup")
		}
	}
	r := &Runner{Config: c, Backuper: fb, Clock: clock}
	if err := r.RunOnce(context.Background()); err == nil {
		t.Fatal("a failed backup reported success")
	}
	if !fe.running["db"] || !fe.running["web"] || fe.running["idle"] {
		t.Fatalf("after the failed backup: %v", fe.running)
	}
	want := "GET json db|POST stop db|GET json web|POST stop web|GET json idle|POST start web|POST start db"
	if got := strings.Join(fe.calls, "|"); got != want {
		t.Errorf("calls:\n%s\nwant:\n%s", got, want)
	}
}

// TestContainersUnknownNoBackup: a container the engine does not know
// stops the run before the backup, and those already stopped are started.
func TestContainersUnknownNoBackup(t *testing.T) {
	fe, sock := startFakeEngine(t, map[string]bool{"db": true})
	c := testConfig(t, "retries: {attempts: 1}\ncontainers: {stop: [db, missing], socket: "+sock+"}\n")
	clock := &VirtualClock{T: time.Now()}
	fb := &fakeBackuper{clock: clock}
	err := (&Runner{Config: c, Backuper: fb, Clock: clock}).RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "No such container: missing") {
		t.Fatalf("err %v", err)
	}
	if len(fb.calls) != 0 || !fe.running["db"] {
		t.Fatalf("%d backups; db running %v", len(fb.calls), fe.running["db"])
	}
}

// TestStopEndsHookGroupAndRunsAfterHooks: stopping the agent (the
// context, as SIGTERM does) during a before hook ends the hook's whole
// process group, a background child included, runs no backup and no
// retry, and still runs the after hooks.
func TestStopEndsHookGroupAndRunsAfterHooks(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "started")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	pidFile, after := filepath.Join(dir, "child.pid"), filepath.Join(dir, "after")
	c := testConfig(t, "hooks:\n  before: [{run: 'sleep 600 & echo $! > "+pidFile+"; echo go > "+fifo+"; wait'}]\n  after: [{run: touch "+after+"}]\n")
	clock := &VirtualClock{T: time.Now()}
	fb := &fakeBackuper{clock: clock}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Runner{Config: c, Backuper: fb, Clock: clock}).RunOnce(ctx) }()
	if _, err := os.ReadFile(fifo); err != nil { // returns once the hook wrote
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce: %v", err)
	}
	if len(fb.calls) != 0 || len(clock.Slept) != 0 {
		t.Fatalf("%d backups, sleeps %v after the stop", len(fb.calls), clock.Slept)
	}
	if _, err := os.Stat(after); err != nil {
		t.Errorf("after hook did not run: %v", err)
	}
	b, _ := os.ReadFile(pidFile)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The group got SIGTERM then SIGKILL before RunHooks returned: the
	// child is gone, or a zombie waiting for init to reap it.
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] != "Z" {
			t.Errorf("the hook's background child %d still runs (state %s)", pid, f[2])
		}
	}
}

func TestPermanentErrorNotRetried(t *testing.T) {
	c := testConfig(t, "")
	clock := &VirtualClock{T: time.Now()}
	fb := &fakeBackuper{clock: clock}
	r := &Runner{Config: c, Backuper: fb, Clock: clock, CheckServer: func(context.Context) error {
		return Permanent(errors.New("fingerprint mismatch"))
	}}
	err := r.RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not retried: fingerprint mismatch") || len(clock.Slept) != 0 || len(fb.calls) != 0 {
		t.Fatalf("err %v, sleeps %v, backups %d", err, clock.Slept, len(fb.calls))
	}
}
