package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/state"
)

func newServerClientCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "client",
		Short: "Manage the server's clients",
		Long: `Each client has a name and a password (HTTP basic auth) and sees only its own
repositories, at rest:https://NAME:PASSWORD@HOST:PORT/NAME/REPO. Changes take
effect at once, also on a running server.`,
	}
	c.AddCommand(
		newServerClientAddCommand(g, opts),
		newServerClientSetCommand(g, opts),
		newServerClientRunNowCommand(g, opts),
		&cobra.Command{
			Use: "list", Short: "List clients with the age of their last backup", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerClientList(c.Context(), g, d) })
			},
		},
		&cobra.Command{
			Use: "show NAME", Short: "Show one client", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, a []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerClientShow(c.Context(), g, d, a[0]) })
			},
		},
		&cobra.Command{
			Use: "disable NAME", Short: "Refuse a client's requests until enabled again", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, a []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerClientSetDisabled(c.Context(), g, d, a[0], true) })
			},
		},
		&cobra.Command{
			Use: "enable NAME", Short: "Accept a disabled client's requests again", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, a []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerClientSetDisabled(c.Context(), g, d, a[0], false) })
			},
		},
		newServerClientRemoveCommand(g, opts),
		newServerClientPasswdCommand(g, opts),
		newServerClientPolicyCommand(g, opts),
	)
	return c
}

// ServerClientAddOptions are `server client add`'s flags.
type ServerClientAddOptions struct {
	PasswordFile string
	Quota        string
	AppendOnly   bool
	MinInterval  time.Duration
	Replica      bool
}

func newServerClientAddCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var ao ServerClientAddOptions
	c := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a client",
		Long: `Add a client. Without --password-file a random password is generated and
printed once. Clients are append-only unless --append-only=false: they can
create files but never delete or overwrite them (restic lock files excepted).

--replica adds a replica tenant: another cairn server that replicates its
clients' repositories here (cairn server destination add … --location
rest:https://NAME@THIS-HOST/NAME there). This server stores its files
content-named (each checked against the SHA-256 its name is), never
overwrites or deletes them, holds them to the quota, and never opens them:
it has no key to them. A replica stays until you remove the client. The
owner restores from it with the tenant's credentials and the owner key.`,
		Example: `  cairn server client add laptop --quota 200GiB
  cairn server client add db1 --password-file db1.pass --min-interval 1h
  cairn server client add site1 --replica --quota 2TiB`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error { return runServerClientAdd(c.Context(), g, opts, ao, a[0]) },
	}
	f := c.Flags()
	f.StringVar(&ao.PasswordFile, "password-file", "", "read the client's password from this file (default: generate one)")
	f.StringVar(&ao.Quota, "quota", "", "most bytes the client may store, e.g. 200GiB (default: unlimited)")
	f.BoolVar(&ao.AppendOnly, "append-only", true, "refuse deletes (except restic locks) and overwrites")
	f.DurationVar(&ao.MinInterval, "min-interval", 0, "refuse snapshots closer together than this, e.g. 1h")
	f.BoolVar(&ao.Replica, "replica", false, "a replica tenant: another cairn server's copies of its repositories, stored content-named, append-only")
	return c
}

func runServerClientAdd(ctx context.Context, g *GlobalOptions, opts *ServerOptions, ao ServerClientAddOptions, name string) error {
	var quota uint64
	if ao.Quota != "" {
		q, err := parseSizeFlag("quota", ao.Quota)
		if err != nil {
			return err
		}
		quota = q
	}
	if ao.MinInterval < 0 {
		return usageError{errors.New("--min-interval must not be negative")}
	}
	if ao.Replica && (!ao.AppendOnly || ao.MinInterval != 0) {
		return usageError{errors.New("--replica is append-only and takes copies as they come: give neither --append-only=false nor --min-interval")}
	}
	pw, generated, err := clientPassword(ao.PasswordFile)
	if err != nil {
		return err
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		c := state.Client{Name: name, Quota: int64(quota), AppendOnly: ao.AppendOnly, MinInterval: ao.MinInterval, Created: time.Now(), Replica: ao.Replica}
		err = d.NewClient(ctx, c, pw)
		if errors.Is(err, state.ErrClientExists) {
			return withHint(err, "choose another name, or `cairn server client passwd %s`", name)
		}
		if err != nil {
			return err
		}
		if g.JSON {
			out := clientAddedJSON{MessageType: "client_added", Name: name, Quota: quota, AppendOnly: ao.AppendOnly, Replica: ao.Replica}
			if generated {
				out.Password = string(pw)
			}
			return writeJSON(g.stdout, out)
		}
		g.printf("added client %s\n", name)
		if generated {
			g.printf("password: %s\n", pw)
			g.printf("It is shown only now; store it on the client.\n")
		}
		if ao.Replica {
			g.printf("replica tenant: on the primary server, `cairn server destination add NAME --location rest:https://%s@HOST:PORT/%s --credentials-file FILE --server-fingerprint FP --all` (FP: `cairn server fingerprint` here)\n", name, name)
			g.printf("replicas: rest:https://%s:PASSWORD@HOST:PORT/%s/CLIENT/REPO, kept until you remove the client\n", name, name)
			return nil
		}
		g.printf("repository URL: rest:https://%s:PASSWORD@HOST:PORT/%s/REPO (http:// on loopback)\n", name, name)
		return nil
	})
}

