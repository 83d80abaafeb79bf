package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/copier"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
)

// CopyOptions are copy's flags.
type CopyOptions struct {
	FromRepo         string
	FromPasswordFile string
	FromKeyFile      string
	Filter           SnapshotFilter
}

func newCopyCommand(g *GlobalOptions) *cobra.Command {
	var opts CopyOptions
	c := &cobra.Command{
		Use:   "copy --from-repo SOURCE [SNAPSHOT...]",
		Short: "Copy snapshots from another repository into this one",
		Long: `Copy the snapshots given by ID (or "latest"), or without IDs every snapshot
the --host/--tag/--path filter matches, from the repository --from-repo into
the one given by -r. Blobs are read and verified with the source's owner key,
re-encrypted for the destination and deduplicated against what the
destination key's own domain holds; trees are re-encoded under the
destination's blob IDs. Each copy is a new snapshot signed by the
destination key, with the source's paths, host, tags and time, and its
owner header names the source repository and snapshot ("origin").

Copying is idempotent: a snapshot whose origin the destination already
holds (or, for a writer key, whose trees and time one of its own snapshots
has) is skipped. The source needs the owner key (exit 11); the destination
the owner key or a writer key bound to the snapshots' host labels.`,
		Example: `  cairn copy -r /mnt/offsite --from-repo /srv/backup --from-password-file /root/src.pass
  cairn copy -r rest:https://c:pw@backup.example/c/main --from-repo /srv/backup --host web1 latest`,
		RunE: func(c *cobra.Command, args []string) error { return runCopy(c.Context(), g, opts, args) },
	}
	f := c.Flags()
	f.StringVar(&opts.FromRepo, "from-repo", envOr("CAIRN_FROM_REPOSITORY", ""), "source repository location (env CAIRN_FROM_REPOSITORY)")
	f.StringVar(&opts.FromPasswordFile, "from-password-file", envOr("CAIRN_FROM_PASSWORD_FILE", ""), "read the source password from this file (env CAIRN_FROM_PASSWORD_FILE; else CAIRN_FROM_PASSWORD)")
	f.StringVar(&opts.FromKeyFile, "from-key-file", envOr("CAIRN_FROM_KEY_FILE", ""), "unlock the source with this key file (env CAIRN_FROM_KEY_FILE)")
	addFilterFlags(c, &opts.Filter)
	return c
}

type copyJSON struct {
	Source     string `json:"source_id"`
	ID         string `json:"snapshot_id"`
	ShortID    string `json:"short_id"`
	Action     string `json:"action"` // copied or skipped
	BlobsNew   uint64 `json:"blobs_new"`
	BytesAdded uint64 `json:"bytes_added"`
}

// openSource opens copy's source repository with its own location, key
// file and password (never the destination's CAIRN_PASSWORD).
func openSource(ctx context.Context, g *GlobalOptions, opts CopyOptions) (*repository.Repository, error) {
	if opts.FromRepo == "" {
		return nil, usageError{errors.New("no source repository given; pass --from-repo or set CAIRN_FROM_REPOSITORY")}
	}
	src := *g
	src.Repo, src.KeyFile, src.PasswordFile = opts.FromRepo, opts.FromKeyFile, opts.FromPasswordFile
	return src.openRepoWith(ctx, func() ([]byte, error) {
		if opts.FromPasswordFile != "" {
			return readPasswordFile(opts.FromPasswordFile)
		}
		if pw, ok := os.LookupEnv("CAIRN_FROM_PASSWORD"); ok {
			return []byte(pw), nil
		}
		return promptPassword("enter password for source repository: ", false)
	})
}

