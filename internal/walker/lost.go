package walker

import (
	"context"
	"fmt"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// What a damaged repository lost, as restore, ls and find report it: a
// directory whose tree is unavailable (WalkLost), and a file some of
// whose content blobs have no copy left in the index (`cairn repair`
// dropped the pack that held them).

// LostDir is the error a walk reports for a directory whose tree is
// unavailable: err is the tree's load error.
func LostDir(err error) error {
	return fmt.Errorf("directory lost with everything below it: %w", err)
}

// MissingContent counts n's content blobs of which the index holds no copy
// that a read under ctx may use (repository.ReadFor): content no restore
// can return. It reads nothing from storage, so a blob that is indexed
// but damaged is not counted (`cairn check --read-data` finds those).
func MissingContent(ctx context.Context, repo *repository.Repository, n *snapshot.Node) int {
	missing := 0
	for _, id := range n.Content {
		if _, ok := repo.Locate(ctx, blob.Data, id); !ok {
			missing++
		}
	}
	return missing
}

// LostContent is the error for a file of which missing of its content
// blobs are gone (MissingContent).
func LostContent(n *snapshot.Node, missing int) error {
	return fmt.Errorf("content lost: %d of %d chunks are not in the index", missing, len(n.Content))
}