// ServerClientSetOptions are `server client set`'s flags; only those given
// change.
type ServerClientSetOptions struct {
	Quota       string
	AppendOnly  bool
	MinInterval time.Duration
	WarnAfter   string
	AlertAfter  string
	DrillAfter  string
}

func newServerClientSetCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var so ServerClientSetOptions
	c := &cobra.Command{
		Use:   "set NAME",
		Short: "Change an existing client's settings, keeping its data and history",
		Long: `Change the settings of an existing client in place: its repositories,
snapshots, counters, policy and jobs stay. Only the flags given change.
--warn-after and --alert-after set how old its last backup may be before
` + "`cairn server status`" + ` and the alerts call it WARNING or ALERT (0: the
defaults, 24h and 28h); the warning must come first. --drill-after sets how
old its last restore drill (` + "`cairn drill`" + `, recorded per repository) may be
before it alerts (0: the default, 35d). Changes take effect at
once, also on a running server. The password has its own command, ` + "`client passwd`" + `.`,
		Example: `  cairn server client set laptop --quota 500GiB
  cairn server client set db1 --min-interval 0 --append-only=false
  cairn server client set nas --warn-after 8d --alert-after 9d
  cairn server client set nas --drill-after 90d`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			return runServerClientSet(c.Context(), g, opts, c.Flags().Changed, so, a[0])
		},
	}
	f := c.Flags()
	f.StringVar(&so.Quota, "quota", "", "most bytes the client may store, e.g. 200GiB; 0 or \"unlimited\" for no limit")
	f.BoolVar(&so.AppendOnly, "append-only", true, "refuse deletes (except restic locks) and overwrites")
	f.DurationVar(&so.MinInterval, "min-interval", 0, "refuse snapshots closer together than this; 0 for none")
	f.StringVar(&so.WarnAfter, "warn-after", "", "backup age at which the client is WARNING, such as 26h or 2d (0: the default, 24h)")
	f.StringVar(&so.AlertAfter, "alert-after", "", "backup age at which the client is ALERT, such as 30h or 3d (0: the default, 28h)")
	f.StringVar(&so.DrillAfter, "drill-after", "", "age of the last restore drill at which the client is ALERT, such as 35d or 720h (0: the default, 35d)")
	return c
}

