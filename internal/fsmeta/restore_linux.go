package fsmeta

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

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
	// NoSetid drops setuid and setgid bits (of every type) and the
	// security.capability xattr: no restored file becomes a privileged
	// program, whoever owns it.
	NoSetid bool
	// Warn receives non-fatal problems: an xattr or ACL that could not be
	// set (unsupported, refused). path is relative to the target,
	// '/'-separated. Nil ignores them.
	Warn func(path string, err error)
}

// Restorer creates objects below a target directory opened once. Every
// operation resolves its path one component at a time from that directory
// file descriptor, opening each directory with O_NOFOLLOW, and creates the
// final component with an *at system call that does not follow symlinks,
// so no symlink (restored earlier, pre-existing, or swapped in concurrently)
// can redirect a write outside the target. It is safe for concurrent use.
type Restorer struct {
	root      *os.File
	opts      RestoreOptions
	isRoot    bool  // euid 0: may chown and mknod devices
	procOK    bool  // /proc/self/fd works: xattrs and (before fchmodat2) modes through a descriptor
	self      owner // this process's euid and egid
	rootOwner owner // the target's owner

	mu   sync.Mutex
	uids map[string]int
	gids map[string]int

	token string        // this Restorer's part of temporary names (restore_temp_linux.go)
	seq   atomic.Uint64 // the next temporary name's number
	// noTmpfile: the file system refused O_TMPFILE; files get temporary
	// names (restore_temp_linux.go).
	noTmpfile atomic.Bool

	dmu     sync.Mutex
	dirs    map[string]*dirEntry // joined components → O_PATH directory descriptor (see openDir)
	maxDirs int                  // entries in dirs before they are dropped
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
		root:    root,
		opts:    opts,
		isRoot:  os.Geteuid() == 0,
		uids:    map[string]int{},
		gids:    map[string]int{},
		dirs:    map[string]*dirEntry{},
		maxDirs: cachedDirs(),
		token:   newTempToken(),
	}
	_, err = os.Stat("/proc/self/fd/" + strconv.Itoa(int(root.Fd())))
	r.procOK = err == nil
	r.self = owner{uint32(os.Geteuid()), uint32(os.Getegid())}
	var st unix.Stat_t
	if unix.Fstat(int(root.Fd()), &st) == nil {
		r.rootOwner = owner{st.Uid, st.Gid}
	}
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

// cachedDirs bounds the directory descriptors a Restorer keeps open: a
// quarter of the descriptor limit (Go raises the soft limit to the hard one
// at start), between 256 and 8192.
var cachedDirs = sync.OnceValue(func() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 256
	}
	return int(min(max(lim.Cur/4, 256), 8192))
})

// dirEntry is a cached directory descriptor. refs counts the operations
// using it; an entry dropped from the cache while in use is closed by the
// last of them.
type dirEntry struct {
	fd      int
	owner   owner // when opened
	refs    int
	dropped bool
}

// owner is the user and group owning an object.
type owner struct{ uid, gid uint32 }

// dirRef is a directory descriptor an operation holds until release.
type dirRef struct {
	r *Restorer
	e *dirEntry // nil for the target directory, which lives as long as r
}

func (d dirRef) fd() int {
	if d.e == nil {
		return d.r.rootFd()
	}
	return d.e.fd
}

// owner is who owned the directory when it was opened.
func (d dirRef) owner() owner {
	if d.e == nil {
		return d.r.rootOwner
	}
	return d.e.owner
}

func (d dirRef) release() {
	if d.e == nil {
		return
	}
	d.r.dmu.Lock()
	d.e.refs--
	if d.e.refs == 0 && d.e.dropped {
		unix.Close(d.e.fd)
	}
	d.r.dmu.Unlock()
}

// openDir opens the existing directory at components below the target as
// an O_PATH descriptor, refusing symlinks at every step. The caller
// releases it.
//
// Directories once opened are kept in a cache, so a restore of many files
// in one directory resolves its path once, not once per file (the walk
// costs three system calls per level), and uses the descriptor without
// duplicating it. A cached descriptor names the directory inode opened
// safely the first time: renaming or replacing a path component
// afterwards cannot redirect it, and this Restorer never replaces a
// directory.
func (r *Restorer) openDir(components []string) (dirRef, error) {
	if len(components) == 0 {
		return dirRef{r: r}, nil
	}
	key := joinComponents(components)
	r.dmu.Lock()
	if e, ok := r.dirs[key]; ok {
		e.refs++
		r.dmu.Unlock()
		return dirRef{r, e}, nil
	}
	r.dmu.Unlock()
	p, err := r.openDir(components[:len(components)-1])
	if err != nil {
		return dirRef{}, err
	}
	fd, own, err := openDirAt(p.fd(), components[len(components)-1])
	p.release()
	if err != nil {
		return dirRef{}, fmt.Errorf("%s: %w", key, err)
	}
	return r.cacheDir(key, fd, own), nil
}

