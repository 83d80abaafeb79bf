package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/agent"
	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/restapi"
)

func newAgentCommand(g *GlobalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "agent",
		Short: "The per-machine backup agent: scheduled backups with hooks and retries",
		Long: `The agent runs backups on a client machine by its configuration file
(default ` + agent.DefaultConfigPath + `): where to, what, when, with which
hooks and retries. Hooks come from that file only; a server can never send
one. The file's keys: docs/agent.md.`,
	}
	c.AddCommand(newAgentValidateCommand(g), newAgentOnceCommand(g), newAgentRunCommand(g), newAgentInstallCommand(g))
	return c
}

// agentRunner is a Runner for the configuration at path: each backup is
// a child `cairn backup` of this executable (docs/agent.md says why),
// with this command's output flags.
func agentRunner(g *GlobalOptions, path string) (*agent.Runner, error) {
	cfg, err := agent.Load(path)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the cairn executable: %w", err)
	}
	clock, err := agent.ClockFromEnv()
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, f := range []struct {
		on   bool
		flag string
	}{{g.JSON, "--json"}, {g.Quiet, "--quiet"}, {g.Debug, "--debug"}, {g.Insecure, "--insecure"}, {g.NoCache, "--no-cache"}} {
		if f.on {
			extra = append(extra, f.flag)
		}
	}
	if g.Verbose > 0 {
		extra = append(extra, fmt.Sprintf("--verbose=%d", g.Verbose))
	}
	for _, ca := range g.CACerts {
		extra = append(extra, "--cacert", ca)
	}
	if g.CacheDir != "" {
		extra = append(extra, "--cache-dir", g.CacheDir)
	}
	var log io.Writer = g.stderr
	if g.Quiet {
		log = nil
	}
	r := &agent.Runner{
		Config:   cfg,
		Backuper: &agent.ExecBackuper{Exe: exe, Stdout: g.stdout, Stderr: g.stderr, Extra: extra},
		Clock:    clock,
		Log:      log,
		// One argon2id for the agent's life, not one per backup
		// (docs/threat-model.md, "R19 and the agent").
		Key: &agent.KeyHolder{KeyFile: cfg.KeyFile, Password: func() ([]byte, error) { return readPasswordFile(cfg.PasswordFile) }},
	}
	if strings.HasPrefix(cfg.Repository, "rest:") {
		r.CheckServer = func(ctx context.Context) error { return checkAgentServer(ctx, g, path, cfg) }
		r.Report = func(ctx context.Context, rep restapi.AgentReport) error {
			repo, err := cfg.RepositoryURL()
			if err != nil {
				return err
			}
			pool, err := client.LoadCAs(g.CACerts)
			if err != nil {
				return err
			}
			return agent.SendReport(ctx, client.HTTPClient(pool), repo, g.Insecure, rep)
		}
		r.HoldSlot = func(ctx context.Context, logf func(string, ...any)) (string, func(), error) {
			return holdAgentSlot(ctx, g, cfg, logf)
		}
		r.Poll = func(ctx context.Context) (bool, error) {
			repo, err := cfg.RepositoryURL()
			if err != nil {
				return false, err
			}
			pool, err := client.LoadCAs(g.CACerts)
			if err != nil {
				return false, err
			}
			a, err := agent.Poll(ctx, client.HTTPClient(pool), repo, g.Insecure)
			return a.RunNow, err
		}
	}
	return r, nil
}

// holdAgentSlot takes the run's place in the server's backup queue
// before any hook (agent.HoldSession): one backup session, which every
// backup of the run then uses (backup --session).
func holdAgentSlot(ctx context.Context, g *GlobalOptions, cfg *agent.Config, logf func(string, ...any)) (string, func(), error) {
	repo, err := cfg.RepositoryURL()
	if err != nil {
		return "", nil, err
	}
	o, err := g.clientOptions(nil)
	if err != nil {
		return "", nil, err
	}
	o.Location = repo
	be, err := client.OpenBackend(ctx, o)
	if err != nil {
		return "", nil, err
	}
	l, ok := backend.AsLeaser(be)
	if !ok {
		be.Close()
		return "", nil, errors.New("the repository's server keeps no backup sessions")
	}
	id, release, err := agent.HoldSession(ctx, l, logf)
	if err != nil {
		be.Close()
		return "", nil, err
	}
	return id, func() { release(); be.Close() }, nil
}

