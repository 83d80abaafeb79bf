package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/ratelimit"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/server"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/replication"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

func newServerDestinationCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "destination",
		Short: "Manage the places the server replicates repositories to",
		Long: `A destination is a directory (another disk), an S3 bucket (s3:…) or another
cairn server (rest:…). The server copies each replicated client's
repositories there, to LOC/CLIENT/REPO/, seconds after each snapshot, and
reconciles every --reconcile-every. A replica is a complete repository:
cairn -r LOC/CLIENT/REPO --key-file OWNER.key restore latest works with it
alone. A deletion on the primary is never mirrored; a destination with
its own retention policy (--keep-* on add or set) keeps the snapshots its
policy keeps, forgets the rest on the replica itself, and copies only what
the kept snapshots need (cairn repositories; a restic repository is copied
whole, without retention). Changes take effect on a running server within
seconds. See docs/server.md, Replication.`,
	}
	c.AddCommand(
		newServerDestinationAddCommand(g, opts),
		newServerDestinationSetCommand(g, opts),
		&cobra.Command{
			Use: "list", Short: "List destinations", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerDestinationList(c.Context(), g, d) })
			},
		},
		&cobra.Command{
			Use: "show NAME", Short: "Show one destination and its replicas", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, a []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerDestinationShow(c.Context(), g, d, a[0]) })
			},
		},
		&cobra.Command{
			Use: "remove NAME", Short: "Stop replicating to a destination; its replicas stay", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, a []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerDestinationRemove(c.Context(), g, d, a[0]) })
			},
		},
	)
	return c
}

// ServerDestinationAddOptions are `server destination add`'s flags.
type ServerDestinationAddOptions struct {
	Location        string
	CredentialsFile string
	Clients         []string
	All             bool
	Bandwidth       string
	Concurrency     int
	ReconcileEvery  time.Duration
	Retention       destinationRetention
	// ServerFingerprint is a rest: destination's far server's, pinned.
	ServerFingerprint string
}

func newServerDestinationAddCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var ao ServerDestinationAddOptions
	c := &cobra.Command{
		Use:   "add NAME",
		Short: "Replicate clients' repositories to a new destination",
		Long: `Add a destination. Give the clients it replicates (--clients a,b) or --all.
For s3: the credentials file is an AWS credentials file ([default] with
aws_access_key_id and aws_secret_access_key); without one the server's
environment (AWS_ACCESS_KEY_ID, …) is used. For rest: (another cairn
server) the far server's operator adds a replica tenant there (cairn
server client add NAME --replica); put its name in the URL
(rest:https://NAME@HOST:PORT/NAME), its password on the first line of the
credentials file, and the far server's fingerprint (cairn server
fingerprint there) in --server-fingerprint: every connection checks it. A
rest: destination keeps every snapshot (the far server deletes nothing),
so it takes no --keep-* rules. The credentials file is read at each
connection; only its path is recorded.`,
		Example: `  cairn server destination add usb --location /mnt/usb/cairn --all
  cairn server destination add offsite --location s3:https://s3.example.com/backups \
      --credentials-file /etc/cairn/offsite.aws --clients laptop,db1 --bandwidth 20MiB/s --keep-daily 7
  cairn server destination add far --location rest:https://site1@far.example.com/site1 \
      --credentials-file /etc/cairn/far.pw --server-fingerprint SHA256:1afb-… --all`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			return runServerDestinationAdd(c.Context(), g, opts, ao, a[0])
		},
	}
	f := c.Flags()
	f.StringVar(&ao.Location, "location", "", "where replicas go: a directory, s3:http[s]://host[:port]/bucket[/prefix] or rest:http[s]://user@host[:port]/path")
	f.StringVar(&ao.CredentialsFile, "credentials-file", "", "secrets for the location (s3: an AWS credentials file; rest: the password)")
	f.StringSliceVar(&ao.Clients, "clients", nil, "replicate these clients (comma-separated)")
	f.BoolVar(&ao.All, "all", false, "replicate every client, also those added later")
	f.StringVar(&ao.Bandwidth, "bandwidth", "", "most bytes a second read for this destination, e.g. 20MiB/s (default: unlimited)")
	f.IntVar(&ao.Concurrency, "concurrency", 4, "files copied at once")
	f.DurationVar(&ao.ReconcileEvery, "reconcile-every", 15*time.Minute, "how often every replica is compared with its primary and healed")
	f.StringVar(&ao.ServerFingerprint, "server-fingerprint", "", "rest: the far cairn server's fingerprint, as 'cairn server fingerprint' prints it there (required for rest:)")
	ao.Retention.flags(c)
	return c
}

