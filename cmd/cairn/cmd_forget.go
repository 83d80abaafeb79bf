package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/trust"
)

// ForgetOptions are forget's flags.
type ForgetOptions struct {
	Policy     retention.Policy
	Within     string
	GroupBy    string
	PolicyFile string
	Importance int
	MaxSize    string
	MinFree    string
	DryRun     bool
	Prune      bool
	PruneOpts  PruneOptions
	Filter     SnapshotFilter
}

func newForgetCommand(g *GlobalOptions) *cobra.Command {
	var opts ForgetOptions
	c := &cobra.Command{
		Use:   "forget [ID...]",
		Short: "Remove snapshots by a retention policy",
		Long: `Remove snapshots by a retention policy, per group of host label and path
group (--group-by). Rules work as restic's: a snapshot is kept if any rule
keeps it. --policy-file reads the same rules from a readable file:

  keep: {daily: 30, weekly: 5, monthly: 12, yearly: 10}
  group_by: host,paths

--importance N keeps the N snapshots per group that best cover the ages 0, 1,
2, 3, 7, 14, 21, 28, 56 and 112 days. --max-size / --min-free delete the least
important snapshots until the repository fits (with room for the next
backups), never a floor snapshot; when that is impossible forget refuses and
exits 1. Writers' snapshots are aged by when storage received them, not the
time they claim. Each removed snapshot leaves a signed tombstone. Works with
the owner or the server key, never a writer key. On a repository of a
cairn server the owner's forget is a signed request the server carries out
(with --prune, it prunes in the same run).

forget ID... removes exactly the snapshots named (IDs, unique prefixes or
"latest") and takes no policy. --host, --tag and --path restrict a policy to
the snapshots they match; the others are left alone.`,
		Example: `  cairn forget --keep-daily 7 --keep-weekly 4 --dry-run
  cairn forget --policy-file policy.yaml --prune --json
  cairn forget --max-size 500GiB --key-file server.key
  cairn forget --host web1 --tag daily --keep-daily 7
  cairn forget 4f9c2a1e 8812bb03`,
		RunE: func(c *cobra.Command, args []string) error { return runForget(c.Context(), g, opts, args) },
	}
	addFilterFlags(c, &opts.Filter)
	f := c.Flags()
	f.IntVar(&opts.Policy.Last, "keep-last", 0, "keep the last N snapshots")
	f.IntVar(&opts.Policy.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours")
	f.IntVar(&opts.Policy.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last N days")
	f.IntVar(&opts.Policy.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last N weeks")
	f.IntVar(&opts.Policy.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last N months")
	f.IntVar(&opts.Policy.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last N years")
	f.StringVar(&opts.Within, "keep-within", "", "keep snapshots within DURATION of the newest (e.g. 1y2m3d4h)")
	f.StringArrayVar(&opts.Policy.Tags, "keep-tag", nil, "keep snapshots with these tags (comma-separated: all of them); repeatable")
	f.StringVar(&opts.GroupBy, "group-by", "host,paths", "group snapshots by any of host, paths, tags")
	f.StringVar(&opts.PolicyFile, "policy-file", "", "read the policy from this file")
	f.IntVar(&opts.Importance, "importance", 0, "keep the N most important snapshots per group")
	f.StringVar(&opts.MaxSize, "max-size", "", "delete least-important snapshots until the repository fits SIZE")
	f.StringVar(&opts.MinFree, "min-free", "", "delete least-important snapshots until SIZE is free on the repository's disk")
	f.BoolVarP(&opts.DryRun, "dry-run", "n", false, "only show what would be removed")
	f.BoolVar(&opts.Prune, "prune", false, "prune after removing snapshots")
	f.DurationVar(&opts.PruneOpts.Grace, "grace", 24*time.Hour, "with --prune: see cairn prune --grace")
	f.Float64Var(&opts.PruneOpts.RepackThreshold, "repack-threshold", 50, "with --prune: see cairn prune --repack-threshold")
	return c
}

type forgetItem struct {
	ID      string   `json:"id"`
	ShortID string   `json:"short_id"`
	Time    string   `json:"time"` // policy time
	Host    string   `json:"host,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	Group   string   `json:"group"`
	Action  string   `json:"action"` // keep or remove
	Reasons []string `json:"reasons"`
}

func runForget(ctx context.Context, g *GlobalOptions, opts ForgetOptions, ids []string) error {
	if len(ids) > 0 {
		return runForgetIDs(ctx, g, opts, ids)
	}
	p := opts.Policy
	var err error
	if opts.Within != "" {
		if p.Within, err = retention.ParseDuration(opts.Within); err != nil {
			return usageError{fmt.Errorf("--keep-within: %w", err)}
		}
	}
	groupBy, importance := opts.GroupBy, opts.Importance
	if opts.PolicyFile != "" {
		src, err := os.ReadFile(opts.PolicyFile)
		if err != nil {
			return usageError{err}
		}
		cfg, err := retention.ParseConfig(src)
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", opts.PolicyFile, err)}
		}
		p, groupBy, importance = cfg.Keep, cfg.GroupBy, cfg.Importance
	}
	gb, err := retention.ParseGroupBy(groupBy)
	if err != nil {
		return usageError{err}
	}
	var maxSize, minFree uint64
	if opts.MaxSize != "" {
		if maxSize, err = parseSizeFlag("max-size", opts.MaxSize); err != nil {
			return err
		}
	}
	if opts.MinFree != "" {
		if minFree, err = parseSizeFlag("min-free", opts.MinFree); err != nil {
			return err
		}
	}
	space := maxSize > 0 || minFree > 0
	if p.Empty() && importance == 0 && !space {
		return usageError{errors.New("no policy given: it would remove every snapshot; pass --keep-* rules, --policy-file, --importance or --max-size/--min-free")}
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needMetadata(repo, "forgetting snapshots"); err != nil {
		return err
	}
	if repo.Keys().CoordSign == nil {
		return roleError{verb: "forgetting snapshots", need: "the owner or server key", have: repo.Keys().Role, base: crypto.ErrNeedsMetadata}
	}
	if or := serverDeletes(repo); or != nil {
		pol := trust.RequestPolicy{Keep: p, GroupBy: groupBy, Importance: importance, MaxSize: maxSize}
		return forgetPolicyOnServer(ctx, g, repo, or, opts, pol, minFree)
	}
	warn := func(m string) { fmt.Fprintf(g.stderr, "warning: %s\n", displayText(m)) }
	// Server-signed receipts, where present, give each snapshot its age (R14).
	l, err := forget.Load(ctx, repo, warn)
	if err != nil {
		return err
	}
	if !opts.Filter.empty() {
		// The policy sees only the snapshots the filter matches; the
		// others are neither kept nor removed by it.
		sub := *l
		sub.Snapshots = slices.DeleteFunc(slices.Clone(l.Snapshots), func(s retention.Snapshot) bool { return !opts.Filter.match(l.ByID[s.ID]) })
		l = &sub
	}
	rp := forget.Policy{Keep: p, GroupBy: gb, Importance: importance, MaxSize: maxSize, MinFree: minFree,
		Free: func() (uint64, error) {
			dir := strings.TrimPrefix(g.Repo, "local:")
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				return 0, fmt.Errorf("free space of %s: %w", dir, err)
			}
			return st.Bavail * uint64(st.Bsize), nil
		}}
	ds, err := forget.Decide(ctx, repo, l, rp)
	if errors.Is(err, retention.ErrBudget) {
		return withHint(err, "raise --max-size or free disk space; no snapshot was removed")
	}
	if err != nil {
		return err
	}
	byID := l.ByID
	var items []forgetItem
	removed := 0
	for _, d := range ds {
		it := forgetItem{ID: d.Snapshot.ID, ShortID: d.Snapshot.ID[:8], Time: d.Snapshot.Time.Format(time.RFC3339),
			Host: d.Snapshot.Host, Tags: d.Snapshot.Tags, Group: gb.Key(d.Snapshot), Action: "keep", Reasons: d.Reasons}
		if !d.Keep {
			it.Action = "remove"
			removed++
			if !opts.DryRun {
				if err := repo.ForgetSnapshot(ctx, byID[d.Snapshot.ID], strings.Join(d.Reasons, "; ")); err != nil {
					return fmt.Errorf("forget %s: %w", it.ShortID, err)
				}
			}
		}
		items = append(items, it)
	}
	if err := printForget(g, items, removed, opts.DryRun); err != nil {
		return err
	}
	if opts.Prune && !opts.DryRun {
		return runPruneRepo(ctx, g, repo, opts.PruneOpts)
	}
	return nil
}

// runForgetIDs removes exactly the snapshots named.
func runForgetIDs(ctx context.Context, g *GlobalOptions, opts ForgetOptions, ids []string) error {
	if !opts.Policy.Empty() || opts.Within != "" || opts.PolicyFile != "" || opts.Importance != 0 || opts.MaxSize != "" || opts.MinFree != "" {
		return usageError{errors.New("forget takes snapshot IDs or a policy (--keep-*, --policy-file, --importance, --max-size, --min-free), not both")}
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needMetadata(repo, "forgetting snapshots"); err != nil {
		return err
	}
	if repo.Keys().CoordSign == nil {
		return roleError{verb: "forgetting snapshots", need: "the owner or server key", have: repo.Keys().Role, base: crypto.ErrNeedsMetadata}
	}
	snaps, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	var picked []*repository.Snapshot
	for _, id := range ids {
		s, err := findSnapshot(snaps, id, &opts.Filter)
		if err != nil {
			return err // nothing removed yet: all or none are named right
		}
		if !slices.Contains(picked, s) {
			picked = append(picked, s)
		}
	}
	if or := serverDeletes(repo); or != nil {
		return forgetIDsOnServer(ctx, g, repo, or, opts, picked)
	}
	var items []forgetItem
	for _, s := range picked {
		it := forgetItem{ID: s.ID.String(), ShortID: s.ID.Short(), Time: s.Standing.Time.Format(time.RFC3339), Action: "remove", Reasons: []string{"named on the command line"}}
		if s.Meta != nil {
			it.Host, it.Tags = s.Meta.HostLabel, s.Meta.Tags
		}
		if !opts.DryRun {
			if err := repo.ForgetSnapshot(ctx, s, "named on the command line"); err != nil {
				return fmt.Errorf("forget %s: %w", it.ShortID, err)
			}
		}
		items = append(items, it)
	}
	if err := printForget(g, items, len(items), opts.DryRun); err != nil {
		return err
	}
	if opts.Prune && !opts.DryRun {
		return runPruneRepo(ctx, g, repo, opts.PruneOpts)
	}
	return nil
}

func printForget(g *GlobalOptions, items []forgetItem, removed int, dryRun bool) error {
	if g.JSON {
		return writeJSON(g.stdout, forgetMessage(items, removed, dryRun))
	}
	if !g.Quiet {
		last := "\x00"
		for _, it := range items {
			if it.Group != last {
				fmt.Fprintf(g.stdout, "group %s\n", displayText(it.Group))
				last = it.Group
			}
			fmt.Fprintf(g.stdout, "  %-6s %s  %s  %s\n", it.Action, it.ShortID, it.Time, displayText(strings.Join(it.Reasons, ", ")))
		}
		verb := "removed"
		if dryRun {
			verb = "would remove"
		}
		fmt.Fprintf(g.stdout, "%s %d of %s\n", verb, removed, plural(len(items), "snapshot", "snapshots"))
	}
	return nil
}