// checkAgentServer confirms that the server still presents the
// configuration's server_fingerprint (R21), as `cairn init` checked it.
func checkAgentServer(ctx context.Context, g *GlobalOptions, path string, cfg *agent.Config) error {
	repo, err := cfg.RepositoryURL()
	if err != nil {
		return err
	}
	u, err := url.Parse(strings.TrimPrefix(repo, "rest:"))
	if err != nil {
		return err
	}
	o, err := g.clientOptions(nil)
	if err != nil {
		return err
	}
	pub, err := client.ServerIdentity(ctx, o, u)
	if err != nil {
		return fmt.Errorf("check the server's fingerprint: %w", err)
	}
	if fp := pub.Fingerprint(); !client.SameFingerprint(fp, cfg.ServerFingerprint) {
		return agent.Permanent(fmt.Errorf("%w: %s presents %s, not %s (server_fingerprint in %s); nothing was backed up", rest.ErrFingerprint, u.Host, fp, cfg.ServerFingerprint, path))
	}
	return nil
}

func newAgentOnceCommand(g *GlobalOptions) *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "once",
		Short: "Run the configured backup now, with its hooks and retries (for cron or a timer)",
		Long: `Run one scheduled slot now: before hooks, containers stopped, database
dumps and the backup of the configured paths, containers started again,
on_error hooks after a failure, after hooks. A failed run is tried again
(retries.attempts, retries.interval apart); each attempt resumes what an
earlier one already stored. No jitter: the timer or cron line that starts
it adds its own. Exits 0 when a run succeeded, 1 when every attempt failed.`,
		Example: `  cairn agent once --config /etc/cairn/agent.yaml
  # crontab: 0 4 * * * cairn agent once -q`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := agentRunner(g, path)
			if err != nil {
				return err
			}
			return r.RunOnce(cmd.Context())
		},
	}
	c.Flags().StringVar(&path, "config", agent.DefaultConfigPath, "the configuration file")
	return c
}

func newAgentRunCommand(g *GlobalOptions) *cobra.Command {
	var (
		path string
		poll time.Duration
	)
	c := &cobra.Command{
		Use:   "run",
		Short: "The agent daemon: run the backup on its schedule until stopped",
		Long: `Wait for each time of schedule.at, plus a random delay of up to
schedule.jitter, and run the slot as ` + "`cairn agent once`" + ` does; repeat.
A slot whose attempts all failed is logged and the next one still comes.
With a rest: repository it asks the server every --poll whether an
operator wants a run now (` + "`cairn server client run-now`" + `), and then runs
the same slot at once; the server can ask for nothing else.
SIGTERM or SIGINT stops it: a running backup and the hooks' process groups
get SIGTERM, then SIGKILL after 10s; after hooks and container starts still run.`,
		Example: `  cairn agent run --config /etc/cairn/agent.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if poll < 0 || poll > 0 && poll < 100*time.Millisecond {
				return usageError{fmt.Errorf("--poll %v: give 0 (never) or at least 100ms", poll)}
			}
			r, err := agentRunner(g, path)
			if err != nil {
				return err
			}
			r.PollEvery = poll
			return r.Serve(cmd.Context())
		},
	}
	c.Flags().StringVar(&path, "config", agent.DefaultConfigPath, "the configuration file")
	c.Flags().DurationVar(&poll, "poll", agent.DefaultPollEvery, "how often to ask the server for a run-now request (0: never)")
	return c
}

func newAgentInstallCommand(g *GlobalOptions) *cobra.Command {
	var (
		path, unitDir, user string
		daemon, noEnable    bool
	)
	c := &cobra.Command{
		Use:   "install",
		Short: "Write systemd units that run the agent, and enable them",
		Long: `Write cairn-agent.service and cairn-agent.timer (the timer starts
` + "`cairn agent once`" + ` on the schedule, with the jitter as RandomizedDelaySec),
or with --daemon only cairn-agent.service running ` + "`cairn agent run`" + `.
The service runs as an unprivileged user systemd allocates (or --user),
with CAP_DAC_READ_SEARCH to read every file, and systemd's sandboxing.
Then it runs systemctl daemon-reload and enables and starts the unit,
unless --no-enable or the machine was not booted with systemd.`,
		Example: `  cairn agent install
  cairn agent install --daemon --user backup
  cairn agent install --unit-dir ./units --no-enable`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgentInstall(g, path, unitDir, user, daemon, noEnable)
		},
	}
	f := c.Flags()
	f.StringVar(&path, "config", agent.DefaultConfigPath, "the configuration file")
	f.StringVar(&unitDir, "unit-dir", "/etc/systemd/system", "write the unit files into `DIR`")
	f.StringVar(&user, "user", "", "run as `USER` (default: a user systemd allocates); root when hooks must stop services")
	f.BoolVar(&daemon, "daemon", false, "a service running agent run instead of a timer running agent once")
	f.BoolVar(&noEnable, "no-enable", false, "only write the unit files")
	return c
}

func runAgentInstall(g *GlobalOptions, path, unitDir, user string, daemon, noEnable bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	cfg, err := agent.Load(abs)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the cairn executable: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	units, err := agent.Units(cfg, agent.UnitOptions{Exe: exe, Config: abs, Daemon: daemon, User: user})
	if err != nil {
		return usageError{err}
	}
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		return withHint(fmt.Errorf("unit directory: %w", err), "pass --unit-dir, or run as root")
	}
	names := []string{agent.ServiceUnit}
	if !daemon {
		names = append(names, agent.TimerUnit)
	}
	for _, n := range names {
		p := filepath.Join(unitDir, n)
		if err := atomicfile.WriteFile(p, []byte(units[n]), 0o644); err != nil {
			return withHint(fmt.Errorf("write %s: %w", p, err), "run as root, or pass --unit-dir")
		}
		g.printf("wrote %s\n", displayText(p))
	}
	enable := names[len(names)-1]
	switch {
	case noEnable:
		g.printf("not enabled (--no-enable); enable with: systemctl daemon-reload && systemctl enable --now %s\n", enable)
		return nil
	case !bootedWithSystemd():
		g.printf("not enabled: this machine was not booted with systemd (no /run/systemd/system); start `cairn agent run --config %s` another way, or `cairn agent once` from cron\n", displayText(abs))
		return nil
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", "--now", enable}} {
		out, err := exec.Command("systemctl", args...).CombinedOutput()
		if err != nil {
			return withHint(fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out))), "the unit files are written; fix the problem and run it again")
		}
	}
	g.printf("enabled and started %s\n", enable)
	return nil
}

// bootedWithSystemd is sd_booted(3)'s test.
func bootedWithSystemd() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func newAgentValidateCommand(g *GlobalOptions) *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check an agent configuration file and show what it will do",
		Long: `Check an agent configuration file. Every problem is listed with its line
and key; a valid file is summarised with the time of its next run.`,
		Example: `  cairn agent validate --config /etc/cairn/agent.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.Load(path)
			if err != nil {
				return err
			}
			printAgentSummary(g, path, cfg, time.Now())
			return nil
		},
	}
	c.Flags().StringVar(&path, "config", agent.DefaultConfigPath, "the configuration file")
	return c
}