// destinationRetention are the flags that give a destination its own
// retention policy.
type destinationRetention struct {
	p          policy.Policy
	within     string
	policyFile string
	keepAll    bool // destination set only
	cmd        *cobra.Command
}

func (r *destinationRetention) flags(c *cobra.Command) {
	r.p, r.cmd = policy.DefaultPolicy(), c
	f := c.Flags()
	f.IntVar(&r.p.Keep.Last, "keep-last", 0, "replicas keep the last N snapshots")
	f.IntVar(&r.p.Keep.Hourly, "keep-hourly", 0, "replicas keep the newest snapshot of each of the last N hours")
	f.IntVar(&r.p.Keep.Daily, "keep-daily", 0, "replicas keep the newest snapshot of each of the last N days")
	f.IntVar(&r.p.Keep.Weekly, "keep-weekly", 0, "replicas keep the newest snapshot of each of the last N weeks")
	f.IntVar(&r.p.Keep.Monthly, "keep-monthly", 0, "replicas keep the newest snapshot of each of the last N months")
	f.IntVar(&r.p.Keep.Yearly, "keep-yearly", 0, "replicas keep the newest snapshot of each of the last N years")
	f.StringVar(&r.within, "keep-within", "", "replicas keep snapshots within DURATION of the newest (e.g. 7d)")
	f.StringArrayVar(&r.p.Keep.Tags, "keep-tag", nil, "replicas keep snapshots with these tags (comma-separated: all of them); repeatable")
	f.StringVar(&r.p.GroupBy, "group-by", policy.DefaultGroupBy, "group snapshots by any of host, paths, tags (with a --keep-* rule)")
	f.StringVar(&r.policyFile, "policy-file", "", "read the replicas' retention rules from this file (as cairn forget --policy-file)")
	f.DurationVar(&r.p.Grace, "grace", prune.DefaultGrace, "delete packs the replicas no longer need only after this long")
	f.DurationVar(&r.p.Every, "retention-every", policy.DefaultEvery, "how often the replicas' retention runs")
}

// policy returns the policy the flags give, nil if they give no rule
// (the replicas keep every snapshot).
func (r *destinationRetention) policy() (*policy.Policy, error) {
	f := r.cmd.Flags()
	rules := false
	for _, n := range []string{"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly", "keep-within", "keep-tag", "policy-file"} {
		rules = rules || f.Changed(n)
	}
	if !rules {
		for _, n := range []string{"group-by", "grace", "retention-every"} {
			if f.Changed(n) {
				return nil, usageError{fmt.Errorf("--%s shapes a retention policy: give its rules too (--keep-* or --policy-file)", n)}
			}
		}
		return nil, nil
	}
	p := r.p
	if r.policyFile != "" {
		for _, n := range []string{"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly", "keep-within", "keep-tag", "group-by"} {
			if f.Changed(n) {
				return nil, usageError{fmt.Errorf("--policy-file and --%s are alternatives: put every rule in the file", n)}
			}
		}
		src, err := os.ReadFile(r.policyFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--policy-file: %w", err)}
		}
		cfg, err := retention.ParseConfig(src)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", r.policyFile, err)}
		}
		p.Keep, p.Within, p.GroupBy, p.Importance = cfg.Keep, cfg.Keep.Within, cfg.GroupBy, cfg.Importance
		p.Keep.Within = 0
	} else if r.within != "" {
		var err error
		if p.Within, err = retention.ParseDuration(r.within); err != nil {
			return nil, usageError{fmt.Errorf("--keep-within: %w", err)}
		}
	}
	if err := p.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("retention: %w", err)}
	}
	return &p, nil
}

