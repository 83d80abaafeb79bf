package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/checker"
)

// CheckOptions are check's flags.
type CheckOptions struct {
	ReadData   bool
	ReadSubset string // "1/30", "5%", "500MiB"
	StateFile  string
}

func newCheckCommand(g *GlobalOptions) *cobra.Command {
	var opts CheckOptions
	c := &cobra.Command{
		Use:   "check",
		Short: "Verify the repository's structure, and with --read-data all its data",
		Long: `Verify that every file hashes to its name, every index fragment and snapshot
verifies, every indexed pack exists with the header the index has, and (owner
key) every tree loads and every file's content is indexed. --read-data also
reads every pack: its hash, and every blob the key can open;
--read-data-subset reads part of them, least recently verified first, so that
30 daily runs of --read-data-subset 1/30 verify every pack (what was verified
when is kept in the cache directory, or --state-file).

Either key also runs the R17 detections: forged snapshots (bad signature,
signer not in the roster), rollback (broken per-writer statement chains, a
newest statement behind what this machine committed or an earlier check saw),
replayed deleted snapshots (a tombstone names them), seq gaps without a
tombstone; and verifies every tombstone's signature. The output lists what was
checked. Exits 1 if anything is wrong; damaged packs are dropped from the
index by 'cairn repair'.`,
		Example: `  cairn check
  cairn check --read-data --json
  cairn check --read-data-subset 1/30   # daily, from cron`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runCheck(c.Context(), g, opts) },
	}
	c.Flags().BoolVar(&opts.ReadData, "read-data", false, "read and verify every pack and blob")
	c.Flags().StringVar(&opts.ReadSubset, "read-data-subset", "", "read and verify part of the packs: `N/M`, PCT% or a SIZE, least recently verified first")
	c.Flags().StringVar(&opts.StateFile, "state-file", "", "where the audit remembers what it verified (default: the cache directory)")
	return c
}

func runCheck(ctx context.Context, g *GlobalOptions, opts CheckOptions) error {
	copts := checker.Options{ReadData: opts.ReadData, StateFile: opts.StateFile}
	if opts.ReadSubset != "" {
		if opts.ReadData {
			return usageError{fmt.Errorf("--read-data reads every pack; drop it or --read-data-subset")}
		}
		s, err := checker.ParseSubset(opts.ReadSubset)
		if err != nil {
			return usageError{err}
		}
		copts.Subset = &s
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needMetadata(repo, "checking"); err != nil {
		return err
	}
	prog := newProgress(g, "check", "packs")
	if copts.ReadData || copts.Subset != nil {
		copts.Progress = prog.counter() // packs read whole
	}
	rep, err := checker.Check(ctx, repo, copts)
	copts.Progress.Stop()
	prog.finish()
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if g.JSON {
		if err := writeJSON(g.stdout, checkMessage(rep)); err != nil {
			return err
		}
	} else {
		if !g.Quiet {
			for _, c := range rep.Checks {
				fmt.Fprintf(g.stdout, "checked: %s\n", c)
			}
			fmt.Fprintf(g.stdout, "%s, %s, %s, %s; %s read\n", plural(rep.Snapshots, "snapshot", "snapshots"), plural(rep.Packs, "pack", "packs"), plural(rep.Blobs, "blob", "blobs"), plural(rep.Trees, "tree", "trees"), formatBytes(rep.BytesRead))
			if a := rep.Audit; a != nil {
				fmt.Fprintf(g.stdout, "audit: %d of %d packs verified this run; %d verified within %d days, %d never", len(a.Verified), a.Packs, a.Within, a.WithinDays, a.Never)
				if a.Never == 0 && a.Packs > 0 {
					fmt.Fprintf(g.stdout, "; oldest verification %s ago", a.OldestAge.Round(time.Minute))
				}
				fmt.Fprintln(g.stdout)
			}
			for _, n := range rep.Notes {
				fmt.Fprintf(g.stdout, "note: %s\n", displayText(n))
			}
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(g.stderr, "problem: %s\n", displayText(p.String()))
		}
		if rep.OK() {
			g.printf("no problems found\n")
		}
	}
	if !rep.OK() {
		return checkFailure(rep, opts.ReadData)
	}
	return nil
}

// checkFailure is check's error: the first damaged pack in the words of
// UX.md, or the count of problems, and what to do next.
func checkFailure(rep *checker.Report, readData bool) error {
	if len(rep.BadPacks) > 0 {
		var first checker.Problem
		for _, p := range rep.Problems {
			if p.File == "data/"+rep.BadPacks[0] {
				first = p
				break
			}
		}
		what := fmt.Sprintf("pack data/%s… %s", rep.BadPacks[0][:4], strings.TrimPrefix(first.Message, "pack "))
		if len(first.Snapshots) > 0 {
			what += "; snapshots " + strings.Join(first.Snapshots, ", ") + " need it"
		}
		if n := len(rep.Problems) - 1; n > 0 {
			what += fmt.Sprintf(" (and %d more problems)", n)
		}
		hint := "run `cairn check --read-data`, then `cairn repair`"
		if readData {
			hint = "run `cairn repair`"
		}
		return withHint(fmt.Errorf("%s", what), "%s", hint)
	}
	hint := "run `cairn check --read-data` for a full picture"
	if readData {
		hint = "restore what you can now; the snapshots named need the damaged files"
	}
	return withHint(fmt.Errorf("check found %d problems", len(rep.Problems)), "%s", hint)
}
