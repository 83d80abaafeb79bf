package walker

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// CheckPatterns reports the first malformed glob pattern (path.Match).
func CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// Found is a node Find matched.
type Found struct {
	Snapshot *repository.Snapshot
	Path     string // absolute in the snapshot: "/" and the path from its root
	Node     *snapshot.Node
}

// Find walks snaps in turn, calling found for each node whose name
// matches one of the glob patterns (a pattern with a "/" is matched
// against the whole absolute path instead). Each snapshot is refused (an
// error wrapping ErrTooLarge) before it is walked if its trees expand too
// far; reads use its signer's domain. A directory whose tree is lost is
// told to lost (its absolute path, and LostDir's error) and the search goes
// on; lost reports how many were.
func Find(ctx context.Context, repo *repository.Repository, snaps []*repository.Snapshot, patterns []string,
	found func(Found), lostDir func(s *repository.Snapshot, path string, err error)) (lost int, err error) {
	if err := CheckPatterns(patterns); err != nil {
		return 0, err
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return 0, err
	}
	exp := NewExpander(repo)
	for _, s := range snaps {
		if _, err := exp.Snapshot(ctx, s); err != nil {
			return lost, fmt.Errorf("snapshot %s is refused: %w", s.ID.Short(), err)
		}
		err := WalkLost(repository.ReadFor(ctx, s.Signer()), repo, s.File.Statement.Root, func(p string, n *snapshot.Node) error {
			full := "/" + p
			for _, pat := range patterns {
				subject := n.Name
				if strings.Contains(pat, "/") {
					subject = full
				}
				if ok, _ := path.Match(pat, subject); ok {
					found(Found{Snapshot: s, Path: full, Node: n})
					break
				}
			}
			return nil
		}, func(p string, _ blob.ID, err error) error {
			lost++
			lostDir(s, "/"+p, LostDir(err))
			return nil
		})
		if err != nil {
			return lost, fmt.Errorf("snapshot %s: %w", s.ID.Short(), err)
		}
	}
	return lost, nil
}
