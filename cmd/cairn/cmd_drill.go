package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/trust"
	"github.com/cairnbackup/cairn/internal/walker"
)

// DrillOptions are drill's flags.
type DrillOptions struct {
	Files  int
	Bytes  string
	Filter SnapshotFilter
}

func newDrillCommand(g *GlobalOptions) *cobra.Command {
	var opts DrillOptions
	c := &cobra.Command{
		Use:   "drill [SNAPSHOT]",
		Short: "Prove a snapshot restorable: restore a random sample of its files and check them",
		Long: `A restore drill: pick up to --files regular files at random from a snapshot
(default the latest; --host, --tag, --path choose among snapshots), at most
--bytes in all, restore them into a new temporary directory (under $TMPDIR)
and check each against its content identity sealed at backup. The directory is
removed afterwards. On a repository of a cairn server, a drill that passed
is recorded there, signed by the owner key (the server's status page and
` + "`cairn server status`" + ` show when each repository was last proven
restorable, and alert when that is older than --drill-after, default 35
days); a local repository's drill only reports. Exit 0 when every sampled file came back intact, 1 when
any did not (each named on stderr). Needs the owner key; reads only the
sampled files' data.`,
		Example: `  cairn drill
  cairn drill --files 100 --bytes 1GiB --host laptop`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			arg := "latest"
			if len(args) == 1 {
				arg = args[0]
			}
			return runDrill(c.Context(), g, opts, arg)
		},
	}
	f := c.Flags()
	f.IntVar(&opts.Files, "files", 20, "how many files to sample")
	f.StringVar(&opts.Bytes, "bytes", "256MiB", "most bytes to restore in all")
	addFilterFlags(c, &opts.Filter)
	return c
}

type drillFile struct {
	path string
	size uint64
}

