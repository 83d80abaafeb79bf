package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/copier"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
)

// TagOptions are tag's flags.
type TagOptions struct {
	Add, Remove, Set []string
	Filter           SnapshotFilter
}

func newTagCommand(g *GlobalOptions) *cobra.Command {
	var opts TagOptions
	c := &cobra.Command{
		Use:   "tag [--add T]... [--remove T]... [--set T]... [SNAPSHOT...]",
		Short: "Add, remove or replace the tags of snapshots",
		Long: `Change the tags of the snapshots given by ID (or "latest"), or without IDs of
every snapshot the --host/--tag/--path filter matches. Tags are part of a
snapshot's signed statement, so each changed snapshot is signed again by the
owner as a new snapshot (same trees, same time, a new ID; its owner header
names the original) and the old one is removed behind a signed tombstone,
as forget does. A snapshot a writer signed becomes the owner's: its blobs
are read, verified and stored in the owner's domain where it has no copy,
and its policy time (not its claimed time) is kept.

Needs the owner key (exit 11): tags are sealed to the metadata key, a
writer cannot read them, and a tombstone is the owner's or the server's to
sign. A repository behind a cairn server (rest:) refuses tombstones from
clients, so tags there are set at backup time.`,
		Example: `  cairn tag --add keep 4f9c2a1e
  cairn tag --set daily,offsite --host web1
  cairn tag --remove tmp --tag tmp --json`,
		RunE: func(c *cobra.Command, args []string) error { return runTag(c.Context(), g, opts, args) },
	}
	f := c.Flags()
	f.StringArrayVar(&opts.Add, "add", nil, "add these tags (comma-separated; repeatable)")
	f.StringArrayVar(&opts.Remove, "remove", nil, "remove these tags (comma-separated; repeatable)")
	f.StringArrayVar(&opts.Set, "set", nil, "replace the tags by these (comma-separated; repeatable; --set '' removes all)")
	addFilterFlags(c, &opts.Filter)
	return c
}

// splitTags splits comma-separated tag lists; empty items are dropped.
func splitTags(lists []string) []string {
	var out []string
	for _, l := range lists {
		for _, t := range strings.Split(l, ",") {
			if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// newTags applies --set, --add and --remove to old; changed is false when
// the result is old (order kept).
func newTags(old []string, set, add, remove []string, setGiven bool) (tags []string, changed bool) {
	if setGiven {
		tags = slices.Clone(set)
	} else {
		tags = slices.Clone(old)
		for _, t := range add {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	tags = slices.DeleteFunc(tags, func(t string) bool { return slices.Contains(remove, t) })
	return tags, !slices.Equal(tags, old)
}

type tagChangeJSON struct {
	OldID   string   `json:"old_snapshot_id"`
	NewID   string   `json:"new_snapshot_id"`
	ShortID string   `json:"short_id"`
	OldTags []string `json:"old_tags"`
	Tags    []string `json:"tags"`
}

func runTag(ctx context.Context, g *GlobalOptions, opts TagOptions, args []string) error {
	set, add, remove := splitTags(opts.Set), splitTags(opts.Add), splitTags(opts.Remove)
	setGiven := opts.Set != nil
	if !setGiven && len(add) == 0 && len(remove) == 0 {
		return usageError{errors.New("nothing to do: give --add, --remove or --set")}
	}
	if setGiven && (len(add) > 0 || len(remove) > 0) {
		return usageError{errors.New("--set replaces all tags; it cannot be combined with --add or --remove")}
	}
	if l, err := location.Parse(g.Repo); err == nil && l.Kind == location.Rest {
		return withHint(errors.New("tags cannot be changed in a repository kept on a cairn server: a changed snapshot is signed anew and the old one tombstoned, and the server signs tombstones itself"),
			"give tags at backup time with `cairn backup --tag`")
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needContent(repo, "changing tags"); err != nil {
		return err
	}
	snaps, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	var chosen []*repository.Snapshot
	if len(args) == 0 {
		chosen = opts.Filter.apply(snaps)
	}
	for _, a := range args {
		s, err := findSnapshot(snaps, a, &opts.Filter)
		if err != nil {
			return err
		}
		if !slices.Contains(chosen, s) {
			chosen = append(chosen, s)
		}
	}
	exp := restorer.NewExpander(repo)
	var changes []tagChangeJSON
	var failed []string
	unchanged := 0
	for _, s := range chosen {
		tags, changed := newTags(s.Meta.Tags, set, add, remove, setGiven)
		if !changed {
			unchanged++
			continue
		}
		if why := passedOver(s); why != "" {
			// Signing it as the owner would vouch for a host label or a
			// time nothing vouches for now.
			g.warnf("snapshot %s %s; not re-signed with new tags", s.ID.Short(), displayText(why))
			failed = append(failed, s.ID.Short())
			continue
		}
		t := s.Time()
		if s.Standing.Signer.Kind != repository.SignerOwner {
			t = s.Standing.Time // the owner's signature must not vouch for a writer's claim
		}
		res, err := copier.Copy(ctx, repo, s, repo, copier.Options{Tags: tags, Time: t, Expander: exp})
		if err != nil {
			return fmt.Errorf("tag snapshot %s: %w", s.ID.Short(), err)
		}
		// The new snapshot is stored; only now does the old one go. A
		// kill in between leaves both, and tagging again finds the old
		// one's tags already changed in the new one.
		if err := repo.ForgetSnapshot(ctx, s, "tag: replaced by "+res.Snapshot.ID.String()); err != nil {
			return fmt.Errorf("snapshot %s re-tagged as %s, but the old one could not be removed: %w", s.ID.Short(), res.Snapshot.ID.Short(), err)
		}
		old := s.Meta.Tags
		if old == nil {
			old = []string{}
		}
		if tags == nil {
			tags = []string{}
		}
		changes = append(changes, tagChangeJSON{OldID: s.ID.String(), NewID: res.Snapshot.ID.String(), ShortID: res.Snapshot.ID.Short(), OldTags: old, Tags: tags})
		if !g.JSON && !g.Quiet {
			fmt.Fprintf(g.stdout, "snapshot %s is now %s, tags: %s\n", s.ID.Short(), res.Snapshot.ID.Short(), displayText(strings.Join(tags, ", ")))
		}
	}
	if g.JSON {
		if changes == nil {
			changes = []tagChangeJSON{}
		}
		if err := writeJSON(g.stdout, tagJSON{MessageType: "tag", Changed: changes, ChangedSnapshots: len(changes),
			UnchangedSnapshots: unchanged, Refused: len(failed)}); err != nil {
			return err
		}
	} else if !g.Quiet {
		fmt.Fprintf(g.stdout, "changed tags of %d snapshots (%d already had them)\n", len(changes), unchanged)
	}
	if len(failed) > 0 {
		return withHint(fmt.Errorf("%d snapshots were not re-tagged: %s", len(failed), strings.Join(failed, ", ")), "`cairn check` says why; forget them or leave their tags")
	}
	if len(chosen) == 0 {
		return withHint(errors.New("no snapshot matches"), "list them with `cairn snapshots`")
	}
	return nil
}
