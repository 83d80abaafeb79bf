package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repair"
)

// RepairOptions are repair's flags.
type RepairOptions struct {
	ReadData bool
	DryRun   bool
}

func newRepairCommand(g *GlobalOptions) *cobra.Command {
	var opts RepairOptions
	c := &cobra.Command{
		Use:   "repair",
		Short: "Salvage damaged packs, drop them from the index; tell what was lost",
		Long: `Check the repository (with --read-data, every byte) and repair the packs found
missing, truncated or damaged: every blob of such a pack that still decrypts
and re-hashes to its ID is copied into a new pack of the same provenance
domain, the new packs are indexed, and then the damaged packs are dropped from
the index (each index fragment is replaced, the new one stored before the old
one is removed). It reports, for each snapshot that lost blobs, which
directories (their tree lost, with everything below) and files (chunks lost
of total) lost data.

The owner key salvages every blob. The server key opens manifest pages only:
it salvages packs of manifest pages and drops missing packs, but leaves a
damaged pack holding data or tree blobs in the index (exit 3) for a repair
with the owner key, and cannot name paths. Pack files are not deleted: prune
removes them later.`,
		Example: `  cairn repair --read-data --dry-run
  cairn repair --read-data --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runRepair(c.Context(), g, opts) },
	}
	c.Flags().BoolVar(&opts.ReadData, "read-data", false, "find damaged packs by reading every pack")
	c.Flags().BoolVarP(&opts.DryRun, "dry-run", "n", false, "only show what would be done")
	return c
}

func runRepair(ctx context.Context, g *GlobalOptions, opts RepairOptions) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if !repo.CanReadMetadata() || repo.Keys().CoordSign == nil {
		return roleError{verb: "repairing", need: "the owner or server key", have: repo.Keys().Role, base: crypto.ErrNeedsMetadata}
	}
	chk, err := checker.Check(ctx, repo, checker.Options{ReadData: opts.ReadData})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	rep, err := repair.Run(ctx, repo, chk.BadPacks, repair.Options{DryRun: opts.DryRun})
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if g.JSON {
		if err := writeJSON(g.stdout, repairMessage(rep)); err != nil {
			return err
		}
		return keptError(rep)
	}
	if len(rep.Packs) == 0 {
		g.printf("no missing or unreadable packs; nothing to repair\n")
		if !chk.OK() {
			g.printf("check found %d other problems; see `cairn check`\n", len(chk.Problems))
		}
		return nil
	}
	verb := "dropped from the index"
	if rep.DryRun {
		verb = "would drop from the index"
	}
	for _, p := range rep.Packs {
		switch {
		case p.Kept:
			fmt.Fprintf(g.stdout, "pack data/%s: left in the index (%d blobs; the server key cannot check data and tree blobs)\n", p.Pack, p.Blobs)
		case p.Missing:
			fmt.Fprintf(g.stdout, "pack data/%s: missing, %d blobs lost or elsewhere; %s\n", p.Pack, p.Blobs, verb)
		default:
			fmt.Fprintf(g.stdout, "pack data/%s: %d of %d blobs salvaged, %d lost; %s\n", p.Pack, p.Salvaged, p.Blobs, p.Lost, verb)
		}
	}
	switch {
	case rep.Repacked > 0 && rep.DryRun:
		fmt.Fprintf(g.stdout, "would repack %d salvaged blobs\n", rep.Repacked)
	case rep.Repacked > 0:
		fmt.Fprintf(g.stdout, "repacked %d salvaged blobs into %d new packs\n", rep.Repacked, len(rep.NewPacks))
	}
	fmt.Fprintf(g.stdout, "%d blobs lost (no other copy); %d snapshots affected\n", rep.LostBlobs, len(rep.Snapshots))
	for _, a := range rep.Snapshots {
		fmt.Fprintf(g.stdout, "snapshot %s (%s): %d blobs lost\n", a.Snapshot, a.Time.Local().Format("2006-01-02 15:04:05"), a.LostBlobs)
		for _, f := range a.Files {
			if f.Dir {
				fmt.Fprintf(g.stdout, "  %s (directory and everything below it)\n", displayText(strings.TrimSuffix(f.Path, "/")+"/"))
			} else {
				fmt.Fprintf(g.stdout, "  %s (%d of %d chunks)\n", displayText(f.Path), f.LostBlobs, f.Blobs)
			}
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(g.stdout, "note: %s\n", displayText(n))
	}
	return keptError(rep)
}

// keptError is exit 3 when the repair left damaged packs for the owner key.
func keptError(rep *repair.Report) error {
	if len(rep.Kept) == 0 {
		return nil
	}
	return withHint(lostError{fmt.Errorf("%d damaged packs hold data or tree blobs the server key cannot check, and were left in the index", len(rep.Kept))},
		"run `cairn repair --read-data` with the owner key to salvage them")
}
