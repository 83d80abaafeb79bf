package agent

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/clock"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// Clock is the agent's time: the real one, or a test's.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or returns ctx's error once ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the machine's clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits for d or ctx (clock.Sleep).
func (RealClock) Sleep(ctx context.Context, d time.Duration) error { return clock.Sleep(ctx, d) }

// VirtualClock starts at a given time and moves only when slept on: a
// sleep returns at once and advances it. `cairn agent` uses one when the
// test hook CAIRN_AGENT_TEST_CLOCK is set (TestClockEnv), so an end-to-end
// test sees a day's schedule in a second.
type VirtualClock struct {
	T time.Time
	// Slept records every sleep, in order.
	Slept []time.Duration
}

// Now is the virtual time.
func (c *VirtualClock) Now() time.Time { return c.T }

// Sleep advances the virtual time by d at once.
func (c *VirtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Slept = append(c.Slept, d)
	if d > 0 {
		c.T = c.T.Add(d)
	}
	return nil
}

// TestClockEnv names the test hook: set to an RFC 3339 time, `cairn agent`
// runs on a VirtualClock starting there instead of the machine's clock.
// It exists for the end-to-end tests only.
const TestClockEnv = "CAIRN_AGENT_TEST_CLOCK"

// ClockFromEnv is the machine's clock, or a VirtualClock when the test
// hook TestClockEnv is set.
func ClockFromEnv() (Clock, error) {
	v := os.Getenv(TestClockEnv)
	if v == "" {
		return RealClock{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want an RFC 3339 time", TestClockEnv, v)
	}
	return &VirtualClock{T: t}, nil
}

// Backup is one backup job the agent hands to its Backuper.
type Backup struct {
	// Paths to back up; with Command, none.
	Paths []string
	// Command, when set, is run and its standard output stored as the
	// one file Filename (a database dump).
	Command  []string
	Filename string
	// Stdin, when set instead, is read and stored as the one file
	// Filename.
	Stdin io.Reader
	// Exclude, when set, replaces the configuration's exclude and
	// exclude_file (a data directory's own).
	Exclude []string
	// Env is added to the backup's environment (a database password).
	Env []string
	// Tags are added to the configuration's tags.
	Tags []string
	// Session, when set, is the server backup session the backup uses
	// (backup --session): the run's held slot.
	Session string
	// Gate, when set, is asked once everything is uploaded, just before
	// the snapshot is committed (backup --commit-gate): nil lets it
	// commit; an error commits nothing and is the backup's error.
	Gate func(ctx context.Context) error
}

// Result is what a backup reports of itself (its summary).
type Result struct {
	// BytesAdded is what it stored in the repository, 0 when unknown.
	BytesAdded uint64
	// Snapshot is the ID of the snapshot it saved, "" when unknown.
	Snapshot string
}

// Backuper runs one backup.
type Backuper interface {
	Backup(ctx context.Context, c *Config, b Backup) (Result, error)
}

// Runner runs the configuration's backups: once (RunOnce), or on its
// schedule (Serve).
type Runner struct {
	Config   *Config
	Backuper Backuper
	Clock    Clock
	// Log receives one line per event and the hooks' output.
	Log io.Writer
	// Rand draws the jitter; nil: a fresh random source.
	Rand *rand.Rand
	// Docker talks to the Engine API for the containers recipe; nil: one
	// on Config.Containers.Socket.
	Docker *Docker
	// CheckServer, when set, runs at the start of every attempt, before
	// any hook: the server must still present server_fingerprint.
	CheckServer func(ctx context.Context) error
	// Report, when set, sends the report of each attempt to the server
	// (restapi.AgentReport); its error is logged as a warning, never
	// fails the run.
	Report func(ctx context.Context, r restapi.AgentReport) error
	// Poll, when set, asks the server whether an operator wants a run
	// now; Serve calls it every PollEvery on the machine's clock and runs
	// the slot at once on a yes (poll.go).
	Poll      func(ctx context.Context) (bool, error)
	PollEvery time.Duration
	// HoldSlot, when set, runs at the start of every attempt, before any
	// hook: it takes the run's place in the server's backup queue and
	// returns the session every backup of the run then uses, and the
	// function that ends it (slot.go, HoldSession). Its failure is a
	// warning: the backups then open sessions of their own.
	HoldSlot func(ctx context.Context, logf func(format string, args ...any)) (id string, release func(), err error)
	// Key, when set, unlocks the key file at the start of every attempt,
	// before any hook (only the first time, or after the file changed:
	// unlock.go); every backup of the run gets its key on a descriptor
	// (backup --key-fd) instead of deriving it from the password.
	Key *KeyHolder
}

// ReportTimeout bounds the sending of one run report.
const ReportTimeout = 30 * time.Second

// report sends the report of one attempt, if a Report is set.
func (r *Runner) report(ctx context.Context, rep restapi.AgentReport) {
	if r.Report == nil {
		return
	}
	rep.DurationMS = rep.End.Sub(rep.Start).Milliseconds()
	rep.Error = truncateUTF8(rep.Error, restapi.MaxAgentReportError)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReportTimeout)
	defer cancel()
	if err := r.Report(ctx, rep); err != nil {
		r.logf("warning: could not report the run to the server: %v", err)
	}
}

