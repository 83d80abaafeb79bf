package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/retention"
)

// SnapshotsOptions are snapshots' flags.
type SnapshotsOptions struct {
	Filter  SnapshotFilter
	Latest  int
	GroupBy string
	Compact bool
}

func newSnapshotsCommand(g *GlobalOptions) *cobra.Command {
	var opts SnapshotsOptions
	c := &cobra.Command{
		Use:   "snapshots [ID...]",
		Short: "List snapshots, oldest first",
		Long: `List snapshots, oldest first by policy time. With the owner key: ID, time,
host, signer, tags and paths. With a server key the paths are sealed: the path
group is shown. With a writer key only that writer's own snapshots are listed,
as far as their signed statements tell (sequence number, time, ID).

The signer is "owner", the writer's roster name, "revoked:<name>" or
"unknown". Policy time is the server's receipt time, else the owner's claimed
time, else for a writer the earlier of its claim and the storage's time; the
time column shows it after the claimed time where they differ by more than a
minute. A snapshot whose host label its signer is not bound to is marked
"not bound to host"; "latest" and --host never pick it.

IDs (or unique prefixes, or "latest") list only those snapshots. --latest N
lists the newest N of each group of host and paths (or of --group-by);
--group-by host,paths,tags lists each group under a heading (in --json: one
object per group with its group_key).`,
		Example: `  cairn snapshots
  cairn snapshots --host web1 --tag daily --json
  cairn snapshots --latest 1 --compact
  cairn snapshots 4f9c2a1e latest`,
		RunE: func(c *cobra.Command, args []string) error { return runSnapshots(c.Context(), g, opts, args) },
	}
	addFilterFlags(c, &opts.Filter)
	c.Flags().IntVar(&opts.Latest, "latest", 0, "list only the newest `N` snapshots of each group")
	c.Flags().StringVar(&opts.GroupBy, "group-by", "", "group by `FIELDS`: any of host, paths, tags, comma-separated")
	c.Flags().BoolVarP(&opts.Compact, "compact", "c", false, "list only ID, time, host and tags")
	return c
}

func snapshotToJSON(s *repository.Snapshot) snapshotJSON {
	st := s.File.Statement
	j := snapshotJSON{MessageType: "snapshot", ID: s.ID.String(), ShortID: s.ID.Short(), Time: st.Time.Local().Format(time.RFC3339),
		Writer: fmt.Sprintf("%x", st.Writer[:]), Seq: st.Seq, Tree: st.Root.String(), Paths: []string{}, Tags: []string{},
		Signer: s.Standing.Signer.String(), Impostor: s.Standing.Impostor, Suspect: s.Standing.Suspect}
	if pt := s.Standing.Time; !pt.Equal(st.Time) {
		j.PolicyTime = pt.Local().Format(time.RFC3339)
	}
	if s.Meta != nil {
		j.Host, j.PathGroup = s.Meta.HostLabel, s.Meta.PathGroup
		if s.Meta.Tags != nil {
			j.Tags = s.Meta.Tags
		}
	} else {
		j.Sealed = true
	}
	if s.Owner != nil {
		j.Paths, j.Hostname, j.Username = s.Owner.Paths, s.Owner.Hostname, s.Owner.Username
	}
	return j
}

