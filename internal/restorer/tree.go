package restorer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// MaxDepth bounds tree depth (R18).
const MaxDepth = 2048

// ErrNotFound is returned for a path that is not in the snapshot.
var ErrNotFound = errors.New("no such path in snapshot")

// LoadTree loads, verifies (the blob re-hashes to its ID) and decodes a tree.
func LoadTree(ctx context.Context, repo *repository.Repository, id blob.ID) (*snapshot.Tree, error) {
	plain, err := repo.LoadBlob(ctx, blob.Tree, id)
	if err != nil {
		return nil, err
	}
	t, err := snapshot.DecodeTree(plain)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}

// Walk calls fn for every node below root in pre-order, sorted by name,
// with its '/'-separated path relative to the snapshot root. fn returning
// ErrSkipDir for a directory skips its contents.
func Walk(ctx context.Context, repo *repository.Repository, root blob.ID, fn func(path string, n *snapshot.Node) error) error {
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	return walk(ctx, repo, root, "", 0, fn)
}

// ErrSkipDir tells Walk not to descend into a directory.
var ErrSkipDir = errors.New("skip this directory")

func walk(ctx context.Context, repo *repository.Repository, id blob.ID, prefix string, depth int, fn func(string, *snapshot.Node) error) error {
	if depth > MaxDepth {
		return fmt.Errorf("tree %s: deeper than %d levels", id.Short(), MaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := LoadTree(ctx, repo, id)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := n.Name
		if prefix != "" {
			p = prefix + "/" + n.Name
		}
		err := fn(p, n)
		if errors.Is(err, ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == snapshot.TypeDir && n.Subtree != nil {
			if err := walk(ctx, repo, *n.Subtree, p, depth+1, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// FindNode returns the node at path (relative to the snapshot root). The
// empty path or "/" yields a synthetic directory node for the root.
func FindNode(ctx context.Context, repo *repository.Repository, root blob.ID, path string) (*snapshot.Node, error) {
	path = strings.Trim(path, "/")
	if path == "" {
		r := root
		return &snapshot.Node{Name: "/", Type: snapshot.TypeDir, Mode: 0o755, Subtree: &r}, nil
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return nil, err
	}
	cur := root
	parts := strings.Split(path, "/")
	for i, name := range parts {
		t, err := LoadTree(ctx, repo, cur)
		if err != nil {
			return nil, err
		}
		var found *snapshot.Node
		for j := range t.Nodes {
			if t.Nodes[j].Name == name {
				found = &t.Nodes[j]
				break
			}
		}
		if found == nil {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
		}
		if i == len(parts)-1 {
			return found, nil
		}
		if found.Type != snapshot.TypeDir || found.Subtree == nil {
			return nil, fmt.Errorf("%w: %s (%s is not a directory)", ErrNotFound, path, strings.Join(parts[:i+1], "/"))
		}
		cur = *found.Subtree
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
}
