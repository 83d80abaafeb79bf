package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/repository"
)

// SnapshotsOptions are snapshots' flags.
type SnapshotsOptions struct {
	Filter SnapshotFilter
}

func addFilterFlags(c *cobra.Command, f *SnapshotFilter) {
	c.Flags().StringArrayVar(&f.Hosts, "host", nil, "only snapshots with this host label (repeatable)")
	c.Flags().StringArrayVar(&f.Tags, "tag", nil, "only snapshots with this tag (repeatable: all must match)")
	c.Flags().StringArrayVar(&f.Paths, "path", nil, "only snapshots of this path (owner key; repeatable)")
}

func newSnapshotsCommand(g *GlobalOptions) *cobra.Command {
	var opts SnapshotsOptions
	c := &cobra.Command{
		Use:   "snapshots",
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
"not bound to host"; "latest" and --host never pick it.`,
		Example: `  cairn snapshots
  cairn snapshots --host web1 --tag daily --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runSnapshots(c.Context(), g, opts) },
	}
	addFilterFlags(c, &opts.Filter)
	return c
}

type snapshotJSON struct {
	ID        string   `json:"id"`
	ShortID   string   `json:"short_id"`
	Time      string   `json:"time"`
	Host      string   `json:"host,omitempty"`
	Hostname  string   `json:"hostname,omitempty"`
	Username  string   `json:"username,omitempty"`
	Paths     []string `json:"paths"`
	PathGroup string   `json:"path_group,omitempty"`
	Tags      []string `json:"tags"`
	Writer    string   `json:"writer"`
	Signer    string   `json:"signer"`
	// PolicyTime is what selection orders by, where it is not Time.
	PolicyTime string `json:"policy_time,omitempty"`
	Impostor   bool   `json:"impostor,omitempty"` // host label not bound to the signer
	Suspect    bool   `json:"suspect,omitempty"`  // a writer's, no receipt
	Seq        uint64 `json:"seq"`
	Tree       string `json:"tree"`
	Sealed     bool   `json:"sealed,omitempty"`
}

func snapshotToJSON(s *repository.Snapshot) snapshotJSON {
	st := s.File.Statement
	j := snapshotJSON{ID: s.ID.String(), ShortID: s.ID.Short(), Time: st.Time.Local().Format(time.RFC3339),
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

func runSnapshots(ctx context.Context, g *GlobalOptions, opts SnapshotsOptions) error {
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
	snaps = opts.Filter.apply(snaps)
	if g.JSON {
		out := make([]snapshotJSON, 0, len(snaps))
		for _, s := range snaps {
			out = append(out, snapshotToJSON(s))
		}
		return writeJSON(g.stdout, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	if writerOnly {
		fmt.Fprintln(tw, "ID\tSeq\tTime\tWriter")
		for _, s := range snaps {
			st := s.File.Statement
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.ID.Short(), st.Seq, st.Time.Local().Format("2006-01-02 15:04:05"), shortHex(st.Writer[:]))
		}
		tw.Flush()
		fmt.Fprintf(g.stdout, "%d snapshots by this writer; host, tags and paths are sealed (this is a writer key)\n", len(snaps))
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
		fmt.Fprintf(g.stdout, "%d snapshots\n", len(snaps))
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