// retentionText is a destination's retention for people.
func retentionText(p *policy.Policy) string {
	if p == nil {
		return "keeps every snapshot"
	}
	return p.String()
}

// replicasKeep is a destination's retention as a sentence about its
// replicas ("replicas keep every snapshot", "replicas keep daily 7; …").
func replicasKeep(p *policy.Policy) string {
	if p == nil {
		return "replicas keep every snapshot"
	}
	return "replicas " + p.String()
}

// ServerDestinationSetOptions are `server destination set`'s flags.
type ServerDestinationSetOptions struct {
	Retention destinationRetention
}

func newServerDestinationSetCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var so ServerDestinationSetOptions
	c := &cobra.Command{
		Use:   "set NAME",
		Short: "Change a destination's retention policy",
		Long: `Replace the retention policy of a destination's replicas (the --keep-* rules,
or --policy-file), or with --keep-all drop it: the replicas then keep
every snapshot the primary still has. Snapshots the replicas' retention
already forgot stay forgotten there. A running server applies the change
within seconds.`,
		Example: `  cairn server destination set offsite --keep-daily 7
  cairn server destination set usb --keep-all`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			return runServerDestinationSet(c.Context(), g, opts, so, a[0])
		},
	}
	so.Retention.flags(c)
	c.Flags().BoolVar(&so.Retention.keepAll, "keep-all", false, "drop the retention policy: the replicas keep every snapshot")
	return c
}

func runServerDestinationSet(ctx context.Context, g *GlobalOptions, opts *ServerOptions, so ServerDestinationSetOptions, name string) error {
	p, err := so.Retention.policy()
	if err != nil {
		return err
	}
	switch {
	case p != nil && so.Retention.keepAll:
		return usageError{errors.New("--keep-all and a retention policy are alternatives")}
	case p == nil && !so.Retention.keepAll:
		return usageError{errors.New("nothing to change: give --keep-* rules, --policy-file or --keep-all")}
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		if x, err := d.State.Destination(ctx, name); err == nil {
			x.Retention = p
			if err := replication.CheckRetention(x); err != nil {
				return usageError{err}
			}
		}
		err = d.State.SetDestinationRetention(ctx, name, p)
		if errors.Is(err, replicas.ErrNoDestination) {
			return withHint(err, "see `cairn server destination list`")
		}
		if err != nil {
			return err
		}
		x, err := d.State.Destination(ctx, name)
		if err != nil {
			return err
		}
		if g.JSON {
			return writeJSON(g.stdout, destinationMessage(x, "destination_set"))
		}
		g.printf("destination %s: %s\n", name, replicasKeep(x.Retention))
		return nil
	})
}

// parseBandwidth parses --bandwidth as --limit-upload parses its rate
// (ratelimit.ParseRate: 20MiB/s, units required); "" is unlimited.
func parseBandwidth(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := ratelimit.ParseRate(s)
	if err != nil {
		return 0, usageError{fmt.Errorf("--bandwidth: %w", err)}
	}
	return n, nil
}

