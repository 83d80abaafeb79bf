package main

import (
	"context"
	"fmt"

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
		Short: "Drop missing or unreadable packs from the index; tell what was lost",
		Long: `Check the repository (with --read-data, every byte), drop the packs found
missing, truncated or damaged from the index (the new index fragment is stored
before the old one is removed), and report which snapshots lost data and, with
the owner key, which files and directories lost which content. Works with the
owner or the server key; the server key cannot read paths. Pack files are not
deleted: prune removes them later. Exits 1 if it could not repair.`,
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
		return writeJSON(g.stdout, map[string]any{"message_type": "repair", "report": rep})
	}
	if len(rep.Dropped) == 0 {
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
	for _, p := range rep.Dropped {
		fmt.Fprintf(g.stdout, "%s: pack data/%s\n", verb, p)
	}
	fmt.Fprintf(g.stdout, "%d blobs lost (no other copy); %d snapshots affected\n", rep.LostBlobs, len(rep.Snapshots))
	for _, a := range rep.Snapshots {
		fmt.Fprintf(g.stdout, "snapshot %s (%s): %d blobs lost\n", a.Snapshot, a.Time.Local().Format("2006-01-02 15:04:05"), a.LostBlobs)
		for _, f := range a.Files {
			if f.Dir {
				fmt.Fprintf(g.stdout, "  %s/ (directory and everything below it)\n", f.Path)
			} else {
				fmt.Fprintf(g.stdout, "  %s (%d of %d chunks)\n", f.Path, f.LostBlobs, f.Blobs)
			}
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(g.stdout, "note: %s\n", n)
	}
	return nil
}
