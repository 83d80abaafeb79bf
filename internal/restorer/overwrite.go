package restorer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Overwrite says what a restore does with an object already at a path it
// restores. Whatever it says, a directory is never replaced by anything
// else, and nothing is written through a symlink: an existing object is
// replaced by renaming a new one over its name (files) or by unlinking it
// first (symlinks, FIFOs, devices, hard links), never opened for writing.
type Overwrite int

const (
	// OverwriteIfChanged (the default) rewrites a file whose type, size or
	// content differs from the snapshot's; an identical one is kept and
	// gets the snapshot's metadata. Content is compared by re-hashing the
	// file against its content identity sealed at backup
	// (snapshot.ContentDigest).
	OverwriteIfChanged Overwrite = iota
	// OverwriteAlways rewrites every existing object.
	OverwriteAlways
	// OverwriteIfNewer rewrites an object whose modification time is
	// older than the snapshot's.
	OverwriteIfNewer
	// OverwriteNever keeps every existing object as it is.
	OverwriteNever
)

var overwriteNames = [...]string{"if-changed", "always", "if-newer", "never"}

func (o Overwrite) String() string {
	if o < 0 || int(o) >= len(overwriteNames) {
		return fmt.Sprintf("Overwrite(%d)", int(o))
	}
	return overwriteNames[o]
}

// ParseOverwrite reads an --overwrite value.
func ParseOverwrite(s string) (Overwrite, error) {
	for i, n := range overwriteNames {
		if s == n {
			return Overwrite(i), nil
		}
	}
	return 0, fmt.Errorf("unknown --overwrite %q: want always, if-changed, if-newer or never", s)
}

// checkFile looks at what is at job's path before its file is written. It
// reports whether to write the file and, if so, whether the write may
// replace an object there. When not, it has done what was needed: kept an
// identical file (and given it the snapshot's metadata), kept an existing
// object the policy keeps, or warned about a directory in the way.
func (r *restore) checkFile(job fileJob) (write, replace bool) {
	if job.fresh {
		return true, false // a directory this restore made: nothing there
	}
	path := strings.Join(job.comps, "/")
	n := job.node
	cur, err := r.fs.Lstat(job.comps)
	if errors.Is(err, fs.ErrNotExist) {
		return true, r.opts.Overwrite != OverwriteNever
	}
	if err != nil {
		r.warn(path, err)
		return false, false
	}
	if keep := r.keepExisting(path, n, cur); keep {
		if r.opts.Verify && cur.Type == snapshot.TypeFile {
			r.verifyExisting(job)
		}
		return false, false
	}
	if cur.Type == snapshot.TypeDir {
		return false, false // keepExisting warned
	}
	if r.opts.Overwrite == OverwriteIfChanged && cur.Type == snapshot.TypeFile && cur.Size == n.Size && r.reuse(job) {
		return false, false
	}
	return true, true
}

// keepExisting applies the never and if-newer policies to cur, found at
// path where the snapshot has n; it reports whether cur stays as it is. A
// directory in the place of anything else is never replaced: under the
// never policy it is kept like anything else, otherwise it is a warning
// (the caller does not replace it either).
func (r *restore) keepExisting(path string, n *snapshot.Node, cur snapshot.Node) bool {
	switch {
	case r.opts.Overwrite == OverwriteNever:
	case cur.Type == snapshot.TypeDir && n.Type != snapshot.TypeDir:
		r.warn(path, fmt.Errorf("%w; not replaced by a %s", fsmeta.ErrIsDir, n.Type))
		return false
	case r.opts.Overwrite == OverwriteIfNewer && !n.MTime.After(cur.MTime):
	default:
		return false
	}
	r.kept.Add(1)
	return true
}

