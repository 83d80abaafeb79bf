package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
)

// PruneOptions are prune's flags.
type PruneOptions struct {
	Grace           time.Duration
	RepackThreshold float64 // percent
	DryRun          bool
}

func newPruneCommand(g *GlobalOptions) *cobra.Command {
	var opts PruneOptions
	c := &cobra.Command{
		Use:   "prune",
		Short: "Delete data no snapshot needs, repack mostly-unused packs",
		Long: `Delete packs no remaining snapshot reaches and repack packs that are mostly
garbage, with the owner or the server key alone (sealed blobs are copied
without being opened). Packs are first condemned in a signed plan and deleted
by a later prune once --grace has passed on the storage's clock and they are
still unused, so backups running meanwhile lose nothing; --grace 0 deletes in
the same run, for when nothing else writes to the repository. A killed prune
leaves a consistent repository; the next run finishes the job. On a
repository of a cairn server the owner asks the server, which prunes now.`,
		Example: `  cairn prune
  cairn prune --key-file server.key --grace 0 --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runPrune(c.Context(), g, opts) },
	}
	c.Flags().DurationVar(&opts.Grace, "grace", prune.DefaultGrace, "delete condemned packs only after this long (storage time)")
	c.Flags().Float64Var(&opts.RepackThreshold, "repack-threshold", 50, "repack packs at least PCT percent unused")
	c.Flags().BoolVarP(&opts.DryRun, "dry-run", "n", false, "only show what would be done")
	return c
}

func runPrune(ctx context.Context, g *GlobalOptions, opts PruneOptions) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	return runPruneRepo(ctx, g, repo, opts)
}

func runPruneRepo(ctx context.Context, g *GlobalOptions, repo *repository.Repository, opts PruneOptions) error {
	if err := needMetadata(repo, "pruning"); err != nil {
		return err
	}
	if repo.Keys().CoordSign == nil {
		return roleError{verb: "pruning", need: "the owner or server key", have: repo.Keys().Role, base: crypto.ErrNeedsMetadata}
	}
	if opts.RepackThreshold <= 0 || opts.RepackThreshold > 100 || opts.Grace < 0 {
		return usageError{fmt.Errorf("--repack-threshold must be in (0, 100] and --grace not negative")}
	}
	if or := serverDeletes(repo); or != nil {
		return pruneOnServer(ctx, g, repo, or, opts)
	}
	prog := newProgress(g, "prune", "packs")
	counter := prog.counter()
	rep, err := prune.Run(ctx, repo, prune.Options{Grace: opts.Grace, RepackThreshold: opts.RepackThreshold / 100, DryRun: opts.DryRun, Log: g.logger(),
		Progress: counter})
	counter.Stop()
	prog.finish()
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	return printPrune(g, rep, opts.DryRun)
}

// printPrune prints a prune's report, or a server's.
func printPrune(g *GlobalOptions, rep *prune.Report, dryRun bool) error {
	if g.JSON {
		return writeJSON(g.stdout, pruneMessage(rep, dryRun))
	}
	if g.Quiet {
		return nil
	}
	fmt.Fprintf(g.stdout, "%s %s in %s\n", plural(rep.Snapshots, "snapshot reaches", "snapshots reach"), plural(rep.LiveBlobs, "blob", "blobs"), plural(rep.Packs, "pack", "packs"))
	fmt.Fprintf(g.stdout, "condemned %d packs (%d unused, %d to repack, %d unindexed; %s unused)\n",
		len(rep.Condemned), rep.DeadPacks, rep.RepackedPacks, rep.Unindexed, formatBytes(rep.DeadBytes))
	if rep.NewPacks > 0 {
		fmt.Fprintf(g.stdout, "repacked %s into %d new packs\n", formatBytes(rep.CopiedBytes), rep.NewPacks)
	}
	fmt.Fprintf(g.stdout, "deleted %d packs, resurrected %d; index: %d fragments written, %d removed; plans: %d swept, %d waiting for their grace period\n",
		len(rep.Deleted), len(rep.Resurrected), rep.IndexWritten, rep.IndexRemoved, rep.PlansSwept, rep.PlansPending)
	for _, n := range rep.Notes {
		fmt.Fprintf(g.stdout, "note: %s\n", n)
	}
	return nil
}
