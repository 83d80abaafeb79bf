package fsmeta

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// ErrSkipped marks an object restore could not create in this environment
// (a device node without CAP_MKNOD); the caller reports it and goes on.
var ErrSkipped = errors.New("skipped")

// RestoreOptions tune a Restorer.
type RestoreOptions struct {
	// Overwrite replaces an existing non-directory (file, symlink, device)
	// by unlinking it before creating the new object. The old object is
	// never opened, followed or written through. Directories are never
	// replaced; an existing directory is reused by MkdirAll.
	Overwrite bool
	// ChownByName maps Node.User and Node.Group to local ids where those
	// names exist, falling back to Node.UID and Node.GID.
	ChownByName bool
	// NoOwner leaves ownership alone even when running as root.
	NoOwner bool
	// NoXattrs does not restore extended attributes or ACLs.
	NoXattrs bool
	// Warn receives non-fatal problems: unsupported or refused xattrs.
	// path is relative to the target, '/'-separated. Nil ignores them.
	Warn func(path string, err error)
}

// Restorer creates objects below a target directory opened once. Every
// operation resolves its path one component at a time from that directory
// file descriptor, opening each directory with O_NOFOLLOW, and creates the
// final component with an *at system call that does not follow symlinks,
// so no symlink (restored earlier, pre-existing, or swapped in concurrently)
// can redirect a write outside the target. It is safe for concurrent use.
type Restorer struct {
	root   *os.File
	opts   RestoreOptions
	isRoot bool // euid 0: may chown and mknod devices
	procOK bool // /proc/self/fd works, for xattrs on non-regular files

	mu   sync.Mutex
	uids map[string]int
	gids map[string]int

	dmu  sync.Mutex
	dirs map[string]int // joined components → O_PATH directory fd (see openDir)
}

// NewRestorer opens target, which must be an existing directory. Symlinks
// in target itself are followed (it is the user's choice); nothing below it
// is.
func NewRestorer(target string, opts RestoreOptions) (*Restorer, error) {
	root, err := os.OpenFile(target, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("open restore target: %w", err)
	}
	r := &Restorer{
		root:   root,
		opts:   opts,
		isRoot: os.Geteuid() == 0,
		uids:   map[string]int{},
		gids:   map[string]int{},
		dirs:   map[string]int{},
	}
	_, err = os.Stat("/proc/self/fd/" + strconv.Itoa(int(root.Fd())))
	r.procOK = err == nil
	return r, nil
}

// Close releases the target directory.
func (r *Restorer) Close() error {
	r.dmu.Lock()
	r.dropDirsLocked()
	r.dmu.Unlock()
	return r.root.Close()
}

func (r *Restorer) rootFd() int { return int(r.root.Fd()) }

// maxCachedDirs bounds the directory descriptors a Restorer keeps open.
const maxCachedDirs = 1024

// openDir opens the existing directory at components below the target as
// an O_PATH descriptor, refusing symlinks at every step. The caller closes
// it.
//
// Directories once opened are kept in a cache, so a restore of many files
// in one directory resolves its path once, not once per file (the walk
// costs three system calls per level). A cached descriptor names the
// directory inode opened safely the first time: renaming or replacing a
// path component afterwards cannot redirect it, and this Restorer never
// replaces a directory. Callers get a duplicate they own.
func (r *Restorer) openDir(components []string) (int, error) {
	if len(components) == 0 {
		return unix.Dup(r.rootFd())
	}
	key := joinComponents(components)
	r.dmu.Lock()
	if fd, ok := r.dirs[key]; ok {
		nfd, err := unix.Dup(fd)
		r.dmu.Unlock()
		return nfd, err
	}
	r.dmu.Unlock()
	pfd, err := r.openDir(components[:len(components)-1])
	if err != nil {
		return -1, err
	}
	fd, err := openDirAt(pfd, components[len(components)-1])
	unix.Close(pfd)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", key, err)
	}
	r.dmu.Lock()
	defer r.dmu.Unlock()
	if old, ok := r.dirs[key]; ok {
		unix.Close(fd)
		fd = old
	} else {
		if len(r.dirs) >= maxCachedDirs {
			r.dropDirsLocked()
		}
		r.dirs[key] = fd
	}
	return unix.Dup(fd)
}

