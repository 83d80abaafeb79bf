package fsmeta

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// SetMetadata applies n's metadata to the object at components (an empty
// slice is the target directory itself), which must have n's type. Call it
// after the object's content is complete and, for a directory, after all
// its children are finished: creating a child changes the directory's
// mtime, and a read-only directory mode would stop the children from being
// created.
//
// Order: owner (root only, unless NoOwner), then xattrs and ACLs, then mode
// (not for symlinks), then atime and mtime. Owner comes first because
// chown clears setuid/setgid bits and security.capability; mode after the
// ACL xattr keeps n.Mode authoritative for the group/mask bits. Xattr
// problems go to RestoreOptions.Warn; the other failures are returned,
// joined, after every step has been tried. Only call SetMetadata for
// objects this run created or directories it reused.
//
// Running as root with NoOwner, setuid/setgid bits and security.capability
// are dropped from non-directories: the files would otherwise become
// privileged root-owned programs.
func (r *Restorer) SetMetadata(components []string, n snapshot.Node) error {
	p := dirRef{r: r}
	name := "."
	if len(components) > 0 {
		var err error
		if p, name, err = r.parent(components); err != nil {
			return opErr("set metadata", components, err)
		}
	}
	defer p.release()
	pfd := p.fd()

	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return opErr("set metadata", components, err)
	}
	if got := nodeFromStat(name, &st).Type; got != n.Type {
		return opErr("set metadata", components, fmt.Errorf("is a %s, want %s", got, n.Type))
	}

	var errs []error
	if r.isRoot && !r.opts.NoOwner {
		uid, gid := r.owner(n)
		if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, opErr("chown", components, err))
		}
	}
	// Root restoring without owners would turn a stored setuid or
	// capability-carrying file of any user into a root-owned one: drop them.
	dropPriv := r.isRoot && r.opts.NoOwner && n.Type != snapshot.TypeDir
	if !r.opts.NoXattrs {
		for _, x := range n.Xattrs {
			if dropPriv && x.Name == "security.capability" {
				continue
			}
			if err := r.setXattr(pfd, name, n.Type, x); err != nil && r.opts.Warn != nil {
				r.opts.Warn(joinComponents(components), fmt.Errorf("xattr %q: %w", x.Name, err))
			}
		}
	}
	if n.Type != snapshot.TypeSymlink {
		mode := n.Mode & 0o7777
		if dropPriv {
			mode &^= unix.S_ISUID | unix.S_ISGID
		}
		if err := r.chmod(pfd, name, mode); err != nil {
			errs = append(errs, opErr("chmod", components, err))
		}
	}
	ts := []unix.Timespec{timespec(n.ATime), timespec(n.MTime)}
	if err := unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		errs = append(errs, opErr("set times", components, err))
	}
	return errors.Join(errs...)
}

// SetFileMetadata is SetMetadata for a regular file this run created with
// CreateFile and still holds open as f. Every step goes through the
// descriptor: no path to resolve, no type to check (it is the inode
// CreateFile made) and no symlink to avoid, which saves a restore of many
// small files a third of its system calls per file. The order and the
// rules are SetMetadata's; call it after the content is complete (and
// verified: reading the file could move its atime).
func (r *Restorer) SetFileMetadata(f *File, components []string, n snapshot.Node) error {
	if n.Type != snapshot.TypeFile {
		return opErr("set metadata", components, fmt.Errorf("is a file, want %s", n.Type))
	}
	fd := f.Fd()
	var errs []error
	if r.isRoot && !r.opts.NoOwner {
		uid, gid := r.owner(n)
		if err := unix.Fchown(fd, uid, gid); err != nil {
			errs = append(errs, opErr("chown", components, err))
		}
	}
	dropPriv := r.isRoot && r.opts.NoOwner
	if !r.opts.NoXattrs {
		for _, x := range n.Xattrs {
			if dropPriv && x.Name == "security.capability" {
				continue
			}
			err := errors.New("empty name")
			if x.Name != "" {
				err = unix.Fsetxattr(fd, x.Name, x.Value, 0)
			}
			if err != nil && r.opts.Warn != nil {
				r.opts.Warn(joinComponents(components), fmt.Errorf("xattr %q: %w", x.Name, err))
			}
		}
	}
	mode := n.Mode & 0o7777
	if dropPriv {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		errs = append(errs, opErr("chmod", components, err))
	}
	if err := futimens(fd, &[2]unix.Timespec{timespec(n.ATime), timespec(n.MTime)}); err != nil {
		errs = append(errs, opErr("set times", components, err))
	}
	return errors.Join(errs...)
}

// futimens sets the times of the file open as fd: utimensat with a NULL
// path, which x/sys/unix does not offer.
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// setXattr sets one attribute on name in dirfd without following a
// symlink. Regular files and directories are opened (O_NOFOLLOW) and set
// through the descriptor; other types go through /proc/self/fd/DIRFD/NAME,
// where only the pinned directory is reached through /proc and lsetxattr
// does not follow the final component.
func (r *Restorer) setXattr(dirfd int, name string, t snapshot.NodeType, x snapshot.Xattr) error {
	if x.Name == "" {
		return errors.New("empty name")
	}
	if t == snapshot.TypeFile || t == snapshot.TypeDir {
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
		if t == snapshot.TypeDir {
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err == nil {
			defer unix.Close(fd)
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				return err
			}
			if nodeFromStat(name, &st).Type != t {
				return errors.New("object changed type")
			}
			return unix.Fsetxattr(fd, x.Name, x.Value, 0)
		}
		if !errors.Is(err, unix.EACCES) || !r.procOK {
			return err
		}
	}
	if !r.procOK {
		return fmt.Errorf("%w (needs /proc for a %s)", unix.ENOTSUP, t)
	}
	return unix.Lsetxattr(procPath(dirfd, name), x.Name, x.Value, 0)
}

// chmod sets mode on name in dirfd without following a symlink. Kernels
// before 6.6 lack fchmodat2; then the object is opened O_PATH|O_NOFOLLOW,
// checked not to be a symlink, and changed through its /proc/self/fd link,
// which reaches exactly that inode.
func (r *Restorer) chmod(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	if !r.procOK {
		return fmt.Errorf("cannot chmod without following symlinks: %w", err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return errors.New("is a symlink")
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// owner returns the ids to restore for n.
func (r *Restorer) owner(n snapshot.Node) (uid, gid int) {
	uid, gid = int(n.UID), int(n.GID)
	if !r.opts.ChownByName {
		return uid, gid
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n.User != "" {
		id, ok := r.uids[n.User]
		if !ok {
			id = -1
			if u, err := user.Lookup(n.User); err == nil {
				if v, err := strconv.Atoi(u.Uid); err == nil {
					id = v
				}
			}
			r.uids[n.User] = id
		}
		if id >= 0 {
			uid = id
		}
	}
	if n.Group != "" {
		id, ok := r.gids[n.Group]
		if !ok {
			id = -1
			if g, err := user.LookupGroup(n.Group); err == nil {
				if v, err := strconv.Atoi(g.Gid); err == nil {
					id = v
				}
			}
			r.gids[n.Group] = id
		}
		if id >= 0 {
			gid = id
		}
	}
	return uid, gid
}