func runSnapshots(ctx context.Context, g *GlobalOptions, opts SnapshotsOptions, ids []string) error {
	if opts.Latest < 0 {
		return usageError{fmt.Errorf("--latest %d: give a count of 1 or more", opts.Latest)}
	}
	gbText := opts.GroupBy
	if gbText == "" && opts.Latest > 0 {
		gbText = "host,paths"
	}
	gb, err := retention.ParseGroupBy(gbText)
	if err != nil {
		return usageError{err}
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	snaps, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	writerOnly := !repo.CanReadMetadata()
	if writerOnly {
		// A writer reads nothing sealed: list its own signed statements.
		me := repo.Keys().SignerID()
		var own []*repository.Snapshot
		for _, s := range snaps {
			if bytes.Equal(s.File.Statement.Writer[:], me) {
				own = append(own, s)
			}
		}
		snaps = own
	}
	if len(ids) > 0 {
		var picked []*repository.Snapshot
		for _, id := range ids {
			s, err := findSnapshot(snaps, id, &opts.Filter)
			if err != nil {
				return err
			}
			if !slices.Contains(picked, s) {
				picked = append(picked, s)
			}
		}
		// Oldest first, as always.
		snaps = slices.DeleteFunc(slices.Clone(snaps), func(s *repository.Snapshot) bool { return !slices.Contains(picked, s) })
	}
	snaps = opts.Filter.apply(snaps)
	keys, groups := groupSnapshots(snaps, gb, opts.Latest)
	if g.JSON {
		if opts.GroupBy == "" {
			out := []snapshotJSON{}
			for _, s := range flatten(snaps, groups) {
				out = append(out, snapshotToJSON(s))
			}
			return writeJSON(g.stdout, out)
		}
		out := []snapshotGroupJSON{}
		for _, k := range keys {
			list := []snapshotJSON{}
			for _, s := range groups[k] {
				list = append(list, snapshotToJSON(s))
			}
			out = append(out, snapshotGroupJSON{MessageType: "snapshot_group", GroupKey: groupKeyOf(groups[k][0], gb), Snapshots: list})
		}
		return writeJSON(g.stdout, out)
	}
	if writerOnly || opts.GroupBy == "" {
		return printSnapshotTable(g, repo, flatten(snaps, groups), opts, writerOnly)
	}
	for i, k := range keys {
		if i > 0 {
			fmt.Fprintln(g.stdout)
		}
		fmt.Fprintf(g.stdout, "snapshots for %s:\n", groupHeading(groups[k][0], gb))
		if err := printSnapshotTable(g, repo, groups[k], opts, false); err != nil {
			return err
		}
	}
	return nil
}

// groupSnapshots splits snaps (oldest first) by gb, keeping the newest
// latest of each group when latest > 0. Without groups and without
// --latest, there is one group, "".
func groupSnapshots(snaps []*repository.Snapshot, gb retention.GroupBy, latest int) ([]string, map[string][]*repository.Snapshot) {
	groups := map[string][]*repository.Snapshot{}
	var keys []string
	for _, s := range snaps {
		k := groupKey(s, gb)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], s)
	}
	if latest > 0 {
		for k, list := range groups {
			if len(list) > latest {
				groups[k] = list[len(list)-latest:]
			}
		}
	}
	return keys, groups
}

// flatten lists the grouped snapshots in the order of snaps (oldest first).
func flatten(snaps []*repository.Snapshot, groups map[string][]*repository.Snapshot) []*repository.Snapshot {
	kept := map[*repository.Snapshot]bool{}
	for _, list := range groups {
		for _, s := range list {
			kept[s] = true
		}
	}
	return slices.DeleteFunc(slices.Clone(snaps), func(s *repository.Snapshot) bool { return !kept[s] })
}

func groupKey(s *repository.Snapshot, gb retention.GroupBy) string {
	j := groupKeyOf(s, gb)
	host := "\x00" // not grouped by host, or no host label known
	if j.Hostname != nil {
		host = *j.Hostname
	}
	return fmt.Sprintf("%q %q %q %q", host, j.Paths, j.PathGroup, j.Tags)
}

// groupKeyOf is a group's key as restic's --group-by --json shows it.
func groupKeyOf(s *repository.Snapshot, gb retention.GroupBy) groupKeyJSON {
	var k groupKeyJSON
	if gb.Host && s.Meta != nil {
		host := s.Meta.HostLabel
		k.Hostname = &host
	}
	if gb.Paths {
		switch {
		case s.Owner != nil:
			k.Paths = sortedPaths(s.Owner.Paths)
		case s.Meta != nil:
			k.PathGroup = s.Meta.PathGroup
		}
	}
	if gb.Tags && s.Meta != nil {
		tags := slices.Clone(s.Meta.Tags)
		slices.Sort(tags)
		k.Tags = tags
	}
	return k
}

