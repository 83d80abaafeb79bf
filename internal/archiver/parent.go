package archiver

import (
	"context"
	"fmt"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// seedFromParent fills an empty file cache from the newest snapshot of the
// same paths on this host, when the key can read it (the owner): a machine
// that lost its cache, or a new one restoring its role, then reads only
// what changed, as the cache would have let it. Trees record size, mtime
// and ctime but no inode, so such entries match on the first three.
func (fc *fileCache) seedFromParent(ctx context.Context, repo *repository.Repository, roots []string, host string) error {
	if len(fc.old) > 0 || !repo.CanReadContent() {
		return nil
	}
	snaps, _, err := repo.Snapshots(ctx)
	if err != nil {
		return err
	}
	var parent *repository.Snapshot
	for _, s := range snaps { // oldest first: the last match is the newest
		if s.Owner != nil && s.Owner.Hostname == host && slices.Equal(sortedCopy(s.Owner.Paths), roots) {
			parent = s
		}
	}
	if parent == nil {
		return nil
	}
	return fc.seedTree(ctx, repo, parent.File.Statement.Root, "", 0)
}

func sortedCopy(p []string) []string {
	c := slices.Clone(p)
	slices.Sort(c)
	return c
}

func (fc *fileCache) seedTree(ctx context.Context, repo *repository.Repository, id blob.ID, dir string, depth int) error {
	if depth > 2048 {
		return fmt.Errorf("parent snapshot: tree deeper than 2048 levels")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	plain, err := repo.LoadBlob(ctx, blob.Tree, id)
	if err != nil {
		return err
	}
	t, err := snapshot.DecodeTree(plain)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		path := dir + "/" + n.Name
		switch {
		case n.Type == snapshot.TypeDir && n.Subtree != nil:
			if err := fc.seedTree(ctx, repo, *n.Subtree, path, depth+1); err != nil {
				return err
			}
		case n.Type == snapshot.TypeFile && n.HardLinkTo == "" && n.ContentHash != nil:
			fc.old[fc.keyOf(path)] = cachedFile{Size: n.Size, MTime: n.MTime.UnixNano(), CTime: n.CTime.UnixNano(),
				Content: n.Content, Hash: *n.ContentHash, Extents: n.Extents, Xattrs: n.Xattrs, anyInode: true}
		}
	}
	return nil
}