// truncateUTF8 cuts s to at most n bytes, not inside a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func newRunID() string {
	b := make([]byte, 8)
	crand.Read(b)
	return hex.EncodeToString(b)
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, "%s cairn agent: %s\n", r.Clock.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
}

// ErrGaveUp is returned when every attempt of a slot failed.
var ErrGaveUp = errors.New("every attempt failed")

// permanent marks an error no retry can fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent marks err as one a retry cannot fix (a server presenting
// another fingerprint): RunOnce then gives up at once.
func Permanent(err error) error { return permanent{err} }

// RunOnce runs one scheduled slot: up to Retries.Attempts runs, each
// RetryInterval after the last failure. Each attempt is a whole run
// (hooks included, so services are not left stopped between attempts);
// the backup itself resumes what an earlier attempt already stored.
func (r *Runner) RunOnce(ctx context.Context) error {
	c := r.Config
	var last error
	runID := newRunID()
	for attempt := 1; attempt <= c.Retries.Attempts; attempt++ {
		if attempt > 1 {
			r.logf("attempt %d of %d in %s", attempt, c.Retries.Attempts, c.RetryInterval)
			if err := r.Clock.Sleep(ctx, c.RetryInterval); err != nil {
				return err
			}
		}
		start := r.Clock.Now()
		r.logf("run started (attempt %d of %d)", attempt, c.Retries.Attempts)
		var added uint64
		last = r.run(ctx, &added)
		rep := restapi.AgentReport{RunID: runID, Attempt: attempt, Start: start, End: r.Clock.Now(), Result: restapi.AgentOK,
			BytesAdded: int64(min(added, math.MaxInt64))}
		if last == nil {
			r.logf("run succeeded in %s", r.Clock.Now().Sub(start).Round(time.Second))
			r.report(ctx, rep)
			return nil
		}
		if ctx.Err() != nil {
			r.logf("run stopped: %v", context.Cause(ctx))
			return ctx.Err()
		}
		r.logf("run failed: %v", last)
		rep.Result, rep.Error = restapi.AgentFailed, oneLine(last.Error())
		var p permanent
		if errors.As(last, &p) || attempt == c.Retries.Attempts {
			rep.Result = restapi.AgentGaveUp
		}
		r.report(ctx, rep)
		if errors.As(last, &p) {
			return fmt.Errorf("not retried: %w", last)
		}
	}
	return fmt.Errorf("%w (%d attempts, %s apart); the last: %w", ErrGaveUp, c.Retries.Attempts, c.RetryInterval, last)
}

// run is one attempt: before hooks, containers stopped, database dumps
// and the file backup, containers started (also on failure), on_error
// hooks after a failure, then after hooks. What its backups stored is
// added to *added.
func (r *Runner) run(ctx context.Context, added *uint64) (err error) {
	c := r.Config
	if r.CheckServer != nil {
		if err := r.CheckServer(ctx); err != nil {
			return err
		}
	}
	if r.Key != nil {
		h, err := r.Key.Unlock(r.logf)
		if err != nil {
			return err
		}
		ctx = withHandoff(ctx, &h)
		defer h.Clear()
	}
	if r.HoldSlot != nil {
		id, release, err := r.HoldSlot(ctx, r.logf)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			r.logf("warning: no backup slot held for the run (%v); each backup opens its own session", err)
		default:
			defer release()
			ctx = backend.WithHeldLease(ctx, id)
		}
	}
	env := []string{"CAIRN_REPOSITORY=" + c.Repository}
	if err := RunHooks(ctx, Before, c.Hooks.Before, env, r.Log, true); err != nil {
		r.finish(ctx, env, err)
		return err
	}
	err = r.backups(ctx, added)
	return r.finish(ctx, env, err)
}

func (r *Runner) finish(ctx context.Context, env []string, err error) error {
	c := r.Config
	if err != nil && len(c.Hooks.OnError) > 0 {
		if herr := RunHooks(context.WithoutCancel(ctx), OnError, c.Hooks.OnError, append(env, "CAIRN_ERROR="+oneLine(err.Error())), r.Log, false); herr != nil {
			r.logf("%v", herr)
		}
	}
	if herr := RunHooks(context.WithoutCancel(ctx), After, c.Hooks.After, env, r.Log, false); herr != nil && err == nil {
		err = herr
	}
	return err
}

