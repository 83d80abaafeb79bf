// Package fusefs is the read-only FUSE view of a repository that `cairn
// mount` serves: snapshots/ (by time, and a latest symlink), hosts/<host>/,
// tags/<tag>/ and ids/<short ID>/, each snapshot directory holding the
// snapshot's tree. Trees and content are loaded on demand through the
// repository (each blob verified, R6) and the snapshot signer's domain
// (R23); a snapshot's trees are bounded by walker.Expander before
// anything below its directory is shown.
package fusefs

import (
	"container/list"
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
)

// TimeFormat names snapshot directories (local time).
const TimeFormat = "2006-01-02T15:04:05Z07:00"

// Cache bounds.
const (
	maxCachedTrees = 4096
	maxCachedBytes = 64 << 20 // file content chunks
)

// FS is a mounted repository's state: the snapshots listed at mount time
// and caches shared by every directory and file.
type FS struct {
	repo  *repository.Repository
	snaps []*repository.Snapshot
	warn  func(string)

	mu      sync.Mutex
	exp     *walker.Expander
	checked map[blob.ID]error // snapshot ID → its expansion's verdict

	cache *lru
}

// New returns the view of snaps (oldest first) in repo, which must be
// opened with the owner key. warn receives problems that make a
// directory or file unreadable (they surface as EIO).
func New(repo *repository.Repository, snaps []*repository.Snapshot, warn func(string)) *FS {
	return &FS{repo: repo, snaps: snaps, warn: warn, exp: walker.NewExpander(repo), checked: map[blob.ID]error{},
		cache: newLRU()}
}

// Root is the mount's root directory.
func (f *FS) Root() fs.InodeEmbedder { return &rootDir{fsys: f} }

// check bounds snap's walk once (walker.Expander: the DAG-bomb bound and
// the signed summary), before any of its trees is shown.
func (f *FS) check(ctx context.Context, snap *repository.Snapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err, ok := f.checked[snap.ID]; ok {
		return err
	}
	_, err := f.exp.Snapshot(ctx, snap)
	if ctx.Err() != nil {
		return ctx.Err() // the request was interrupted: ask again next time
	}
	if err != nil {
		err = fmt.Errorf("snapshot %s is refused: %w", snap.ID.Short(), err)
		f.warn(err.Error())
	}
	f.checked[snap.ID] = err
	return err
}

// tree loads (or finds in the cache) a tree of snap.
func (f *FS) tree(ctx context.Context, snap *repository.Snapshot, id blob.ID) (*snapshot.Tree, error) {
	key := cacheKey{kind: blob.Tree, id: id}
	if v, ok := f.cache.get(key); ok {
		return v.(*snapshot.Tree), nil
	}
	t, err := walker.LoadTree(repository.ReadFor(ctx, snap.Signer()), f.repo, id)
	if err != nil {
		f.warn(fmt.Sprintf("snapshot %s: %v", snap.ID.Short(), err))
		return nil, err
	}
	f.cache.put(key, t, 0)
	return t, nil
}

// chunk loads (or finds in the cache) a data blob of snap.
func (f *FS) chunk(ctx context.Context, snap *repository.Snapshot, id blob.ID) ([]byte, error) {
	key := cacheKey{kind: blob.Data, id: id}
	if v, ok := f.cache.get(key); ok {
		return v.([]byte), nil
	}
	b, err := f.repo.LoadBlob(repository.ReadFor(ctx, snap.Signer()), blob.Data, id)
	if err != nil {
		f.warn(fmt.Sprintf("snapshot %s: %v", snap.ID.Short(), err))
		return nil, err
	}
	f.cache.put(key, b, len(b))
	return b, nil
}

type cacheKey struct {
	kind blob.Type
	id   blob.ID
}

// lru holds decoded trees (counted) and chunks (by size).
type lru struct {
	mu           sync.Mutex
	ll           *list.List
	items        map[cacheKey]*list.Element
	bytes, trees int
}

type lruItem struct {
	key  cacheKey
	val  any
	size int
}

func newLRU() *lru { return &lru{ll: list.New(), items: map[cacheKey]*list.Element{}} }

func (c *lru) get(k cacheKey) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruItem).val, true
	}
	return nil, false
}

func (c *lru) put(k cacheKey, v any, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = c.ll.PushFront(&lruItem{key: k, val: v, size: size})
	c.bytes += size
	if k.kind == blob.Tree {
		c.trees++
	}
	for c.bytes > maxCachedBytes || c.trees > maxCachedTrees {
		e := c.ll.Back()
		if e == nil || e == c.ll.Front() {
			break
		}
		it := e.Value.(*lruItem)
		c.ll.Remove(e)
		delete(c.items, it.key)
		c.bytes -= it.size
		if it.key.kind == blob.Tree {
			c.trees--
		}
	}
}