func printAgentSummary(g *GlobalOptions, path string, c *agent.Config, now time.Time) {
	w := g.stdout
	fmt.Fprintf(w, "%s is valid\n", displayText(path))
	fmt.Fprintf(w, "  repository:  %s\n", displayText(c.Repository))
	fmt.Fprintf(w, "  paths:       %s\n", displayText(strings.Join(c.Paths, ", ")))
	if len(c.Exclude) > 0 {
		fmt.Fprintf(w, "  exclude:     %s\n", displayText(strings.Join(c.Exclude, ", ")))
	}
	next := c.When.Next(now)
	when := "never (the schedule matches no date)"
	if !next.IsZero() {
		when = next.Format("2006-01-02 15:04 MST")
		if c.Jitter > 0 {
			when += fmt.Sprintf(", plus up to %s", c.Jitter)
		}
	}
	fmt.Fprintf(w, "  schedule:    %s (%s); next run %s\n", displayText(c.When.String()), c.When.Location(), when)
	fmt.Fprintf(w, "  retries:     %d attempts, %s apart\n", c.Retries.Attempts, c.RetryInterval)
	if c.BandwidthBytes > 0 {
		fmt.Fprintf(w, "  bandwidth:   %s/s\n", formatBytes(uint64(c.BandwidthBytes)))
	}
	hooks := len(c.Hooks.Before) + len(c.Hooks.After) + len(c.Hooks.OnError)
	if hooks > 0 {
		fmt.Fprintf(w, "  hooks:       %d before, %d after, %d on error\n", len(c.Hooks.Before), len(c.Hooks.After), len(c.Hooks.OnError))
	}
	if c.Containers != nil {
		fmt.Fprintf(w, "  containers:  stop %s\n", displayText(strings.Join(c.Containers.Stop, ", ")))
	}
	for _, d := range c.Databases {
		fmt.Fprintf(w, "  database:    %s (%s)\n", d.Type, d.Mode)
	}
}
