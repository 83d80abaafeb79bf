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
// created; a directory gets its final owner and mode only then.
//
// The object is opened once, O_PATH|O_NOFOLLOW (a directory through the
// descriptor MkdirAll cached, which names the inode this run made), checked
// with fstat to have n's type, and every change goes through that
// descriptor: fchownat and utimensat with AT_EMPTY_PATH, mode and xattrs
// through /proc/self/fd/N (or fchmodat2 with AT_EMPTY_PATH). Nothing is
// changed by name after a check by name, so a local user who swaps the
// name for another object between the steps (renameat2 RENAME_EXCHANGE)
// cannot make a root restore chown or chmod that object.
//
// Order: owner (root only, unless NoOwner), then xattrs and ACLs, then mode
// (not for symlinks), then atime and mtime. Owner comes first because
// chown clears setuid/setgid bits and security.capability; mode after the
// ACL xattr keeps n.Mode authoritative for the group/mask bits. Xattr
// problems go to RestoreOptions.Warn; the other failures are returned,
// joined, after every step has been tried. Only call SetMetadata for
// objects this run created or directories it reused.
//
// Setuid/setgid bits and security.capability are dropped with NoSetid,
// and from non-directories when running as root with NoOwner: the files
// would otherwise become privileged root-owned programs.
func (r *Restorer) SetMetadata(components []string, n snapshot.Node) error {
	if err := ValidPath(components); err != nil {
		return opErr("set metadata", components, err)
	}
	fd, err := r.openObject(components, n.Type)
	if err != nil {
		return opErr("set metadata", components, err)
	}
	defer unix.Close(fd)

	var errs []error
	if r.isRoot && !r.opts.NoOwner {
		uid, gid := r.owner(n)
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, opErr("chown", components, err))
		}
	}
	dropPriv := r.dropPrivileges(n.Type)
	if !r.opts.NoXattrs {
		for _, x := range n.Xattrs {
			if dropPriv && x.Name == "security.capability" {
				continue
			}
			if err := r.setXattr(fd, x); err != nil {
				r.warn(components, fmt.Errorf("xattr %q not restored: %w", x.Name, err))
			}
		}
	}
	if n.Type != snapshot.TypeSymlink {
		mode := n.Mode & 0o7777
		if dropPriv {
			mode &^= unix.S_ISUID | unix.S_ISGID
		}
		if err := r.chmodFd(fd, mode); err != nil {
			errs = append(errs, opErr("chmod", components, err))
		}
	}
	if err := r.utimesFd(fd, []unix.Timespec{timespec(n.ATime), timespec(n.MTime)}); err != nil {
		errs = append(errs, opErr("set times", components, err))
	}
	return errors.Join(errs...)
}

// dropPrivileges reports whether setuid/setgid bits and
// security.capability are to be dropped from an object of type t.
func (r *Restorer) dropPrivileges(t snapshot.NodeType) bool {
	return r.opts.NoSetid || (r.isRoot && r.opts.NoOwner && t != snapshot.TypeDir)
}

func (r *Restorer) warn(components []string, err error) {
	if r.opts.Warn != nil {
		r.opts.Warn(joinComponents(components), err)
	}
}

// openObject opens the object at components as an O_PATH descriptor that
// does not follow a symlink, and checks that it is a t. A directory is
// reopened from the cached descriptor MkdirAll or openDir made (or walked
// to with O_NOFOLLOW at every step); the target itself is components nil.
func (r *Restorer) openObject(components []string, t snapshot.NodeType) (int, error) {
	var fd int
	if t == snapshot.TypeDir {
		d, err := r.openDir(components)
		if err != nil {
			return -1, err
		}
		fd, err = unix.Openat(d.fd(), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		d.release()
		if err != nil {
			return -1, err
		}
	} else {
		if len(components) == 0 {
			return -1, fmt.Errorf("the target is a directory, want %s", t)
		}
		p, err := r.openDir(components[:len(components)-1])
		if err != nil {
			return -1, err
		}
		fd, err = unix.Openat(p.fd(), components[len(components)-1], unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		p.release()
		if err != nil {
			return -1, err
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if got := nodeFromStat("", &st).Type; got != t {
		unix.Close(fd)
		return -1, fmt.Errorf("is a %s, want %s", got, t)
	}
	return fd, nil
}

// SetFileMetadata is SetMetadata for a regular file this run created with
// CreateFile or CreateTemp (or opened with OpenExisting) and still holds
// open as f. Every step goes through the
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
		// A file this run made already has this process's owner: a
		// restore as root of root's files (most of a system) saves a
		// system call per file.
		uid, gid := r.owner(n)
		if !f.ownedBySelf || (owner{uint32(uid), uint32(gid)}) != r.self {
			if err := fchown(fd, uid, gid); err != nil {
				errs = append(errs, opErr("chown", components, err))
			}
		}
	}
	dropPriv := r.dropPrivileges(snapshot.TypeFile)
	if !r.opts.NoXattrs {
		for _, x := range n.Xattrs {
			if dropPriv && x.Name == "security.capability" {
				continue
			}
			err := errors.New("empty name")
			if x.Name != "" {
				err = unix.Fsetxattr(fd, x.Name, x.Value, 0)
			}
			if err != nil {
				r.warn(components, fmt.Errorf("xattr %q not restored: %w", x.Name, err))
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

// setXattr sets one attribute on the object open as fd (any descriptor,
// O_PATH included) through /proc/self/fd/N: the magic link reaches exactly
// that inode, a symlink itself rather than its target.
func (r *Restorer) setXattr(fd int, x snapshot.Xattr) error {
	if x.Name == "" {
		return errors.New("empty name")
	}
	if !r.procOK {
		return fmt.Errorf("%w (needs /proc to set it through a descriptor)", unix.ENOTSUP)
	}
	return unix.Setxattr(fdPath(fd), x.Name, x.Value, 0)
}

// chmodFd sets the mode of the object open as fd (not a symlink):
// fchmodat2 with AT_EMPTY_PATH (Linux 6.6), else chmod of its
// /proc/self/fd link, which reaches exactly that inode.
func (r *Restorer) chmodFd(fd int, mode uint32) error {
	err := fchmodat2Empty(fd, mode)
	if err == nil || !(errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EBADF)) {
		return err
	}
	if !r.procOK {
		return fmt.Errorf("cannot chmod through a descriptor without /proc: %w", err)
	}
	return unix.Chmod(fdPath(fd), mode)
}

// utimesFd sets the times of the object open as fd: utimensat with
// AT_EMPTY_PATH, else through its /proc/self/fd link.
func (r *Restorer) utimesFd(fd int, ts []unix.Timespec) error {
	err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	if err == nil || !(errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EBADF) || errors.Is(err, unix.ENOENT)) || !r.procOK {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(fd), ts, 0)
}

// fchmodat2Empty is fchmodat2(fd, "", mode, AT_EMPTY_PATH), which x/sys/unix
// does not offer.
func fchmodat2Empty(fd int, mode uint32) error {
	empty := [1]byte{}
	_, _, e := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(fd), uintptr(unsafe.Pointer(&empty[0])), uintptr(mode), unix.AT_EMPTY_PATH, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// fchown is unix.Fchown; a test counts its calls.
var fchown = unix.Fchown

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

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