// cacheDir adds fd, a directory opened safely, to the cache under key (or
// closes it when another operation got there first) and returns a
// reference to the cached descriptor.
func (r *Restorer) cacheDir(key string, fd int, own owner) dirRef {
	r.dmu.Lock()
	defer r.dmu.Unlock()
	e, ok := r.dirs[key]
	if ok {
		unix.Close(fd)
	} else {
		if len(r.dirs) >= r.maxDirs {
			r.dropDirsLocked()
		}
		e = &dirEntry{fd: fd, owner: own}
		r.dirs[key] = e
	}
	e.refs++
	return dirRef{r, e}
}

func (r *Restorer) dropDirsLocked() {
	for k, e := range r.dirs {
		e.dropped = true
		if e.refs == 0 {
			unix.Close(e.fd)
		}
		delete(r.dirs, k)
	}
}

// errNotDir is a path component that is not a directory; errors.Is(err,
// unix.ENOTDIR) matches it.
var errNotDir = fmt.Errorf("%w (symlinks are not followed)", unix.ENOTDIR)

// openDirAt opens name in dirfd as a directory without following it, and
// returns its owner.
func openDirAt(dirfd int, name string) (int, owner, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, owner{}, errNotDir
		}
		return -1, owner{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, owner{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return -1, owner{}, errNotDir
	}
	return fd, owner{st.Uid, st.Gid}, nil
}