func runServerDestinationAdd(ctx context.Context, g *GlobalOptions, opts *ServerOptions, ao ServerDestinationAddOptions, name string) error {
	if ao.Location == "" {
		return usageError{errors.New("--location is required: a directory, s3:… or rest:…")}
	}
	if ao.All == (len(ao.Clients) > 0) {
		return usageError{errors.New("give the clients to replicate: --clients a,b or --all")}
	}
	bw, err := parseBandwidth(ao.Bandwidth)
	if err != nil {
		return err
	}
	if ao.Concurrency < 1 || ao.Concurrency > 64 {
		return usageError{fmt.Errorf("--concurrency %d: give 1 to 64", ao.Concurrency)}
	}
	if ao.ReconcileEvery < time.Second {
		return usageError{fmt.Errorf("--reconcile-every %v: give at least 1s", ao.ReconcileEvery)}
	}
	ret, err := ao.Retention.policy()
	if err != nil {
		return err
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		for _, c := range ao.Clients {
			if _, err := d.State.Client(ctx, c); err != nil {
				if errors.Is(err, state.ErrNoClient) {
					return withHint(err, "see `cairn server client list`")
				}
				return err
			}
		}
		storage, err := d.Storage(ctx)
		if err != nil {
			return err
		}
		dest, err := replication.CheckDestination(replicas.Destination{Name: name, Location: ao.Location, CredentialsFile: ao.CredentialsFile,
			Clients: ao.Clients, Bandwidth: bw, Concurrency: ao.Concurrency, ReconcileEvery: ao.ReconcileEvery, Created: time.Now(), Retention: ret,
			ServerFingerprint: ao.ServerFingerprint}, d.Dir, storage)
		if err != nil {
			return usageError{err}
		}
		if err := replication.Reach(ctx, dest); err != nil {
			if errors.Is(err, rest.ErrFingerprint) {
				return withHint(err, "ask the far server's operator for `cairn server fingerprint`; do not continue if they differ")
			}
			return withHint(err, "check --location and --credentials-file")
		}
		err = d.State.AddDestination(ctx, dest)
		if errors.Is(err, replicas.ErrDestinationExists) {
			return withHint(err, "choose another name, or `cairn server destination remove %s` first", name)
		}
		if err != nil {
			return err
		}
		if g.JSON {
			return writeJSON(g.stdout, destinationMessage(dest, "destination_added"))
		}
		g.printf("added destination %s: %s\n", name, displayText(location.Redact(dest.Location)))
		g.printf("replicates %s, %s, %d files at once\n", clientsText(dest), bandwidthText(dest.Bandwidth), dest.Concurrency)
		g.printf("%s\n", replicasKeep(dest.Retention))
		g.printf("A running server starts within seconds; `cairn server replication status` shows progress.\n")
		return nil
	})
}

func clientsText(d replicas.Destination) string {
	if len(d.Clients) == 0 {
		return "every client"
	}
	return "clients " + displayText(strings.Join(d.Clients, ","))
}

func bandwidthText(bw int64) string {
	if bw == 0 {
		return "unlimited bandwidth"
	}
	return formatBytes(uint64(bw)) + "/s"
}