func sortedPaths(p []string) []string {
	c := append([]string{}, p...)
	slices.Sort(c)
	return c
}

// groupHeading is "(host [web1], paths [/etc, /home])".
func groupHeading(s *repository.Snapshot, gb retention.GroupBy) string {
	j := groupKeyOf(s, gb)
	var parts []string
	if j.Hostname != nil {
		parts = append(parts, "host ["+displayText(*j.Hostname)+"]")
	}
	switch {
	case j.Paths != nil:
		var dp []string
		for _, x := range j.Paths {
			dp = append(dp, displayText(x))
		}
		parts = append(parts, "paths ["+strings.Join(dp, ", ")+"]")
	case gb.Paths && s.Meta != nil:
		parts = append(parts, "paths [group:"+displayText(j.PathGroup)+"]")
	}
	if gb.Tags && s.Meta != nil {
		parts = append(parts, "tags ["+displayText(strings.Join(j.Tags, ", "))+"]")
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// plural is "1 snapshot", "2 snapshots".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func printSnapshotTable(g *GlobalOptions, repo *repository.Repository, snaps []*repository.Snapshot, opts SnapshotsOptions, writerOnly bool) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	if writerOnly {
		fmt.Fprintln(tw, "ID\tSeq\tTime\tWriter")
		for _, s := range snaps {
			st := s.File.Statement
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.ID.Short(), st.Seq, st.Time.Local().Format("2006-01-02 15:04:05"), shortHex(st.Writer[:]))
		}
		tw.Flush()
		fmt.Fprintf(g.stdout, "%s by this writer; host, tags and paths are sealed (this is a writer key)\n", plural(len(snaps), "snapshot", "snapshots"))
		return nil
	}
	if opts.Compact {
		fmt.Fprintln(tw, "ID\tTime\tHost\tTags")
		for _, s := range snaps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID.Short(), timeCell(s), displayText(s.Meta.HostLabel), displayText(strings.Join(s.Meta.Tags, ",")))
		}
		tw.Flush()
		if !g.Quiet {
			fmt.Fprintln(g.stdout, plural(len(snaps), "snapshot", "snapshots"))
		}
		return nil
	}
	paths := "Paths"
	if !repo.CanReadContent() {
		paths = "Path group"
	}
	fmt.Fprintf(tw, "ID\tTime\tHost\tSigner\tTags\t%s\n", paths)
	for _, s := range snaps {
		p := "group:" + s.Meta.PathGroup
		if s.Owner != nil {
			var dp []string
			for _, x := range s.Owner.Paths {
				dp = append(dp, displayText(x))
			}
			p = strings.Join(dp, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID.Short(), timeCell(s),
			displayText(s.Meta.HostLabel), displayText(signerCell(s)), displayText(strings.Join(s.Meta.Tags, ",")), p)
	}
	tw.Flush()
	if !g.Quiet {
		fmt.Fprintln(g.stdout, plural(len(snaps), "snapshot", "snapshots"))
	}
	return nil
}

// timeCell is the claimed time, and the policy time after it where they
// differ by more than a minute (a writer's claim the receipt or the
// storage's time overrides).
func timeCell(s *repository.Snapshot) string {
	const layout = "2006-01-02 15:04:05"
	c := s.Time().Local().Format(layout)
	if d := s.Standing.Time.Sub(s.Time()); d > time.Minute || d < -time.Minute {
		c += " (policy " + s.Standing.Time.Local().Format(layout) + ")"
	}
	return c
}

// signerCell is the signer, marked where selection passes the snapshot over.
func signerCell(s *repository.Snapshot) string {
	c := s.Standing.Signer.String()
	switch {
	case s.Standing.Impostor:
		c += " (not bound to host)"
	case s.Standing.Suspect:
		c += " (suspect: no receipt)"
	}
	return c
}