func (r *Runner) backups(ctx context.Context, added *uint64) (err error) {
	c := r.Config
	if c.Containers != nil {
		d := r.Docker
		if d == nil {
			d = NewDocker(c.Containers.Socket)
		}
		stopped, serr := d.StopGroup(ctx, c.Containers.Stop)
		defer func() {
			// Start them again whatever happened, even when cancelled.
			if e := d.StartGroup(context.WithoutCancel(ctx), stopped); e != nil {
				err = errors.Join(err, e)
			}
		}()
		if serr != nil {
			return serr
		}
		r.logf("stopped containers %s", strings.Join(stopped, ", "))
	}
	for i := range c.Databases {
		if c.Databases[i].Mode == "quiesce" {
			qctx, cancel := context.WithTimeout(ctx, c.Databases[i].TimeoutDur)
			err := r.quiesce(qctx, &c.Databases[i], added)
			cancel()
			if err != nil {
				return fmt.Errorf("databases.%d (%s, quiesce): %w", i, c.Databases[i].Type, err)
			}
			continue
		}
		b, err := DumpBackup(&c.Databases[i])
		if err != nil {
			return fmt.Errorf("databases.%d: %w", i, err)
		}
		r.logf("dumping %s into %s", c.Databases[i].Type, b.Filename)
		dctx, cancel := context.WithTimeout(ctx, c.Databases[i].TimeoutDur)
		res, err := r.Backuper.Backup(dctx, c, b)
		cancel()
		*added += res.BytesAdded
		if err != nil {
			return fmt.Errorf("%s dump: %w", c.Databases[i].Type, err)
		}
	}
	res, err := r.Backuper.Backup(ctx, c, Backup{Paths: c.Paths})
	*added += res.BytesAdded
	return err
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 1000 {
		s = s[:1000]
	}
	return s
}

// Serve is the daemon: it waits for each scheduled time plus a random
// delay of up to the jitter, runs the slot (RunOnce), and repeats until
// ctx is done. A slot that gave up is logged; the next one still comes.
func (r *Runner) Serve(ctx context.Context) error {
	rnd := r.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	p, stop := r.startPoller(ctx)
	defer stop()
	for {
		now := r.Clock.Now()
		next := r.Config.When.NextWithJitter(now, r.Config.Jitter, rnd)
		if next.IsZero() {
			return fmt.Errorf("schedule %q never fires", r.Config.When)
		}
		r.logf("next run at %s", next.Format(time.RFC3339))
		asked, err := r.sleep(ctx, p, next.Sub(now))
		if err != nil {
			return nil // stopped
		}
		if asked {
			r.logf("the server asks for a run now (cairn server client run-now)")
		}
		if err := p.run(ctx, r.RunOnce); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.logf("%v", err)
		}
	}
}

// ExecBackuper runs each backup as a child process of the cairn
// executable (`cairn backup` with flags built from the configuration), so
// a run that crashes or runs out of memory takes only itself down, and
// the backup behaves exactly as the command does. The child is in its own
// process group; on cancellation the group gets SIGTERM, then SIGKILL
// after Grace.
type ExecBackuper struct {
	Exe            string
	Stdout, Stderr io.Writer
	// Extra global flags (e.g. --json, -q) put before "backup".
	Extra []string
	Grace time.Duration
	// SummaryFile, set by Backup for its child, is where the child
	// writes its summary (--summary-file).
	SummaryFile string
	// HandKey, set by Backup for its child when the run unlocked the key
	// (Runner.Key), hands it over (--key-fd) instead of the password file.
	HandKey bool
}

// keyFD is the child's descriptor of the key handed over: after the
// commit gate's, when there is one.
func keyFD(b Backup) int {
	if b.Gate != nil {
		return gateFD + 1
	}
	return gateFD
}