func runServerClientSet(ctx context.Context, g *GlobalOptions, opts *ServerOptions, changed func(string) bool, so ServerClientSetOptions, name string) error {
	var ch state.ClientChange
	if changed("quota") {
		var q uint64
		if so.Quota != "unlimited" {
			n, err := parseSizeFlag("quota", so.Quota)
			if err != nil {
				return err
			}
			q = n
		}
		ch.Quota = ptr(int64(q))
	}
	if changed("append-only") {
		ch.AppendOnly = ptr(so.AppendOnly)
	}
	if changed("min-interval") {
		if so.MinInterval < 0 {
			return usageError{fmt.Errorf("--min-interval %v must not be negative", so.MinInterval)}
		}
		ch.MinInterval = ptr(so.MinInterval)
	}
	// The ages take days ("8d") as well as Go durations ("192h"), all
	// through parseDays.
	var drillAfter *time.Duration
	for _, v := range []struct {
		flag, s string
		dst     **time.Duration
	}{{"warn-after", so.WarnAfter, &ch.WarnAfter}, {"alert-after", so.AlertAfter, &ch.AlertAfter}, {"drill-after", so.DrillAfter, &drillAfter}} {
		if !changed(v.flag) {
			continue
		}
		d, err := parseDays(v.s)
		if err != nil {
			return usageError{fmt.Errorf("--%s %q: %v; give a duration such as 8d or 30h", v.flag, v.s, err)}
		}
		*v.dst = ptr(d)
	}
	if ch == (state.ClientChange{}) && drillAfter == nil {
		return usageError{errors.New("nothing to change: give --quota, --min-interval, --append-only, --warn-after, --alert-after or --drill-after")}
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		err := d.State.UpdateClient(ctx, name, ch, alert.DefaultWarnAfter, alert.DefaultAlertAfter)
		switch {
		case errors.Is(err, state.ErrNoClient):
			return withHint(err, "see `cairn server client list`, or add it with `cairn server client add %s`", name)
		case errors.Is(err, state.ErrBadThresholds):
			return usageError{err}
		case err != nil:
			return err
		}
		if drillAfter != nil {
			if err := d.State.SetDrillAfter(ctx, name, *drillAfter); err != nil {
				return err
			}
		}
		c, err := d.State.Client(ctx, name)
		if err != nil {
			return err
		}
		das, err := d.State.DrillAfter(ctx)
		if err != nil {
			return err
		}
		drill := das[name]
		if drill <= 0 {
			drill = monitor.DefaultDrillAfter
		}
		th, err := d.State.Thresholds(ctx)
		if err != nil {
			return err
		}
		warn, alrt := th[name].WarnAfter, th[name].AlertAfter
		if warn <= 0 {
			warn = alert.DefaultWarnAfter
		}
		if alrt <= 0 {
			alrt = alert.DefaultAlertAfter
		}
		if g.JSON {
			return writeJSON(g.stdout, clientUpdatedJSON{MessageType: "client_updated", Name: name, Quota: c.Quota,
				AppendOnly: c.AppendOnly, MinInterval: c.MinInterval.String(),
				WarnAfter: warn.String(), AlertAfter: alrt.String(), DrillAfter: drill.String()})
		}
		interval := "none"
		if c.MinInterval > 0 {
			interval = c.MinInterval.String()
		}
		g.printf("client %s updated: quota %s, append-only %v, min interval %s, warn after %v, alert after %v, drill after %s\n",
			name, quotaText(c.Quota), c.AppendOnly, interval, warn, alrt, days(drill))
		return nil
	})
}

// parseDays reads a duration that may be given in days ("35d") or as Go
// writes durations ("720h"); negative is refused.
func parseDays(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		k, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, errors.New("not a number of days")
		}
		d = time.Duration(k) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New("not a duration")
		}
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// days writes a whole number of days as "35d", anything else as Go does.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func ptr[T any](v T) *T { return &v }

// clientPassword reads a password file, or generates a password.
func clientPassword(file string) (pw []byte, generated bool, err error) {
	if file == "" {
		return []byte(datadir.GeneratePassword()), true, nil
	}
	pw, err = readPasswordFile(file)
	if err != nil {
		return nil, false, err
	}
	if _, err := datadir.HashPassword(pw); err != nil {
		return nil, false, usageError{fmt.Errorf("password in %s: %w", file, err)}
	}
	return pw, false, nil
}