func runCopy(ctx context.Context, g *GlobalOptions, opts CopyOptions, args []string) error {
	src, err := openSource(ctx, g, opts)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if err := needContent(src, "copying from a repository"); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	dst, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if dst.Keys().Sign == nil {
		return roleError{verb: "copying snapshots into a repository", need: "the owner key or a writer key", have: dst.Keys().Role, base: crypto.ErrNeedsOwner}
	}
	if dst.Keys().RepoID == src.Keys().RepoID {
		return usageError{errors.New("the source and the destination are the same repository")}
	}
	srcSnaps, err := loadSnapshots(ctx, g, src)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	var chosen []*repository.Snapshot
	if len(args) == 0 {
		chosen = opts.Filter.apply(srcSnaps)
	}
	for _, a := range args {
		s, err := findSnapshot(srcSnaps, a, &opts.Filter)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if !slices.Contains(chosen, s) {
			chosen = append(chosen, s)
		}
	}
	// What the destination holds: with the owner key every snapshot's
	// origin; with a writer key its own statements (root and time).
	dstSnaps, errs, err := dst.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, e := range errs {
		g.warnf("destination: %v; run `cairn check`", e)
	}
	exp := restorer.NewExpander(src)
	prog := newProgress(g, "copy", "files")
	counter := prog.counter()
	defer prog.finish()
	defer counter.Stop()
	// say prints a line of text output, clear of the status line.
	say := func(format string, a ...any) {
		prog.finish()
		g.printf(format, a...)
	}
	var out []copyJSON
	var failed []string
	for _, s := range chosen {
		origin := copier.OriginOf(src.Keys().RepoID, s)
		if have := copier.Find(dst.Keys().RepoID, dstSnaps, origin); have != nil {
			out = append(out, copyJSON{Source: s.ID.String(), ID: have.ID.String(), ShortID: have.ID.Short(), Action: "skipped"})
			if !g.JSON {
				say("snapshot %s is already in the destination as %s\n", s.ID.Short(), have.ID.Short())
			}
			continue
		}
		if why := passedOver(s); why != "" {
			prog.finish()
			g.warnf("source snapshot %s %s; not copied", s.ID.Short(), displayText(why))
			failed = append(failed, s.ID.Short())
			continue
		}
		if ok, bound := dst.MayUseHost(s.Meta.HostLabel); !ok {
			prog.finish()
			g.warnf("source snapshot %s has host label %q; this writer key may use only %s; not copied",
				s.ID.Short(), displayText(s.Meta.HostLabel), displayText(strings.Join(bound, ", ")))
			failed = append(failed, s.ID.Short())
			continue
		}
		t := s.Time()
		if s.Standing.Signer.Kind != repository.SignerOwner {
			t = s.Standing.Time // the destination key must not vouch for a writer's claim
		}
		res, err := copier.Copy(ctx, src, s, dst, copier.Options{Tags: s.Meta.Tags, Time: t, Expander: exp, Progress: counter,
			Exists: func(root blob.ID) *repository.Snapshot {
				for _, d := range dstSnaps {
					st := d.File.Statement
					if st.Root == root && st.Time.Equal(t.UTC()) && blob.Domain(st.Writer) == dst.Domain() {
						return d
					}
				}
				return nil
			}})
		if err != nil {
			return fmt.Errorf("copy snapshot %s: %w", s.ID.Short(), err)
		}
		if res.Existing != nil {
			out = append(out, copyJSON{Source: s.ID.String(), ID: res.Existing.ID.String(), ShortID: res.Existing.ID.Short(), Action: "skipped"})
			if !g.JSON {
				say("snapshot %s is already in the destination as %s\n", s.ID.Short(), res.Existing.ID.Short())
			}
			continue
		}
		dstSnaps = append(dstSnaps, res.Snapshot)
		out = append(out, copyJSON{Source: s.ID.String(), ID: res.Snapshot.ID.String(), ShortID: res.Snapshot.ID.Short(), Action: "copied",
			BlobsNew: res.BlobsNew, BytesAdded: res.BytesAdded})
		if !g.JSON {
			say("snapshot %s copied as %s (%d new blobs, %s added)\n", s.ID.Short(), res.Snapshot.ID.Short(), res.BlobsNew, formatBytes(res.BytesAdded))
		}
	}
	counter.Stop()
	prog.finish()
	if g.JSON {
		if err := writeJSON(g.stdout, copySummaryJSON{MessageType: "summary", Snapshots: nonNil(out), Refused: len(failed)}); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return withHint(fmt.Errorf("%d snapshots were not copied: %s", len(failed), strings.Join(failed, ", ")), "copy them with a key that may use their host label, or leave them")
	}
	if len(chosen) == 0 {
		return withHint(errors.New("no snapshot in the source matches"), "list them with `cairn snapshots -r SOURCE`")
	}
	return nil
}
