package client

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/cairnbackup/cairn/internal/repository"
)

// Filter narrows snapshots (and what "latest" means), as restic's --host,
// --tag and --path do.
type Filter struct {
	Hosts []string // any of them
	// Tags: each value is a comma-separated list a snapshot must carry
	// all of; it must satisfy any one value ("--tag a,b --tag c" is a
	// and b, or c).
	Tags  []string
	Paths []string // a snapshot must have every path given (owner key); a trailing "/" does not matter
}

// Empty reports whether f lets every snapshot pass.
func (f *Filter) Empty() bool {
	return len(f.Hosts) == 0 && len(f.Tags) == 0 && len(f.Paths) == 0
}

// Match reports whether s passes; fields the key cannot read never match
// a filter on them.
func (f *Filter) Match(s *repository.Snapshot) bool {
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

// Apply returns the snapshots that pass, in their order.
func (f *Filter) Apply(snaps []*repository.Snapshot) []*repository.Snapshot {
	var out []*repository.Snapshot
	for _, s := range snaps {
		if f.Match(s) {
			out = append(out, s)
		}
	}
	return out
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

// LoadSnapshots lists the snapshots the key can verify, oldest first by
// policy time (R14), each judged (repository.Judge). warn is told, in
// words, of each that fails to load and each that selection passes over.
func LoadSnapshots(ctx context.Context, repo *repository.Repository, warn func(string)) ([]*repository.Snapshot, error) {
	snaps, errs, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	for _, e := range errs {
		warn(fmt.Sprintf("%v; run `cairn check`", e))
	}
	bad, err := repo.Judge(ctx, snaps)
	if err != nil {
		return nil, err
	}
	for _, e := range bad {
		warn(fmt.Sprintf("%v (ignored); run `cairn check`", e))
	}
	for _, s := range snaps {
		if why := PassedOver(s); why != "" && repo.CanReadMetadata() {
			warn(fmt.Sprintf("snapshot %s %s; `latest`, --host and a backup's parent pass it over; run `cairn check`", s.ID.Short(), why))
		}
	}
	return snaps, nil
}

// PassedOver says why selection never picks s by itself, "" if it may.
func PassedOver(s *repository.Snapshot) string {
	st := s.Standing
	switch {
	case st.Impostor:
		return fmt.Sprintf("claims host label %q, which its signer %s is not bound to", s.Meta.HostLabel, st.Signer)
	case st.Suspect:
		return fmt.Sprintf("by %s has no receipt, so nothing vouches for its time", st.Signer)
	}
	return ""
}

// Find resolves "latest" (the newest matching f by policy time, among
// snapshots whose signer is bound to their host label and whose time is
// vouched for, R25) or a unique hex prefix of a snapshot ID (any
// snapshot, also one "latest" passes over) among snaps. An argument that
// is neither is a UsageError.
func Find(snaps []*repository.Snapshot, arg string, f *Filter) (*repository.Snapshot, error) {
	if arg == "latest" {
		best, skipped := repository.Latest(snaps, f.Match)
		if best != nil {
			return best, nil
		}
		if len(skipped) > 0 {
			return nil, WithHint(fmt.Errorf("no snapshot to take as latest: the %d that match are passed over (%s %s)", len(skipped), skipped[0].ID.Short(), PassedOver(skipped[0])),
				"name one by ID if you trust it; `cairn check` reports why")
		}
		if f.Empty() {
			return nil, WithHint(errors.New("the repository has no snapshots"), "make one with `cairn backup`")
		}
		return nil, WithHint(errors.New("no snapshot matches the --host/--tag/--path filter"), "list them with `cairn snapshots`")
	}
	p := strings.ToLower(arg)
	if p == "" || len(p) > 64 || strings.Trim(p, "0123456789abcdef") != "" {
		return nil, UsageError{fmt.Errorf("%q is not a snapshot ID (hex digits) or \"latest\"", arg)}
	}
	var found []*repository.Snapshot
	for _, s := range snaps {
		if strings.HasPrefix(s.ID.String(), p) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, WithHint(fmt.Errorf("no snapshot %s", arg), "list them with `cairn snapshots`")
	case 1:
		return found[0], nil
	}
	var ids []string
	for _, s := range found {
		ids = append(ids, s.ID.String()[:max(len(p)+4, 8)])
	}
	return nil, WithHint(fmt.Errorf("snapshot ID %s is ambiguous: %s", arg, strings.Join(ids, ", ")), "give more digits")
}
