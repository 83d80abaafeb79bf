package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server"
	"github.com/cairnbackup/cairn/internal/server/audit"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/state"
)

type serverAuditOptions struct {
	Fraction string
	Period   time.Duration
	Replicas bool
}

func newServerAuditCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var ao serverAuditOptions
	c := &cobra.Command{
		Use:   "audit [CLIENT]",
		Short: "Re-hash stored files now, on the primary (and with --replicas every replica), and heal bad ones",
		Long: `Run one audit now: re-hash the files whose turn it is (--fraction of each
repository's files, oldest audit first, plus any not re-hashed for a whole
cycle of --period / --fraction), check each config, and with --replicas do the
same on every destination's replica and look for files a replica should hold
and lacks. A bad or missing file is healed from another copy whose file hashes
right. The coverage records are those of the rolling audit of ` + "`cairn server run`" + `,
so this counts towards it. See docs/server.md (Audit).

Exit 0 when every file checked is sound or was healed, 1 when damage is left
that no copy could heal (it is listed, and the running server alerts on it).`,
		Example: `  cairn server audit --data /srv/cairn --fraction 1
  cairn server audit --data /srv/cairn --replicas laptop
  cairn server audit --data /srv/cairn --fraction 1/30 --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			only := ""
			if len(a) == 1 {
				only = a[0]
			}
			return runServerAudit(c.Context(), g, opts, ao, only)
		},
	}
	f := c.Flags()
	f.StringVar(&ao.Fraction, "fraction", "1/30", "share of each repository's files to re-hash: N/M or a decimal; 1 re-hashes everything")
	f.DurationVar(&ao.Period, "period", audit.DefaultPeriod, "time between audits: a file is re-hashed at least every --period / --fraction")
	f.BoolVar(&ao.Replicas, "replicas", false, "audit every destination's replicas too")
	return c
}

// parseFraction reads "1/30", "0.5" or "1".
func parseFraction(flag, s string) (float64, error) {
	var v float64
	var err error
	if n, m, ok := strings.Cut(s, "/"); ok {
		var a, b float64
		if a, err = strconv.ParseFloat(strings.TrimSpace(n), 64); err == nil {
			b, err = strconv.ParseFloat(strings.TrimSpace(m), 64)
			if err == nil && b != 0 {
				v = a / b
			}
		}
	} else {
		v, err = strconv.ParseFloat(strings.TrimSpace(s), 64)
	}
	if err != nil || !(v > 0 && v <= 1) {
		return 0, usageError{fmt.Errorf("--%s %q: give a share above 0 and at most 1, such as 1/30 or 1", flag, s)}
	}
	return v, nil
}

func runServerAudit(ctx context.Context, g *GlobalOptions, opts *ServerOptions, ao serverAuditOptions, only string) error {
	frac, err := parseFraction("fraction", ao.Fraction)
	if err != nil {
		return err
	}
	if ao.Period <= 0 {
		return usageError{fmt.Errorf("--period %v: give a duration above zero, such as 24h", ao.Period)}
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		sto, err := d.OpenStorage(ctx)
		if err != nil {
			return err
		}
		log := slog.New(slog.DiscardHandler)
		if g.Verbose > 0 {
			log = slog.New(slog.NewTextHandler(g.stderr, nil))
		}
		a := audit.New(audit.Config{State: d.State, Log: log, Now: monitor.Clock(), SpoolDir: filepath.Join(d.Dir, "audit-spool"),
			Open:  func(ctx context.Context, repo string) (backend.Backend, error) { return sto.OpenForAudit(ctx, repo) },
			Repos: func(ctx context.Context, client string) ([]string, error) { return sto.Repos(ctx, client) }})
		res, err := a.Run(ctx, audit.Options{Fraction: frac, Period: ao.Period, Replicas: ao.Replicas, Client: only})
		if errors.Is(err, state.ErrNoClient) {
			return withHint(err, "see `cairn server client list`")
		}
		if err != nil {
			return err
		}
		if g.JSON {
			if err := writeJSON(g.stdout, serverAuditMessage(res)); err != nil {
				return err
			}
		} else {
			printAudit(g, res)
		}
		if n := res.Unhealed(); n > 0 {
			return fmt.Errorf("the audit left %d bad or missing files it could not heal; restore them from a copy you trust or run `cairn check --read-data` on the repository", n)
		}
		if len(res.Errors) > 0 {
			return withHint(fmt.Errorf("%d repository copies could not be audited (%s)", len(res.Errors), res.Errors[0]), "see `cairn server replication status`")
		}
		return nil
	})
}

func printAudit(g *GlobalOptions, res audit.Result) {
	var repos, copies int
	var checked, bytes, bad, healed int64
	for _, c := range res.Clients {
		repos, copies = repos+c.Repos, copies+c.Copies
		checked, bytes, bad, healed = checked+c.Checked, bytes+c.Bytes, bad+c.Bad, healed+c.Healed
	}
	where := "primary"
	if res.Replicas {
		where = "primary and replicas"
	}
	g.printf("Audited %d repositories of %d clients (%d copies, %s), fraction %.4g\n", repos, len(res.Clients), copies, where, res.Fraction)
	g.printf("Checked: %d files re-hashed, %s read\n", checked, formatBytes(uint64(bytes)))
	for _, f := range res.Findings {
		state := "healed from " + f.From
		if !f.Healed {
			state = "NOT HEALED: " + f.Error
		}
		g.printf("Bad:     %s %s/%s on %s: %s; %s\n", displayText(f.Repo), f.Type, f.Name, displayText(f.Copy), f.Problem, displayText(state))
	}
	for _, e := range res.Errors {
		g.printf("Error:   %s\n", displayText(e))
	}
	for _, c := range res.Clients {
		g.printf("Client:  %s: %d files, %.0f%% re-hashed within the cycle\n", displayText(c.Client), c.Files, c.Coverage*100)
	}
	g.printf("Damage:  %d bad or missing, %d healed, %d not healed\n", bad, healed, res.Unhealed())
	g.printf("Took:    %s\n", formatDuration(res.Took))
}

// startAudit runs the rolling audit of `cairn server run` until the
// returned stop is called; every <= 0 turns it off.
func startAudit(ctx context.Context, d *datadir.Data, srv *server.Server, log *slog.Logger, now func() time.Time, frac float64, every, check time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	a := audit.New(audit.Config{State: d.State, Log: log, Now: now, SpoolDir: filepath.Join(d.Dir, "audit-spool"),
		Open:  func(ctx context.Context, repo string) (backend.Backend, error) { return srv.AuditRepository(ctx, repo) },
		Repos: srv.RepositoryPaths})
	ctx, cancel := context.WithCancel(ctx)
	t := time.NewTicker(check)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Rolling(ctx, audit.Options{Fraction: frac, Period: every, Replicas: true}, t.C)
	}()
	return func() {
		cancel()
		t.Stop()
		<-done
	}
}