func runServerDestinationList(ctx context.Context, g *GlobalOptions, d *datadir.Data) error {
	ds, err := d.State.Destinations(ctx)
	if err != nil {
		return err
	}
	if g.JSON {
		out := []destinationJSON{}
		for _, x := range ds {
			out = append(out, destinationMessage(x, "destination"))
		}
		return writeJSON(g.stdout, out)
	}
	if len(ds) == 0 {
		g.printf("no destinations; add one with `cairn server destination add NAME --location LOC --all`\n")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLOCATION\tCLIENTS\tBANDWIDTH\tCONCURRENCY")
	for _, x := range ds {
		clients := "all"
		if len(x.Clients) > 0 {
			clients = strings.Join(x.Clients, ",")
		}
		bw := "unlimited"
		if x.Bandwidth > 0 {
			bw = formatBytes(uint64(x.Bandwidth)) + "/s"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", displayText(x.Name), displayText(location.Redact(x.Location)), displayText(clients), bw, x.Concurrency)
	}
	return tw.Flush()
}

func runServerDestinationShow(ctx context.Context, g *GlobalOptions, d *datadir.Data, name string) error {
	x, err := d.State.Destination(ctx, name)
	if errors.Is(err, replicas.ErrNoDestination) {
		return withHint(err, "see `cairn server destination list`")
	}
	if err != nil {
		return err
	}
	now := time.Now()
	rows, err := replication.Report(ctx, d.State, now)
	if err != nil {
		return err
	}
	var mine []replication.Row
	for _, r := range rows {
		if r.Destination == name {
			mine = append(mine, r)
		}
	}
	if g.JSON {
		return writeJSON(g.stdout, destinationShowMessage(x, mine))
	}
	creds := "none"
	if x.CredentialsFile != "" {
		creds = x.CredentialsFile
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", displayText(x.Name))
	fmt.Fprintf(tw, "location:\t%s\n", displayText(location.Redact(x.Location)))
	fmt.Fprintf(tw, "credentials:\t%s\n", displayText(creds))
	fmt.Fprintf(tw, "replicates:\t%s\n", clientsText(x))
	bw := "unlimited"
	if x.Bandwidth > 0 {
		bw = formatBytes(uint64(x.Bandwidth)) + "/s"
	}
	fmt.Fprintf(tw, "bandwidth:\t%s\n", bw)
	fmt.Fprintf(tw, "concurrency:\t%d files at once\n", x.Concurrency)
	fmt.Fprintf(tw, "reconciles:\tevery %s\n", x.ReconcileEvery)
	fmt.Fprintf(tw, "retention:\t%s\n", retentionText(x.Retention))
	if x.ServerFingerprint != "" {
		fmt.Fprintf(tw, "fingerprint:\t%s (pinned)\n", displayText(x.ServerFingerprint))
	}
	fmt.Fprintf(tw, "added:\t%s\n", x.Created.Local().Format("2006-01-02 15:04:05 MST"))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(mine) == 0 {
		g.printf("\nno replicas yet: repositories are replicated once they receive a snapshot\n")
		return nil
	}
	fmt.Fprintln(g.stdout)
	if err := printReplicaRows(g, mine, now, false); err != nil {
		return err
	}
	if x.Retention != nil {
		return printRetentionRuns(g, mine, now)
	}
	return nil
}

// printRetentionRuns lists each replica's last retention run: when, what
// it kept and removed, or where it stopped.
func printRetentionRuns(g *GlobalOptions, rows []replication.Row, now time.Time) error {
	fmt.Fprintln(g.stdout)
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tREPO\tLAST RETENTION\tKEPT\tREMOVED\tPACKS DELETED\tFREED\tERROR")
	for _, r := range rows {
		run := r.Retention
		if run.At.IsZero() {
			fmt.Fprintf(tw, "%s\t%s\tnot yet\t-\t-\t-\t-\t-\n", displayText(r.Client), displayText(r.Repo))
			continue
		}
		errText := "-"
		if run.Error != "" {
			errText = displayText(run.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", displayText(r.Client), displayText(r.Repo), backupAge(run.At, now),
			run.Kept, run.Removed, run.Packs, formatBytes(uint64(run.Freed)), errText)
	}
	return tw.Flush()
}

func runServerDestinationRemove(ctx context.Context, g *GlobalOptions, d *datadir.Data, name string) error {
	x, err := d.State.Destination(ctx, name)
	if errors.Is(err, replicas.ErrNoDestination) {
		return withHint(err, "see `cairn server destination list`")
	}
	if err != nil {
		return err
	}
	if err := d.State.RemoveDestination(ctx, name); err != nil {
		return err
	}
	if g.JSON {
		return writeJSON(g.stdout, destinationRemovedJSON{MessageType: "destination_removed", Name: name, Location: location.Redact(x.Location)})
	}
	g.printf("removed destination %s; its replicas stay at %s\n", displayText(name), displayText(location.Redact(x.Location)))
	return nil
}

func newServerReplicationCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "replication",
		Short: "Show how far each replica is behind",
	}
	c.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show each repository's replicas: last snapshot, lag, last error",
		Long: `One line per destination and replicated repository: the newest snapshot on
the replica and when it was committed, how long the replica has lacked a
snapshot the primary holds (LAG), the bytes the pass under way has still
to copy or the last pass could not (LAG BYTES), and its last error. It reads the state database, so it works whether or
not the server runs.`,
		Example: `  cairn server replication status
  cairn server replication status --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerReplicationStatus(c.Context(), g, d) })
		},
	})
	return c
}

func runServerReplicationStatus(ctx context.Context, g *GlobalOptions, d *datadir.Data) error {
	now := time.Now()
	rows, err := replication.Report(ctx, d.State, now)
	if err != nil {
		return err
	}
	if g.JSON {
		return writeJSON(g.stdout, replicaMessages(rows))
	}
	if len(rows) == 0 {
		ds, err := d.State.Destinations(ctx)
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			g.printf("no destinations; add one with `cairn server destination add NAME --location LOC --all`\n")
		} else {
			g.printf("no replicas yet: repositories are replicated once they receive a snapshot\n")
		}
		return nil
	}
	return printReplicaRows(g, rows, now, true)
}

func printReplicaRows(g *GlobalOptions, rows []replication.Row, now time.Time, withDest bool) error {
	colour := false
	if f, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		colour = true
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	head := "CLIENT\tREPO\tLAST SNAPSHOT\tLAG\tLAG BYTES\tLAST ERROR"
	if withDest {
		head = "DESTINATION\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		snap := "none yet"
		if r.Snapshot != "" {
			snap = shortName(r.Snapshot) + " (" + backupAge(r.SnapshotTime, now) + ")"
		}
		lag := "up to date"
		if r.Lag > 0 {
			lag = formatDuration(r.Lag)
		}
		if colour {
			c := "\x1b[32m"
			switch {
			case r.LastError != "" || r.Lag > time.Hour:
				c = "\x1b[31m"
			case r.Lag > time.Minute:
				c = "\x1b[33m"
			}
			lag = c + fmt.Sprintf("%-10s", lag) + "\x1b[0m"
		}
		errText := "-"
		if r.LastError != "" {
			errText = displayText(r.LastError)
			if r.Failures > 1 {
				errText = fmt.Sprintf("%s (%d times)", errText, r.Failures)
			}
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\n", displayText(r.Client), displayText(r.Repo), snap, lag, formatBytes(uint64(r.LagBytes)), errText)
		if withDest {
			line = displayText(r.Destination) + "\t" + line
		}
		fmt.Fprint(tw, line)
	}
	return tw.Flush()
}

// shortName is a content name's first 8 hex digits, as snapshot IDs are
// shown.
func shortName(n string) string {
	if len(n) > 8 {
		return n[:8]
	}
	return n
}

// serverReplication is the replication service of `server run`: its
// commit hook and metrics go into the server's options, and it runs
// beside the server once that exists.
type serverReplication struct {
	d   *datadir.Data
	svc *replication.Service
	srv *server.Server
}

func newServerReplication(d *datadir.Data, log *slog.Logger) *serverReplication {
	r := &serverReplication{d: d}
	r.svc = replication.New(replication.Config{State: d.State, Log: log, SpoolDir: filepath.Join(d.Dir, "replication-spool"),
		Open: func(ctx context.Context, repo string) (backend.Backend, error) { return r.srv.Repository(ctx, repo) },
		OpenRepo: func(ctx context.Context, repo string, be backend.Backend) (*repository.Repository, error) {
			return r.srv.OpenRepository(ctx, repo, be)
		}})
	return r
}

// options adds the commit hook and the metrics to o.
func (r *serverReplication) options(o server.Options) server.Options {
	o.OnCommit = r.svc.Notify
	o.Collectors = append(o.Collectors, replication.NewCollector(r.d.State, nil))
	return o
}

// start runs the service until the returned stop is called, which waits
// for the passes in progress to stop.
func (r *serverReplication) start(ctx context.Context, srv *server.Server) (stop func()) {
	r.srv = srv
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.svc.Run(ctx)
	}()
	return func() { cancel(); <-done }
}