func (r *Restorer) dropDirsLocked() {
	for k, fd := range r.dirs {
		unix.Close(fd)
		delete(r.dirs, k)
	}
}

// openDirAt opens name in dirfd as a directory without following it.
func openDirAt(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, errors.New("not a directory (symlinks are not followed)")
		}
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return -1, errors.New("not a directory (symlinks are not followed)")
	}
	return fd, nil
}

// parent validates components and opens the directory holding the last
// one. The caller closes the descriptor.
func (r *Restorer) parent(components []string) (int, string, error) {
	if len(components) == 0 {
		return -1, "", fmt.Errorf("%w: empty path", ErrInvalidName)
	}
	if err := ValidPath(components); err != nil {
		return -1, "", err
	}
	fd, err := r.openDir(components[:len(components)-1])
	if err != nil {
		return -1, "", err
	}
	return fd, components[len(components)-1], nil
}

// create runs mk (an *at call creating name in dirfd); with Overwrite, an
// existing non-directory is unlinked and mk retried once.
func (r *Restorer) create(dirfd int, name string, mk func() error) error {
	err := mk()
	if !errors.Is(err, unix.EEXIST) || !r.opts.Overwrite {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		if errors.Is(err, unix.EISDIR) {
			return errors.New("exists and is a directory")
		}
		return fmt.Errorf("remove existing: %w", err)
	}
	return mk()
}

func opErr(op string, components []string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", op, joinComponents(components), err)
}

// MkdirAll creates the directory at components and any missing parents
// (mode 0700 until SetMetadata). Existing directories are reused; an
// existing symlink or other non-directory is an error, or with Overwrite
// is replaced. An empty slice names the target itself.
func (r *Restorer) MkdirAll(components []string) error {
	if err := ValidPath(components); err != nil {
		return opErr("mkdir", components, err)
	}
	fd, err := unix.Dup(r.rootFd())
	if err != nil {
		return opErr("mkdir", components, err)
	}
	defer func() { unix.Close(fd) }()
	for i, c := range components {
		nfd, err := r.mkdirAt(fd, c)
		if err != nil {
			return opErr("mkdir", components[:i+1], err)
		}
		unix.Close(fd)
		fd = nfd
	}
	return nil
}

// mkdirAt makes sure name in dirfd is a directory and opens it.
func (r *Restorer) mkdirAt(dirfd int, name string) (int, error) {
	err := unix.Mkdirat(dirfd, name, 0o700)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	fd, err := openDirAt(dirfd, name)
	if err == nil || !r.opts.Overwrite {
		if err != nil {
			err = fmt.Errorf("exists and is %w", err)
		}
		return fd, err
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		return -1, fmt.Errorf("remove existing: %w", err)
	}
	if err := unix.Mkdirat(dirfd, name, 0o700); err != nil {
		return -1, err
	}
	return openDirAt(dirfd, name)
}

