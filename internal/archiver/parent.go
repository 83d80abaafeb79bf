package archiver

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// seedFromParent fills an empty file cache from the parent snapshot, when
// the key can read it (the owner): a machine that lost its cache, or a new
// one restoring its role, then reads only what changed, as the cache would
// have let it. Trees record size, mtime and ctime but no inode, so such
// entries match on the first three.
func (fc *fileCache) seedFromParent(ctx context.Context, repo *repository.Repository, roots []string, hostname, label string, indexLoaded func() error, log *slog.Logger) error {
	if !fc.empty() || !repo.CanReadContent() {
		return nil
	}
	if err := indexLoaded(); err != nil {
		return err
	}
	snaps, _, err := repo.Snapshots(ctx)
	if err != nil {
		return err
	}
	if _, err := repo.Judge(ctx, snaps); err != nil {
		return err
	}
	parent := findParent(snaps, roots, hostname, label)
	if parent == nil {
		return nil
	}
	log.Info("parent snapshot", "snapshot", parent.ID.Short(), "signer", parent.Standing.Signer.String())
	return fc.seedTree(ctx, repo, parent.File.Statement.Root, "", 0)
}

// seedFromSnapshot replaces what the cache remembers with the files of
// snap (--parent): this backup then reads only what differs from it.
func (fc *fileCache) seedFromSnapshot(ctx context.Context, repo *repository.Repository, snap *repository.Snapshot, indexLoaded func() error) error {
	if err := indexLoaded(); err != nil {
		return err
	}
	fc.raw, fc.at, fc.fromParent = nil, nil, false
	// Every entry differs from the cache file now: save rewrites it.
	fc.dirty = true
	return fc.seedTree(repository.ReadFor(ctx, snap.Signer()), repo, snap.File.Statement.Root, "", 0)
}

// findParent picks a backup's parent among judged snapshots: the newest
// by policy time of the same paths, hostname and host label whose signer
// is bound to that label (R25). A writer's snapshot that claims this
// host, or a time in the future, is never the parent.
func findParent(snaps []*repository.Snapshot, roots []string, hostname, label string) *repository.Snapshot {
	parent, _ := repository.Latest(snaps, func(s *repository.Snapshot) bool {
		return s.Owner != nil && s.Meta != nil && s.Owner.Hostname == hostname && s.Meta.HostLabel == label &&
			slices.Equal(sortedCopy(s.Owner.Paths), roots)
	})
	return parent
}

// hostLabel is the host label a backup records: the one asked for, or the
// key's default (repository.HostLabel: a writer's enrolled label). A
// writer asking for a label it is not bound to is warned: a server
// refuses the snapshot, and the owner's `latest`, --host and check treat
// it as an impostor.
func hostLabel(repo *repository.Repository, hostname, asked string, log *slog.Logger) string {
	if asked == "" {
		return repo.HostLabel(hostname)
	}
	if ok, bound := repo.MayUseHost(asked); !ok {
		log.Warn("this key is not bound to the host label; a server refuses the snapshot, and the owner's `latest` and --host never pick it",
			"host", asked, "bound", strings.Join(bound, ","))
	}
	return asked
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
		case n.Type == snapshot.TypeFile && n.HardLinkTo == "":
			c := cachedFile{Size: n.Size, MTime: n.MTime.UnixNano(), CTime: n.CTime.UnixNano(),
				Content: n.Content, Extents: n.Extents, Xattrs: n.Xattrs}
			if n.ContentHash != nil {
				c.Hash = *n.ContentHash
			}
			fc.seed(fc.keyOf(path), c)
		}
	}
	return nil
}

// writerLister is storage that can ask a cairn server for a writer's own
// snapshot list and last blob-ID set (rest.(*Backend).WriterList).
type writerLister interface {
	WriterList(ctx context.Context, signer ed25519.PrivateKey, now time.Time) (*restapi.WriterList, error)
}

// findWriterLister looks through backend decorators (retry, …) for one.
func findWriterLister(be backend.Backend) writerLister {
	for be != nil {
		if wl, ok := be.(writerLister); ok {
			return wl
		}
		u, ok := be.(interface{ Unwrap() backend.Backend })
		if !ok {
			return nil
		}
		be = u.Unwrap()
	}
	return nil
}

// writerKnown is the dedup scope of a key that cannot read the index (a
// writer, R16): its own journal (the session adds it) and its own last
// committed snapshot's blob-ID set. In server mode the server says what
// that set is, in one request, whether or not this machine kept a cache;
// elsewhere, or if the server cannot answer, it comes from the cache, or
// from the writer's sealed dedup set in its last snapshot.
func writerKnown(ctx context.Context, repo *repository.Repository, log *slog.Logger) (repository.RefSet, error) {
	if wl := findWriterLister(repo.Backend()); wl != nil && repo.Keys().Sign != nil {
		l, err := wl.WriterList(ctx, repo.Keys().Sign, repo.Now())
		var refs []snapshot.Ref
		if err == nil {
			refs, err = rest.WriterRefs(l)
		}
		if err == nil {
			return repository.RefSet(refs), nil
		}
		log.Warn("the server did not say what this writer's last snapshot holds; using the local cache or the repository", "err", err)
	}
	return repo.WriterKnown(ctx)
}
