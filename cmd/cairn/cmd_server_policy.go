package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
)

// ServerPolicyOptions are `server client policy`'s flags.
type ServerPolicyOptions struct {
	Policy  policy.Policy
	Within  string
	MaxSize string
	Show    bool
	Clear   bool
}

func newServerClientPolicyCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var po ServerPolicyOptions
	po.Policy = policy.DefaultPolicy()
	c := &cobra.Command{
		Use:   "policy NAME",
		Short: "Set, show or clear the retention policy the server applies to a client",
		Long: `Set the retention policy the server applies, every --every, to each of the
client's cairn repositories: it forgets snapshots by the rules (leaving a
signed tombstone for each), then garbage-collects with --grace. Snapshots are
aged by the server's own receipts, never by the time a client claims. The
server does this with its metadata identity alone: it never reads file
names or contents. Setting a policy replaces the previous one.

--max-size makes the policy space-driven: each repository is kept within
SIZE by deleting its least important snapshots, never a floor snapshot; when
that is not enough the client's uploads are refused with 507 and the metric
cairn_client_budget_exceeded is 1 until a run meets the budget or the policy
changes. Restic repositories are left alone.`,
		Example: `  cairn server client policy laptop --keep-daily 7 --keep-weekly 4 --keep-monthly 12
  cairn server client policy db1 --max-size 500GiB --every 30m
  cairn server client policy laptop --show`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			return runServerClientPolicy(c.Context(), g, opts, po, a[0])
		},
	}
	f := c.Flags()
	p := &po.Policy
	f.IntVar(&p.Keep.Last, "keep-last", 0, "keep the last N snapshots")
	f.IntVar(&p.Keep.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours")
	f.IntVar(&p.Keep.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last N days")
	f.IntVar(&p.Keep.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last N weeks")
	f.IntVar(&p.Keep.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last N months")
	f.IntVar(&p.Keep.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last N years")
	f.StringVar(&po.Within, "keep-within", "", "keep snapshots within DURATION of the newest (e.g. 1y2m3d4h)")
	f.StringArrayVar(&p.Keep.Tags, "keep-tag", nil, "keep snapshots with these tags (comma-separated: all of them); repeatable")
	f.StringVar(&p.GroupBy, "group-by", policy.DefaultGroupBy, "group snapshots by any of host, paths, tags")
	f.IntVar(&p.Importance, "importance", 0, "keep the N most important snapshots per group")
	f.StringVar(&po.MaxSize, "max-size", "", "space-driven: keep each repository within SIZE (e.g. 500GiB)")
	f.DurationVar(&p.Grace, "grace", prune.DefaultGrace, "delete unused packs only after this long (see cairn prune --grace)")
	f.DurationVar(&p.Every, "every", policy.DefaultEvery, "how often to apply the policy")
	f.BoolVar(&po.Show, "show", false, "show the policy, its budget state and the last jobs")
	f.BoolVar(&po.Clear, "clear", false, "remove the policy: the server leaves the client's repositories alone")
	return c
}

func runServerClientPolicy(ctx context.Context, g *GlobalOptions, opts *ServerOptions, po ServerPolicyOptions, name string) error {
	if po.Show && po.Clear {
		return usageError{errors.New("--show and --clear are alternatives")}
	}
	p := po.Policy
	if !po.Show && !po.Clear {
		var err error
		if po.Within != "" {
			if p.Within, err = retention.ParseDuration(po.Within); err != nil {
				return usageError{fmt.Errorf("--keep-within: %w", err)}
			}
		}
		if po.MaxSize != "" {
			n, err := parseSizeFlag("max-size", po.MaxSize)
			if err != nil {
				return err
			}
			if n == 0 {
				return usageError{fmt.Errorf("--max-size %q: give a size above zero, such as 500GiB", po.MaxSize)}
			}
			p.MaxSize = int64(n)
		}
		if err := p.Validate(); err != nil {
			return usageError{err}
		}
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		if _, err := d.State.Client(ctx, name); errors.Is(err, state.ErrNoClient) {
			return withHint(err, "see `cairn server client list`")
		} else if err != nil {
			return err
		}
		switch {
		case po.Show:
			if g.JSON {
				m, err := newMaintenanceJSON(ctx, d, name)
				if err != nil {
					return err
				}
				m.MessageType = "maintenance"
				return writeJSON(g.stdout, m)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 1, ' ', 0)
			if err := showMaintenance(ctx, tw, d, name); err != nil {
				return err
			}
			return tw.Flush()
		case po.Clear:
			if err := d.State.ClearPolicy(ctx, name); err != nil {
				return err
			}
			g.printf("policy of client %s cleared: the server leaves its repositories alone\n", name)
			return nil
		}
		if err := d.State.SetPolicy(ctx, name, p); err != nil {
			return usageError{err}
		}
		if g.JSON {
			return writeJSON(g.stdout, policySetJSON{MessageType: "policy_set", Client: name, Policy: p.String()})
		}
		g.printf("policy of client %s: %s\n", name, p)
		return nil
	})
}

// showMaintenance writes a client's policy, budget state and last jobs,
// for `server client show` and `policy --show`.
func showMaintenance(ctx context.Context, w io.Writer, d *datadir.Data, name string) error {
	p, ok, err := d.State.PolicyOf(ctx, name)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(w, "policy:\tnone (the server leaves the repositories alone)\n")
	} else {
		fmt.Fprintf(w, "policy:\t%s\n", p)
		b, err := d.State.BudgetOf(ctx, name)
		if err != nil {
			return err
		}
		if b.Exceeded {
			fmt.Fprintf(w, "budget:\tEXCEEDED since %s: %s (uploads refused with 507)\n", b.Since.Local().Format("2006-01-02 15:04:05 MST"), b.Note)
		} else if p.MaxSize > 0 {
			fmt.Fprintf(w, "budget:\tmet\n")
		}
	}
	jobs, err := d.State.Jobs(ctx, name, 10)
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		fmt.Fprintf(w, "maintenance:\tnot run yet\n")
	} else {
		n, removed, packs, freed, err := d.State.JobTotals(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "maintained:\t%d jobs: removed %d snapshots, deleted %d packs, freed %s\n", n, removed, packs, formatBytes(uint64(max(freed, 0))))
	}
	for i, j := range jobs {
		label := ""
		if i == 0 {
			label = "maintenance:"
		}
		res := fmt.Sprintf("removed %d snapshots, deleted %d packs, freed %s", j.SnapshotsRemoved, j.PacksDeleted, formatBytes(uint64(max(j.BytesFreed, 0))))
		if j.Error != "" {
			res += "; ERROR: " + j.Error
		}
		fmt.Fprintf(w, "%s\t%s %s (%s): %s\n", label, j.Start.Local().Format("2006-01-02 15:04:05"), j.Repo,
			j.End.Sub(j.Start).Round(time.Millisecond), res)
	}
	return nil
}