// CreateFile creates a new regular file (mode 0600 until SetMetadata or
// SetFileMetadata) in an existing directory and, when size is not zero,
// sets its length to size with ftruncate, so
// regions the caller does not write stay holes: write a sparse file's
// extents with WriteAt and nothing else. Without Overwrite an existing entry
// is an error that matches errors.Is(err, fs.ErrExist). The caller closes
// the file.
func (r *Restorer) CreateFile(components []string, size int64) (*os.File, error) {
	if size < 0 {
		return nil, opErr("create", components, fmt.Errorf("negative size %d", size))
	}
	pfd, name, err := r.parent(components)
	if err != nil {
		return nil, opErr("create", components, err)
	}
	defer unix.Close(pfd)
	fd := -1
	err = r.create(pfd, name, func() (err error) {
		fd, err = unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return nil, opErr("create", components, err)
	}
	if size > 0 {
		if err := unix.Ftruncate(fd, size); err != nil {
			unix.Close(fd)
			return nil, opErr("truncate", components, err)
		}
	}
	return os.NewFile(uintptr(fd), joinComponents(components)), nil
}

// Symlink creates a symlink at components pointing to target. The target is
// arbitrary text (it may be absolute or contain ".."): it is stored, never
// followed by the Restorer.
func (r *Restorer) Symlink(components []string, target string) error {
	if target == "" {
		return opErr("symlink", components, errors.New("empty target"))
	}
	for i := 0; i < len(target); i++ {
		if target[i] == 0 {
			return opErr("symlink", components, errors.New("target contains NUL"))
		}
	}
	pfd, name, err := r.parent(components)
	if err != nil {
		return opErr("symlink", components, err)
	}
	defer unix.Close(pfd)
	err = r.create(pfd, name, func() error { return unix.Symlinkat(target, pfd, name) })
	return opErr("symlink", components, err)
}

// Hardlink creates components as a hard link to existing, an object
// restored earlier below the same target (see SplitPath for HardLinkTo).
// It refuses when existing is a symlink or a directory.
func (r *Restorer) Hardlink(components, existing []string) error {
	epfd, ename, err := r.parent(existing)
	if err != nil {
		return opErr("hard link to", existing, err)
	}
	defer unix.Close(epfd)
	var st unix.Stat_t
	if err := unix.Fstatat(epfd, ename, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return opErr("hard link to", existing, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return opErr("hard link to", existing, errors.New("is a symlink"))
	case unix.S_IFDIR:
		return opErr("hard link to", existing, errors.New("is a directory"))
	}
	pfd, name, err := r.parent(components)
	if err != nil {
		return opErr("hard link", components, err)
	}
	defer unix.Close(pfd)
	// flags 0: linkat does not follow a symlink at ename, so even an entry
	// swapped since the check only yields a second name inside the target.
	err = r.create(pfd, name, func() error { return unix.Linkat(epfd, ename, pfd, name, 0) })
	return opErr("hard link", components, err)
}

// Mknod creates a FIFO, socket, character or block device for n (mode 0600
// until SetMetadata). Devices need root; without it (or without CAP_MKNOD)
// the error wraps ErrSkipped. n.Rdev uses Linux st_rdev encoding.
func (r *Restorer) Mknod(components []string, n snapshot.Node) error {
	var mode uint32
	switch n.Type {
	case snapshot.TypeFIFO:
		mode = unix.S_IFIFO
	case snapshot.TypeSocket:
		mode = unix.S_IFSOCK
	case snapshot.TypeCharDev:
		mode = unix.S_IFCHR
	case snapshot.TypeBlkDev:
		mode = unix.S_IFBLK
	default:
		return opErr("mknod", components, fmt.Errorf("cannot mknod a %s", n.Type))
	}
	dev := 0
	if mode == unix.S_IFCHR || mode == unix.S_IFBLK {
		if !r.isRoot {
			return opErr("mknod", components, fmt.Errorf("%w: %s needs root", ErrSkipped, n.Type))
		}
		if n.Rdev > 0xffffffff {
			return opErr("mknod", components, fmt.Errorf("device number %#x out of range", n.Rdev))
		}
		dev = int(n.Rdev)
	}
	pfd, name, err := r.parent(components)
	if err != nil {
		return opErr("mknod", components, err)
	}
	defer unix.Close(pfd)
	err = r.create(pfd, name, func() error { return unix.Mknodat(pfd, name, mode|0o600, dev) })
	if errors.Is(err, unix.EPERM) && (mode == unix.S_IFCHR || mode == unix.S_IFBLK) {
		err = fmt.Errorf("%w: %s: %v", ErrSkipped, n.Type, err)
	}
	return opErr("mknod", components, err)
}