// Args are the child's arguments and extra environment for b.
func (e *ExecBackuper) Args(c *Config, b Backup) (args, env []string, err error) {
	repo, err := c.RepositoryURL()
	if err != nil {
		return nil, nil, err
	}
	env = []string{"CAIRN_REPOSITORY=" + repo, "CAIRN_KEY_FILE=" + c.KeyFile}
	if !e.HandKey {
		env = append(env, "CAIRN_PASSWORD_FILE="+c.PasswordFile)
	}
	env = append(env, b.Env...)
	args = append([]string(nil), e.Extra...)
	if c.Bandwidth != "" {
		args = append(args, "--limit-upload", c.Bandwidth, "--limit-download", c.Bandwidth)
	}
	args = append(args, "backup")
	if b.Gate != nil {
		args = append(args, "--commit-gate", strconv.Itoa(gateFD))
	}
	if e.HandKey {
		args = append(args, "--key-fd", strconv.Itoa(keyFD(b)))
	}
	if b.Session != "" {
		args = append(args, "--session", b.Session)
	}
	if e.SummaryFile != "" {
		args = append(args, "--summary-file", e.SummaryFile)
	}
	if c.Host != "" {
		args = append(args, "--host", c.Host)
	}
	for _, t := range append(append([]string(nil), c.Tags...), b.Tags...) {
		args = append(args, "--tag", t)
	}
	if len(b.Command) > 0 {
		args = append(args, "--stdin-from-command", "--stdin-filename", b.Filename, "--")
		return append(args, b.Command...), env, nil
	}
	if b.Stdin != nil {
		return append(args, "--stdin", "--stdin-filename", b.Filename), env, nil
	}
	if b.Exclude != nil {
		for _, x := range b.Exclude {
			args = append(args, "--exclude", x)
		}
	} else {
		for _, x := range c.Exclude {
			args = append(args, "--exclude", x)
		}
		if c.ExcludeFile != "" {
			args = append(args, "--exclude-file", c.ExcludeFile)
		}
		// A data directory a quiesce recipe backed up while the database
		// was quiet is not copied again while it is not.
		for _, d := range c.Databases {
			if d.Mode == "quiesce" && d.DataDir != "" {
				args = append(args, "--exclude", globEscape(filepath.Clean(d.DataDir)))
			}
		}
	}
	args = append(args, "--")
	return append(args, b.Paths...), env, nil
}

// Backup runs `cairn backup` for b and waits for it. The child writes
// its summary (what it stored) to a temporary file (--summary-file),
// read once it exited: its standard output stays the user's, in the
// format the agent was asked for.
func (e *ExecBackuper) Backup(ctx context.Context, c *Config, b Backup) (Result, error) {
	f, err := os.CreateTemp("", "cairn-agent-summary-*.json")
	if err != nil {
		return Result{}, fmt.Errorf("a file for the backup's summary: %w", err)
	}
	f.Close()
	defer os.Remove(f.Name())
	child := *e
	child.SummaryFile = f.Name()
	handoff := handoffFrom(ctx)
	child.HandKey = handoff != nil
	if b.Session == "" {
		b.Session = backend.HeldLeaseFrom(ctx)
	}
	args, env, err := child.Args(c, b)
	if err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, e.Exe, args...)
	cmd.Env = append(withoutCairnEnv(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = e.Stdout, e.Stderr, b.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = e.Grace
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = HookGrace
	}
	var gate *childGate
	if b.Gate != nil {
		if gate, err = newChildGate(); err != nil {
			return Result{}, err
		}
		defer gate.close()
		cmd.ExtraFiles = []*os.File{gate.child}
	}
	var keyEnd *os.File
	if handoff != nil {
		if keyEnd, err = keyPipe(handoff); err != nil {
			return Result{}, err
		}
		defer keyEnd.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, keyEnd)
	}
	err = cmd.Start()
	if keyEnd != nil {
		keyEnd.Close() // the child has its own copy
	}
	if err == nil {
		var gateErr <-chan error
		if gate != nil {
			gateErr = gate.serve(ctx, b.Gate)
		}
		err = cmd.Wait()
		if gate != nil {
			gate.close()
			switch gerr := <-gateErr; {
			case errors.Is(gerr, errGateNotAsked):
				if err == nil {
					err = gerr
				}
			case gerr != nil:
				err = gerr
			}
		}
	}
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	res := readSummary(f.Name())
	if errors.As(err, new(gateRefused)) {
		return Result{BytesAdded: res.BytesAdded}, fmt.Errorf("not committed: %w", err)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return res, fmt.Errorf("cairn backup exited with status %d", ee.ExitCode())
		}
		return res, fmt.Errorf("cairn backup: %w", err)
	}
	return res, nil
}

// readSummary reads the summary a child `cairn backup --summary-file`
// wrote; none (a backup that failed before its end) is a zero Result.
func readSummary(path string) Result {
	buf, err := os.ReadFile(path)
	if err != nil || len(buf) == 0 {
		return Result{}
	}
	var s struct {
		BytesAdded uint64 `json:"bytes_added"`
		SnapshotID string `json:"snapshot_id"`
	}
	if json.Unmarshal(buf, &s) != nil {
		return Result{}
	}
	return Result{BytesAdded: s.BytesAdded, Snapshot: s.SnapshotID}
}

// withoutCairnEnv drops the agent's own CAIRN_ variables, so only the
// configuration decides what the child backs up and with which key.
func withoutCairnEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CAIRN_") || strings.HasPrefix(kv, "CAIRN_CACHE_DIR=") || strings.HasPrefix(kv, "CAIRN_CACERT=") {
			out = append(out, kv)
		}
	}
	return out
}