// ---- the static part: root, snapshots/, hosts/, tags/, ids/ ----

type rootDir struct {
	fs.Inode
	fsys *FS
}

var _ = (fs.NodeOnAdder)((*rootDir)(nil))

// OnAdd builds the static directories: the snapshot list is fixed when
// the repository is mounted.
func (r *rootDir) OnAdd(ctx context.Context) {
	f := r.fsys
	all := r.dir(ctx, &r.Inode, "snapshots")
	f.addSnapshots(ctx, all, f.snaps)
	hosts := r.dir(ctx, &r.Inode, "hosts")
	tags := r.dir(ctx, &r.Inode, "tags")
	ids := r.dir(ctx, &r.Inode, "ids")
	byHost, byTag := map[string][]*repository.Snapshot{}, map[string][]*repository.Snapshot{}
	for _, s := range f.snaps {
		byHost[s.Meta.HostLabel] = append(byHost[s.Meta.HostLabel], s)
		for _, t := range s.Meta.Tags {
			byTag[t] = append(byTag[t], s)
		}
	}
	for _, g := range []struct {
		parent *fs.Inode
		by     map[string][]*repository.Snapshot
		what   string
	}{{hosts, byHost, "host label"}, {tags, byTag, "tag"}} {
		for _, name := range sortedKeys(g.by) {
			if snapshot.ValidName(name) != nil {
				f.warn(fmt.Sprintf("%s %q cannot be a directory name; its snapshots are under snapshots/ and ids/", g.what, name))
				continue
			}
			f.addSnapshots(ctx, r.dir(ctx, g.parent, name), g.by[name])
		}
	}
	short := map[string]int{}
	for _, s := range f.snaps {
		short[s.ID.Short()]++
	}
	for _, s := range f.snaps {
		name := s.ID.Short()
		if short[name] > 1 {
			name = s.ID.String()
		}
		ids.AddChild(name, f.snapshotDir(ctx, &r.Inode, s), false)
	}
}

func (r *rootDir) dir(ctx context.Context, parent *fs.Inode, name string) *fs.Inode {
	ch := parent.NewPersistentInode(ctx, &staticDir{mtime: r.fsys.newest()}, fs.StableAttr{Mode: fuse.S_IFDIR})
	parent.AddChild(name, ch, false)
	return ch
}

func (r *rootDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | 0o555
	setTimes(&out.Attr, r.fsys.newest())
	return 0
}

func (f *FS) newest() time.Time {
	if len(f.snaps) == 0 {
		return time.Time{}
	}
	return f.snaps[len(f.snaps)-1].Standing.Time
}

// addSnapshots adds one directory per snapshot, named by its time (a
// suffix -1, -2 … for equal times), and a latest symlink.
func (f *FS) addSnapshots(ctx context.Context, dir *fs.Inode, snaps []*repository.Snapshot) {
	names := map[string]int{}
	byID := map[blob.ID]string{}
	for _, s := range snaps {
		name := s.Time().Local().Format(TimeFormat)
		if n := names[name]; n > 0 {
			names[name]++
			name = fmt.Sprintf("%s-%d", name, n)
		} else {
			names[name] = 1
		}
		byID[s.ID] = name
		dir.AddChild(name, f.snapshotDir(ctx, dir, s), false)
	}
	if latest, _ := repository.Latest(snaps, func(*repository.Snapshot) bool { return true }); latest != nil {
		l := &fs.MemSymlink{Data: []byte(byID[latest.ID])}
		setTimes(&l.Attr, latest.Time())
		l.Attr.Size = uint64(len(l.Data))
		dir.AddChild("latest", dir.NewPersistentInode(ctx, l, fs.StableAttr{Mode: fuse.S_IFLNK}), false)
	}
}

func (f *FS) snapshotDir(ctx context.Context, parent *fs.Inode, s *repository.Snapshot) *fs.Inode {
	return parent.NewPersistentInode(ctx, &treeDir{entry: entry{info: info{fsys: f, snap: s,
		node: snapshot.Node{Type: snapshot.TypeDir, Mode: 0o555, MTime: s.Time(), CTime: s.Time()}}}, id: s.File.Statement.Root, root: true}, fs.StableAttr{Mode: fuse.S_IFDIR})
}

func sortedKeys(m map[string][]*repository.Snapshot) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type staticDir struct {
	fs.Inode
	mtime time.Time
}

func (d *staticDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | 0o555
	setTimes(&out.Attr, d.mtime)
	return 0
}

func setTimes(a *fuse.Attr, t time.Time) {
	if t.IsZero() {
		return
	}
	a.SetTimes(&t, &t, &t)
}