// backupAge renders how long ago t was, for people.
func backupAge(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

func flags(c state.Client) string {
	s := ""
	if c.AppendOnly {
		s += "append-only"
	}
	if c.Disabled {
		if s != "" {
			s += ","
		}
		s += "DISABLED"
	}
	if s == "" {
		s = "-"
	}
	return s
}

func quotaText(q int64) string {
	if q == 0 {
		return "unlimited"
	}
	return formatBytes(uint64(q))
}

func runServerClientList(ctx context.Context, g *GlobalOptions, d *datadir.Data) error {
	clients, err := d.State.Clients(ctx)
	if err != nil {
		return err
	}
	ths, err := d.State.Thresholds(ctx)
	if err != nil {
		return err
	}
	now := monitor.Clock()()
	if g.JSON {
		out := []clientJSON{}
		for _, c := range clients {
			stored, _ := d.StoredBytes(c.Name)
			out = append(out, newClientJSON(c, stored))
		}
		return writeJSON(g.stdout, out)
	}
	rows := [][]string{{"NAME", "LAST BACKUP", "STORED", "QUOTA", "FLAGS"}}
	var colours []string
	if isColourTerminal(g.stdout) {
		colours = []string{}
	}
	for _, c := range clients {
		stored, _ := d.StoredBytes(c.Name)
		rows = append(rows, []string{c.Name, backupAge(c.LastSnapshot, now), formatBytes(uint64(stored)), quotaText(c.Quota), flags(c)})
		if colours != nil {
			level, _ := monitor.ClientLevel(c, ths[c.Name], now)
			colours = append(colours, levelColour(level))
		}
	}
	return colourTable(g.stdout, rows, 1, colours)
}

func runServerClientShow(ctx context.Context, g *GlobalOptions, d *datadir.Data, name string) error {
	c, err := d.State.Client(ctx, name)
	if errors.Is(err, state.ErrNoClient) {
		return withHint(err, "see `cairn server client list`")
	}
	if err != nil {
		return err
	}
	stored, err := d.StoredBytes(name)
	if err != nil {
		return err
	}
	runNow, err := d.State.RunNow(ctx, name)
	if err != nil {
		return err
	}
	if g.JSON {
		m := newClientJSON(c, stored)
		if !runNow.IsZero() {
			m.RunNow = runNow.Local().Format(time.RFC3339)
		}
		if m.Maintenance, err = newMaintenanceJSON(ctx, d, name); err != nil {
			return err
		}
		return writeJSON(g.stdout, m)
	}
	last := "never"
	if !c.LastSnapshot.IsZero() {
		last = c.LastSnapshot.Local().Format("2006-01-02 15:04:05 MST") + " (" + backupAge(c.LastSnapshot, time.Now()) + ")"
	}
	interval := "none"
	if c.MinInterval > 0 {
		interval = c.MinInterval.String()
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", c.Name)
	fmt.Fprintf(tw, "last backup:\t%s\n", last)
	fmt.Fprintf(tw, "snapshots:\t%d received\n", c.Snapshots)
	fmt.Fprintf(tw, "stored:\t%s\n", formatBytes(uint64(stored)))
	fmt.Fprintf(tw, "quota:\t%s\n", quotaText(c.Quota))
	fmt.Fprintf(tw, "append-only:\t%v\n", c.AppendOnly)
	if c.Replica {
		fmt.Fprintf(tw, "replica:\tyes: another cairn server's copies, stored content-named, never overwritten or deleted\n")
	}
	fmt.Fprintf(tw, "disabled:\t%v\n", c.Disabled)
	fmt.Fprintf(tw, "min interval:\t%s\n", interval)
	fmt.Fprintf(tw, "requests:\t%d (%d refused or failed)\n", c.Requests, c.Errors)
	fmt.Fprintf(tw, "created:\t%s\n", c.Created.Local().Format("2006-01-02 15:04:05 MST"))
	if runNow.IsZero() {
		fmt.Fprintf(tw, "run now:\tnone asked\n")
	} else {
		fmt.Fprintf(tw, "run now:\tasked at %s, pending until the agent's next run report\n", runNow.Local().Format("2006-01-02 15:04:05 MST"))
	}
	if err := showMaintenance(ctx, tw, d, name); err != nil {
		return err
	}
	return tw.Flush()
}

func runServerClientSetDisabled(ctx context.Context, g *GlobalOptions, d *datadir.Data, name string, disabled bool) error {
	if err := d.State.SetDisabled(ctx, name, disabled); err != nil {
		return err
	}
	if disabled {
		g.printf("client %s disabled: its requests are refused (403)\n", name)
	} else {
		g.printf("client %s enabled\n", name)
	}
	return nil
}

func newServerClientRemoveCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var purge bool
	c := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a client; its data is kept unless --purge",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			return opts.withData(c.Context(), func(d *datadir.Data) error {
				where, err := d.ClientWhere(c.Context(), a[0])
				if err != nil {
					return err
				}
				if err := d.Remove(c.Context(), a[0], purge); err != nil {
					return err
				}
				if purge {
					g.printf("removed client %s and deleted its repositories in %s\n", a[0], where)
				} else {
					g.printf("removed client %s; its repositories stay in %s\n", a[0], where)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVar(&purge, "purge", false, "also delete the client's repositories")
	return c
}

func newServerClientPasswdCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a client's password (generated unless --password-file)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			pw, generated, err := clientPassword(file)
			if err != nil {
				return err
			}
			hash, err := datadir.HashPassword(pw)
			if err != nil {
				return err
			}
			return opts.withData(c.Context(), func(d *datadir.Data) error {
				if err := d.State.SetHash(c.Context(), a[0], hash); err != nil {
					return err
				}
				g.printf("password of client %s changed\n", a[0])
				if generated {
					g.printf("password: %s\n", pw)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&file, "password-file", "", "read the new password from this file")
	return c
}
