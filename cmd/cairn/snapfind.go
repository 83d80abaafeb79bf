package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/repository"
)

// SnapshotFilter narrows snapshots (and what "latest" means), as restic's
// --host, --tag and --path do: every command that picks snapshots takes
// these flags through addFilterFlags.
type SnapshotFilter struct {
	Hosts []string // any of them
	// Tags: each value is a comma-separated list a snapshot must carry
	// all of; it must satisfy any one value ("--tag a,b --tag c" is a
	// and b, or c).
	Tags  []string
	Paths []string // a snapshot must have every path given (owner key); a trailing "/" does not matter
}

func addFilterFlags(c *cobra.Command, f *SnapshotFilter) {
	c.Flags().StringArrayVar(&f.Hosts, "host", nil, "only snapshots with the `HOST` label (repeatable: any of them)")
	c.Flags().StringArrayVar(&f.Tags, "tag", nil, "only snapshots with all of `TAG[,TAG...]` (repeatable: any of the lists)")
	c.Flags().StringArrayVar(&f.Paths, "path", nil, "only snapshots of `PATH` (owner key; repeatable: all of them)")
}

func (f *SnapshotFilter) empty() bool {
	return len(f.Hosts) == 0 && len(f.Tags) == 0 && len(f.Paths) == 0
}

// match reports whether s passes; fields the key cannot read never match
// a filter on them.
func (f *SnapshotFilter) match(s *repository.Snapshot) bool {
	if len(f.Hosts) > 0 && (s.Meta == nil || !slices.Contains(f.Hosts, s.Meta.HostLabel)) {
		return false
	}
	if len(f.Tags) > 0 && (s.Meta == nil || !slices.ContainsFunc(f.Tags, func(list string) bool { return hasTags(s.Meta.Tags, list) })) {
		return false
	}
	for _, p := range f.Paths {
		if s.Owner == nil || !slices.ContainsFunc(s.Owner.Paths, func(sp string) bool { return samePath(sp, p) }) {
			return false
		}
	}
	return true
}

// hasTags reports whether tags holds every tag of the comma-separated
// list; an empty list matches a snapshot without tags, as restic's --tag "".
func hasTags(tags []string, list string) bool {
	if list == "" {
		return len(tags) == 0
	}
	for _, t := range strings.Split(list, ",") {
		if t != "" && !slices.Contains(tags, t) {
			return false
		}
	}
	return true
}

// samePath compares a snapshot's path with one given on the command line,
// which may end in "/" (shell completion adds one to a directory).
func samePath(snap, given string) bool {
	return snap == given || path.Clean(snap) == path.Clean(given)
}

func (f *SnapshotFilter) apply(snaps []*repository.Snapshot) []*repository.Snapshot {
	var out []*repository.Snapshot
	for _, s := range snaps {
		if f.match(s) {
			out = append(out, s)
		}
	}
	return out
}

// loadSnapshots lists the snapshots the key can verify, oldest first by
// policy time (R14), each judged (repository.Judge), reporting the ones
// that fail to load, and the ones selection passes over, as warnings.
func loadSnapshots(ctx context.Context, g *GlobalOptions, repo *repository.Repository) ([]*repository.Snapshot, error) {
	snaps, errs, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	for _, e := range errs {
		fmt.Fprintf(g.stderr, "cairn: warning: %v; run `cairn check`\n", e)
	}
	bad, err := repo.Judge(ctx, snaps)
	if err != nil {
		return nil, err
	}
	for _, e := range bad {
		fmt.Fprintf(g.stderr, "cairn: warning: %v (ignored); run `cairn check`\n", e)
	}
	for _, s := range snaps {
		if why := passedOver(s); why != "" && repo.CanReadMetadata() {
			fmt.Fprintf(g.stderr, "cairn: warning: snapshot %s %s; `latest`, --host and a backup's parent pass it over; run `cairn check`\n", s.ID.Short(), why)
		}
	}
	return snaps, nil
}

// passedOver says why selection never picks s by itself, "" if it may.
func passedOver(s *repository.Snapshot) string {
	st := s.Standing
	switch {
	case st.Impostor:
		return fmt.Sprintf("claims host label %q, which its signer %s is not bound to", s.Meta.HostLabel, st.Signer)
	case st.Suspect:
		return fmt.Sprintf("by %s has no receipt, so nothing vouches for its time", st.Signer)
	}
	return ""
}

// findSnapshot resolves "latest" (the newest matching the filter by policy
// time, among snapshots whose signer is bound to their host label and
// whose time is vouched for, R25) or a unique hex prefix of a snapshot ID
// (any snapshot, also one "latest" passes over).
func findSnapshot(snaps []*repository.Snapshot, arg string, f *SnapshotFilter) (*repository.Snapshot, error) {
	if arg == "latest" {
		best, skipped := repository.Latest(snaps, f.match)
		if best != nil {
			return best, nil
		}
		if len(skipped) > 0 {
			return nil, withHint(fmt.Errorf("no snapshot to take as latest: the %d that match are passed over (%s %s)", len(skipped), skipped[0].ID.Short(), passedOver(skipped[0])),
				"name one by ID if you trust it; `cairn check` reports why")
		}
		if f.empty() {
			return nil, withHint(errors.New("the repository has no snapshots"), "make one with `cairn backup`")
		}
		return nil, withHint(errors.New("no snapshot matches the --host/--tag/--path filter"), "list them with `cairn snapshots`")
	}
	p := strings.ToLower(arg)
	if p == "" || len(p) > 64 || strings.Trim(p, "0123456789abcdef") != "" {
		return nil, usageError{fmt.Errorf("%q is not a snapshot ID (hex digits) or \"latest\"", arg)}
	}
	var found []*repository.Snapshot
	for _, s := range snaps {
		if strings.HasPrefix(s.ID.String(), p) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, withHint(fmt.Errorf("no snapshot %s", arg), "list them with `cairn snapshots`")
	case 1:
		return found[0], nil
	}
	var ids []string
	for _, s := range found {
		ids = append(ids, s.ID.String()[:max(len(p)+4, 8)])
	}
	return nil, withHint(fmt.Errorf("snapshot ID %s is ambiguous: %s", arg, strings.Join(ids, ", ")), "give more digits")
}

// resolveSnapshot loads the snapshot list and resolves arg.
// openSnapshotContent opens the repository for a command that reads
// snapshot content (ls, dump, restore): it needs the owner key (exit 11
// otherwise) and resolves arg ("latest", an ID or a prefix) to one snapshot.
func openSnapshotContent(ctx context.Context, g *GlobalOptions, verb, arg string, f *SnapshotFilter) (*repository.Repository, *repository.Snapshot, error) {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := client.NeedContent(repo, verb); err != nil {
		return nil, nil, err
	}
	snap, err := resolveSnapshot(ctx, g, repo, arg, f)
	if err != nil {
		return nil, nil, err
	}
	return repo, snap, nil
}

func resolveSnapshot(ctx context.Context, g *GlobalOptions, repo *repository.Repository, arg string, f *SnapshotFilter) (*repository.Snapshot, error) {
	snaps, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return nil, err
	}
	return findSnapshot(snaps, arg, f)
}

// splitSnapshotPath splits "SNAPSHOT:PATH".
func splitSnapshotPath(arg string) (string, string) {
	id, path, _ := strings.Cut(arg, ":")
	return id, path
}