// reuse opens the existing file at job's path and, when it holds exactly
// the snapshot's content, gives it the snapshot's metadata through the
// same descriptor and reports true. A file with more than one link is
// never reused (mayReuse): its other names may be outside the target, and
// setting metadata on it would change them too; it is rewritten instead,
// which replaces only this name.
func (r *restore) reuse(job fileJob) bool {
	n := job.node
	f, cur, err := r.fs.OpenExisting(job.comps)
	if err != nil {
		return false
	}
	defer f.Close()
	if cur.Size != n.Size || !mayReuse(cur) {
		return false
	}
	if ok, err := r.contentMatches(f, n); err != nil || !ok {
		return false
	}
	if err := r.fs.SetFileMetadata(f, job.comps, withATime(n)); err != nil {
		r.warn(strings.Join(job.comps, "/"), err)
	}
	r.unchanged.Add(1)
	r.unchangedBytes.Add(n.Size)
	if r.opts.Verify {
		r.verified.Add(1)
	}
	return true
}

// mayReuse reports whether an existing object may keep its inode and get
// the snapshot's metadata: it has no other name (which could be outside
// the target), and it is the restoring user's unless that is root (who
// could not change its mode or times otherwise; a new one is made
// instead).
func mayReuse(cur snapshot.Node) bool {
	euid := os.Geteuid()
	return cur.Links == 1 && (euid == 0 || cur.UID == uint32(euid))
}

// verifyExisting re-reads a file the policy kept and reports whether it
// differs from the snapshot's.
func (r *restore) verifyExisting(job fileJob) {
	path := strings.Join(job.comps, "/")
	f, cur, err := r.fs.OpenExisting(job.comps)
	if err != nil {
		r.warn(path, fmt.Errorf("verify: %w", err))
		return
	}
	defer f.Close()
	ok := cur.Size == job.node.Size
	if ok {
		if ok, err = r.contentMatches(f, job.node); err != nil {
			r.warn(path, fmt.Errorf("verify: %w", err))
			return
		}
	}
	if !ok {
		r.warn(path, fmt.Errorf("kept (--overwrite %s) and differs from the snapshot (verify failed)", r.opts.Overwrite))
		return
	}
	r.verified.Add(1)
}

// checkOther is checkFile for a symlink, FIFO or device node n at comps:
// it reports whether the object is done (kept, identical, or refused with
// a warning). An identical one (same type and target or device number)
// gets the snapshot's metadata. Otherwise the caller creates it, which
// with any policy but never replaces what is there.
func (r *restore) checkOther(comps []string, n *snapshot.Node) bool {
	path := strings.Join(comps, "/")
	cur, err := r.fs.Lstat(comps)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		r.warn(path, err)
		return true
	}
	if r.keepExisting(path, n, cur) || cur.Type == snapshot.TypeDir {
		return true
	}
	if r.opts.Overwrite != OverwriteIfChanged || cur.Type != n.Type || !mayReuse(cur) {
		return false
	}
	switch n.Type {
	case snapshot.TypeSymlink:
		if target, err := r.fs.Readlink(comps); err != nil || target != n.LinkTarget {
			return false
		}
	case snapshot.TypeCharDev, snapshot.TypeBlkDev:
		if cur.Rdev != n.Rdev {
			return false
		}
	}
	if err := r.fs.SetMetadata(comps, withATime(n)); err != nil {
		r.warn(path, err)
	}
	r.unchanged.Add(1)
	return true
}

// checkLink is checkOther for a hard link at comps to the object at
// existing: one already linked to it is done, whatever the policy.
func (r *restore) checkLink(comps, existing []string, n *snapshot.Node) bool {
	path := strings.Join(comps, "/")
	cur, err := r.fs.Lstat(comps)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		r.warn(path, err)
		return true
	}
	if to, err := r.fs.Lstat(existing); err == nil && to.Type != snapshot.TypeDir && to.Inode == cur.Inode && to.Device == cur.Device {
		r.unchanged.Add(1)
		return true
	}
	// A link's times are its target's, so if-newer and if-changed both
	// replace a link to anything else; never keeps it.
	switch {
	case r.opts.Overwrite == OverwriteNever:
		r.kept.Add(1)
	case cur.Type == snapshot.TypeDir:
		r.warn(path, fmt.Errorf("%w; not replaced by a hard link", fsmeta.ErrIsDir))
	default:
		return false
	}
	return true
}
