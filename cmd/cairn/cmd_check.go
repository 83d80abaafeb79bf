package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/checker"
)

// CheckOptions are check's flags.
type CheckOptions struct {
	ReadData bool
}

func newCheckCommand(g *GlobalOptions) *cobra.Command {
	var opts CheckOptions
	c := &cobra.Command{
		Use:   "check",
		Short: "Verify the repository's structure, and with --read-data all its data",
		Long: `Verify that every file hashes to its name, every index fragment and snapshot
verifies, every indexed pack exists with the header the index has, and (owner
key) every tree loads and every file's content is indexed. --read-data also
reads every pack: its hash, and every blob the key can open. Works with the
owner or the server key. Exits 1 if anything is wrong.`,
		Example: `  cairn check
  cairn check --read-data --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runCheck(c.Context(), g, opts) },
	}
	c.Flags().BoolVar(&opts.ReadData, "read-data", false, "read and verify every pack and blob")
	return c
}

func runCheck(ctx context.Context, g *GlobalOptions, opts CheckOptions) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needMetadata(repo, "checking"); err != nil {
		return err
	}
	rep, err := checker.Check(ctx, repo, checker.Options{ReadData: opts.ReadData})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if g.JSON {
		if rep.Problems == nil {
			rep.Problems = []checker.Problem{}
		}
		if rep.Notes == nil {
			rep.Notes = []string{}
		}
		if err := writeJSON(g.stdout, map[string]any{"message_type": "check", "ok": rep.OK(), "report": rep}); err != nil {
			return err
		}
	} else {
		if !g.Quiet {
			for _, c := range rep.Checks {
				fmt.Fprintf(g.stdout, "checked: %s\n", c)
			}
			fmt.Fprintf(g.stdout, "%d snapshots, %d packs, %d blobs, %d trees; %s read\n", rep.Snapshots, rep.Packs, rep.Blobs, rep.Trees, formatBytes(rep.BytesRead))
			for _, n := range rep.Notes {
				fmt.Fprintf(g.stdout, "note: %s\n", n)
			}
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(g.stderr, "problem: %s\n", p)
		}
		if rep.OK() {
			g.printf("no problems found\n")
		}
	}
	if !rep.OK() {
		hint := "run `cairn check --read-data` for a full picture"
		if opts.ReadData {
			hint = "restore what you can now; the snapshots named need the damaged files"
		}
		return withHint(fmt.Errorf("check found %d problems", len(rep.Problems)), "%s", hint)
	}
	return nil
}