// parent validates components and opens the directory holding the last
// one. The caller releases it.
func (r *Restorer) parent(components []string) (dirRef, string, error) {
	if len(components) == 0 {
		return dirRef{}, "", fmt.Errorf("%w: empty path", ErrInvalidName)
	}
	if err := ValidPath(components); err != nil {
		return dirRef{}, "", err
	}
	d, err := r.openDir(components[:len(components)-1])
	if err != nil {
		return dirRef{}, "", err
	}
	return d, components[len(components)-1], nil
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
			return ErrIsDir
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
// is replaced. An empty slice names the target itself. A directory made or
// found is kept open in the cache, so making its subdirectories and files
// costs no path walk.
func (r *Restorer) MkdirAll(components []string) error {
	if err := ValidPath(components); err != nil {
		return opErr("mkdir", components, err)
	}
	return r.mkdirAll(components)
}

func (r *Restorer) mkdirAll(components []string) error {
	if len(components) == 0 {
		return nil
	}
	key := joinComponents(components)
	r.dmu.Lock()
	_, ok := r.dirs[key]
	r.dmu.Unlock()
	if ok {
		return nil
	}
	parent := components[:len(components)-1]
	p, err := r.openDir(parent)
	if err != nil {
		// Missing, or not a directory: make it (which reports what is
		// in the way, or replaces it with Overwrite) and look again.
		if err := r.mkdirAll(parent); err != nil {
			return err
		}
		if p, err = r.openDir(parent); err != nil {
			return opErr("mkdir", parent, err)
		}
	}
	fd, own, err := r.mkdirAt(p.fd(), components[len(components)-1])
	p.release()
	if err != nil {
		return opErr("mkdir", components, err)
	}
	r.cacheDir(key, fd, own).release()
	return nil
}

// mkdirAt makes sure name in dirfd is a directory and opens it.
func (r *Restorer) mkdirAt(dirfd int, name string) (int, owner, error) {
	err := unix.Mkdirat(dirfd, name, 0o700)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, owner{}, err
	}
	fd, own, err := openDirAt(dirfd, name)
	if err == nil || !r.opts.Overwrite {
		if err != nil {
			err = fmt.Errorf("exists and is %w", err)
		}
		return fd, own, err
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		return -1, owner{}, fmt.Errorf("remove existing: %w", err)
	}
	if err := unix.Mkdirat(dirfd, name, 0o700); err != nil {
		return -1, owner{}, err
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
func (r *Restorer) CreateFile(components []string, size int64) (*File, error) {
	if size < 0 {
		return nil, opErr("create", components, fmt.Errorf("negative size %d", size))
	}
	p, name, err := r.parent(components)
	if err != nil {
		return nil, opErr("create", components, err)
	}
	defer p.release()
	pfd := p.fd()
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
	return &File{fd: fd, name: joinComponents(components)}, nil
}

// File is a regular file CreateFile made, open for writing. It is a bare
// descriptor with blocking calls: an *os.File costs a restore an fcntl
// and a poller check per file, for nothing a regular file can use. Not safe
// for concurrent use.
type File struct {
	fd   int
	name string

	// A file CreateTemp made: its directory (held until Close), its
	// temporary name there or anon (it has no name: O_TMPFILE), its final
	// name, and whether Commit put it in place.
	dir       dirRef
	temp      string
	anon      bool
	final     string
	committed bool
	// ownedBySelf: the file is new and owned by this process's euid and
	// egid (SetFileMetadata need not chown it to them).
	ownedBySelf bool
}

// Name is the file's path relative to the target.
func (f *File) Name() string { return f.name }

// Fd is the file's descriptor, valid until Close.
func (f *File) Fd() int { return f.fd }

// Write writes b at the current offset.
func (f *File) Write(b []byte) (int, error) {
	return f.writeAll(b, func(p []byte, _ int64) (int, error) { return unix.Write(f.fd, p) })
}

// WriteAt writes b at off.
func (f *File) WriteAt(b []byte, off int64) (int, error) {
	return f.writeAll(b, func(p []byte, done int64) (int, error) { return unix.Pwrite(f.fd, p, off+done) })
}

// writeAll calls write with what is left of b and how much was written
// before it, until all of b is written.
func (f *File) writeAll(b []byte, write func(p []byte, done int64) (int, error)) (int, error) {
	n := 0
	for n < len(b) {
		k, err := write(b[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, f.err("write", err)
		}
		if k == 0 {
			return n, f.err("write", io.ErrShortWrite)
		}
		n += k
	}
	return n, nil
}

// Truncate sets the file's size.
func (f *File) Truncate(size int64) error {
	return f.err("truncate", ignoringEINTR(func() error { return unix.Ftruncate(f.fd, size) }))
}

// Close closes the file; a second Close is an error. A file CreateTemp
// made that Commit did not put in place is removed (one without a name
// is freed with its descriptor).
func (f *File) Close() error {
	if f.fd < 0 {
		return f.err("close", os.ErrClosed)
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if f.temp != "" && !f.committed {
		if uerr := unix.Unlinkat(f.dir.fd(), f.temp, 0); uerr != nil && err == nil {
			err = fmt.Errorf("remove temporary file %s: %w", f.temp, uerr)
		}
	}
	if f.temp != "" || f.anon {
		f.dir.release()
		f.temp, f.anon = "", false
	}
	return f.err("close", err)
}

func (f *File) err(op string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: f.name, Err: err}
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
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
	p, name, err := r.parent(components)
	if err != nil {
		return opErr("symlink", components, err)
	}
	defer p.release()
	pfd := p.fd()
	err = r.create(pfd, name, func() error { return unix.Symlinkat(target, pfd, name) })
	return opErr("symlink", components, err)
}

// Hardlink creates components as a hard link to existing, an object
// restored earlier below the same target (see SplitPath for HardLinkTo).
// It refuses when existing is a symlink or a directory.
func (r *Restorer) Hardlink(components, existing []string) error {
	ep, ename, err := r.parent(existing)
	if err != nil {
		return opErr("hard link to", existing, err)
	}
	defer ep.release()
	epfd := ep.fd()
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
	p, name, err := r.parent(components)
	if err != nil {
		return opErr("hard link", components, err)
	}
	defer p.release()
	pfd := p.fd()
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
	p, name, err := r.parent(components)
	if err != nil {
		return opErr("mknod", components, err)
	}
	defer p.release()
	pfd := p.fd()
	err = r.create(pfd, name, func() error { return unix.Mknodat(pfd, name, mode|0o600, dev) })
	if errors.Is(err, unix.EPERM) && (mode == unix.S_IFCHR || mode == unix.S_IFBLK) {
		err = fmt.Errorf("%w: %s: %v", ErrSkipped, n.Type, err)
	}
	return opErr("mknod", components, err)
}