// drillSample picks up to n regular files of the snapshot at random
// (reservoir sampling, so memory stays at n whatever the snapshot holds),
// among those no larger than budget, then keeps as many as fit in budget.
// It returns them and how many regular files there were.
func drillSample(ctx context.Context, repo *repository.Repository, snap *repository.Snapshot, n int, budget uint64, rng *rand.Rand) ([]drillFile, int, int, error) {
	var pool []drillFile
	seen, total, lost := 0, 0, 0
	err := walker.WalkLost(repository.ReadFor(ctx, snap.Signer()), repo, snap.File.Statement.Root, func(p string, nd *snapshot.Node) error {
		if nd.Type != snapshot.TypeFile {
			return nil
		}
		total++
		if nd.Size > budget {
			return nil
		}
		seen++
		f := drillFile{"/" + p, nd.Size}
		if len(pool) < n {
			pool = append(pool, f)
		} else if j := rng.IntN(seen); j < n {
			pool[j] = f
		}
		return nil
	}, func(string, blob.ID, error) error {
		lost++
		return nil
	})
	if err != nil {
		return nil, 0, 0, err
	}
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	var out []drillFile
	var sum uint64
	for _, f := range pool {
		if sum+f.size <= budget {
			out = append(out, f)
			sum += f.size
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, total, lost, nil
}

// globEscape makes p match only itself as an anchored --include pattern.
func globEscape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func runDrill(ctx context.Context, g *GlobalOptions, opts DrillOptions, arg string) error {
	if opts.Files < 1 {
		return usageError{fmt.Errorf("--files %d: give at least 1", opts.Files)}
	}
	budget, err := parseSizeFlag("bytes", opts.Bytes)
	if err != nil {
		return err
	}
	start := time.Now()
	repo, snap, err := openSnapshotContent(ctx, g, "a restore drill", arg, &opts.Filter)
	if err != nil {
		return err
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	if _, err := walker.NewExpander(repo).Snapshot(repository.ReadFor(ctx, snap.Signer()), snap); err != nil {
		return refusedSnapshot(fmt.Errorf("snapshot %s is refused: %w", snap.ID.Short(), err))
	}
	sample, total, lost, err := drillSample(ctx, repo, snap, opts.Files, budget, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", snap.ID.Short(), err)
	}
	var failed []string
	if lost > 0 {
		failed = append(failed, fmt.Sprintf("%d directories of the snapshot are lost (`cairn ls` names them)", lost))
	}
	var res *restorer.Result
	var bytes uint64
	if len(sample) > 0 {
		dir, err := os.MkdirTemp("", "cairn-drill-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		include := make([]string, len(sample))
		for i, f := range sample {
			include[i] = globEscape(f.path)
			bytes += f.size
		}
		res, err = restorer.Restore(ctx, repo, snap, "", restorer.Options{Target: dir, Include: include, Verify: true,
			Log: g.logger(), Privileges: restorer.Privileges{NoOwner: true, NoXattrs: true, NoSpecialFiles: true, NoSetid: true},
			NoFsync: true}) // a scratch directory, removed at the end: nothing to keep through a crash
		if err != nil {
			return fmt.Errorf("restore drill of snapshot %s: %w", snap.ID.Short(), err)
		}
		failed = append(failed, res.Warnings...)
		if int(res.Verified) < len(sample) && len(res.Warnings) == 0 {
			failed = append(failed, fmt.Sprintf("only %d of %d sampled files could be checked against their content identity", res.Verified, len(sample)))
		}
	}
	verified := 0
	if res != nil {
		verified = int(res.Verified)
	}
	took := time.Since(start)
	// On a cairn server, a drill that passed is recorded there, signed by
	// the owner key: the server shows when each repository was last
	// proven restorable and alerts when that grows old.
	recorded := false
	if or := serverDeletes(repo); or != nil && len(failed) == 0 && len(sample) > 0 {
		rec := &trust.DrillRecord{Snapshot: snap.ID.String(), Time: time.Now().UTC(), Files: int64(verified), Bytes: int64(bytes),
			Total: int64(total), Result: trust.DrillOK}
		if _, err := askServer(ctx, repo, or, trust.OwnerRequest{Action: trust.ActionDrill, Drill: rec}, "recording the drill"); err != nil {
			return withHint(fmt.Errorf("restore drill of snapshot %s passed, but: %w", snap.ID.Short(), err), "run `cairn drill` again with the owner key")
		}
		recorded = true
	}
	for _, f := range failed {
		fmt.Fprintf(g.stderr, "cairn: drill: %s\n", displayText(f))
	}
	if g.JSON {
		paths := make([]string, len(sample))
		for i, f := range sample {
			paths[i] = f.path
		}
		if err := writeJSON(g.stdout, drillSummaryJSON{MessageType: "drill_summary", SnapshotID: snap.ID.String(),
			FilesInSnapshot: total, FilesSampled: len(sample), FilesVerified: verified, BytesRestored: bytes,
			Paths: paths, Problems: len(failed), OK: len(failed) == 0, RecordedOnServer: recorded, Seconds: took.Seconds()}); err != nil {
			return err
		}
	} else if !g.Quiet {
		g.printf("drill of snapshot %s: %d of %d files sampled (%s), %d restored and verified in %s\n",
			snap.ID.Short(), len(sample), total, formatBytes(bytes), verified, formatDuration(took))
		if recorded {
			g.printf("drill recorded on the server: repository proven restorable at %s\n", time.Now().Format("2006-01-02 15:04 MST"))
		}
	}
	switch {
	case len(failed) > 0:
		return withHint(fmt.Errorf("restore drill of snapshot %s failed: %s (above)", snap.ID.Short(), plural(len(failed), "problem", "problems")), "run `cairn check --read-data`, then `cairn repair`")
	case len(sample) == 0 && total > 0:
		return usageError{fmt.Errorf("no file of snapshot %s fits in --bytes %s; give more", snap.ID.Short(), opts.Bytes)}
	}
	if len(sample) == 0 && !g.Quiet && !g.JSON {
		g.printf("snapshot %s has no regular files: nothing to restore\n", snap.ID.Short())
	}
	return nil
}
