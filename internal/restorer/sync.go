package restorer

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/fsmeta"
)

// Durability. A restore that exits 0 has its files on stable storage: each
// file is flushed (fsync, content and metadata) before it is renamed to its
// name, so its name never points at content still in the page cache; each
// directory a name was renamed, linked or made in is flushed once, at the
// end, with its ancestors up to the target, so the names survive a crash
// too. Options.NoFsync skips both.

// syncFile flushes f before its rename.
func (r *restore) syncFile(f *fsmeta.File) error {
	if r.opts.NoFsync {
		return nil
	}
	for {
		err := unix.Fsync(f.Fd())
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
		return nil
	}
}

// dirtyDirs are the directories to flush at the end of a restore, by
// joined path: each directory something was put in, and its ancestors
// (which may have been made by the restore) up to the target.
type dirtyDirs struct {
	mu   sync.Mutex
	dirs map[string][]string
}

// add records the directory at comps and its ancestors.
func (d *dirtyDirs) add(comps []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(comps); i >= 0; i-- {
		key := strings.Join(comps[:i], "/")
		if _, ok := d.dirs[key]; ok {
			return // so are its ancestors
		}
		d.dirs[key] = comps[:i:i]
	}
}

// syncDirs flushes every dirty directory once, a few at a time; a
// directory that cannot be flushed is a warning.
func (r *restore) syncDirs(ctx context.Context) {
	if r.opts.NoFsync {
		return
	}
	var g errgroup.Group
	g.SetLimit(r.opts.Workers)
	for key, comps := range r.dirty.dirs {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := r.fs.SyncDir(comps); err != nil {
				r.warn(cmp.Or(key, "."), err)
			}
			return nil
		})
	}
	g.Wait()
}
