package fsmeta

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// CaptureOptions tune what Capturer records.
type CaptureOptions struct {
	NoNames  bool // do not resolve uid/gid to user and group names
	NoXattrs bool // do not read extended attributes (and ACLs)
}

// Capturer turns lstat results into snapshot.Nodes. It caches uid and gid
// name lookups; it is safe for concurrent use.
type Capturer struct {
	opts   CaptureOptions
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

// NewCapturer returns a Capturer with empty name caches.
func NewCapturer(opts CaptureOptions) *Capturer {
	return &Capturer{opts: opts, users: map[uint32]string{}, groups: map[uint32]string{}}
}

// Lstat describes the object at path without following a final symlink.
// Name is the last path element as raw bytes. Content fields, Extents and
// HardLinkTo are left for the caller (see DataExtents and HardLinks).
func (c *Capturer) Lstat(path string) (snapshot.Node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return snapshot.Node{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return c.fromStat(path, filepath.Base(path), &st, func() (string, error) { return os.Readlink(path) })
}

// LstatAt is Lstat of name in the open directory d. The kernel resolves
// one name, not every element of the path again, which is most of what a
// no-change backup costs; and a directory above d renamed or replaced by
// a symlink during the walk cannot redirect it.
func (c *Capturer) LstatAt(d *Dir, name string) (snapshot.Node, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return snapshot.Node{}, &os.PathError{Op: "lstat", Path: filepath.Join(d.path, name), Err: err}
	}
	path := filepath.Join(d.path, name)
	return c.fromStat(path, name, &st, func() (string, error) {
		t, err := readlinkAt(d.fd, name)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: path, Err: err}
		}
		return t, nil
	})
}

func (c *Capturer) fromStat(path, name string, st *unix.Stat_t, readlink func() (string, error)) (snapshot.Node, error) {
	n := nodeFromStat(name, st)
	if n.Type == 0 {
		return n, fmt.Errorf("lstat %s: unknown file type %#o", path, st.Mode&unix.S_IFMT)
	}
	if n.Type == snapshot.TypeSymlink {
		t, err := readlink()
		if err != nil {
			return n, err
		}
		n.LinkTarget = t
	}
	if !c.opts.NoNames {
		n.User = c.userName(n.UID)
		n.Group = c.groupName(n.GID)
	}
	if !c.opts.NoXattrs {
		x, err := ListXattrs(path)
		if err != nil {
			return n, err
		}
		n.Xattrs = x
	}
	return n, nil
}

// readlinkAt reads the target of symlink name in directory fd, growing its
// buffer until the target fits.
func readlinkAt(fd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func nodeFromStat(name string, st *unix.Stat_t) snapshot.Node {
	n := snapshot.Node{
		Name:   name,
		Mode:   st.Mode & 07777,
		UID:    st.Uid,
		GID:    st.Gid,
		MTime:  time.Unix(st.Mtim.Unix()),
		ATime:  time.Unix(st.Atim.Unix()),
		CTime:  time.Unix(st.Ctim.Unix()),
		Inode:  st.Ino,
		Device: st.Dev,
		Links:  uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = snapshot.TypeFile
		n.Size = uint64(st.Size)
	case unix.S_IFDIR:
		n.Type = snapshot.TypeDir
	case unix.S_IFLNK:
		n.Type = snapshot.TypeSymlink
	case unix.S_IFIFO:
		n.Type = snapshot.TypeFIFO
	case unix.S_IFCHR:
		n.Type = snapshot.TypeCharDev
		n.Rdev = st.Rdev
	case unix.S_IFBLK:
		n.Type = snapshot.TypeBlkDev
		n.Rdev = st.Rdev
	case unix.S_IFSOCK:
		n.Type = snapshot.TypeSocket
	}
	return n
}

// userName returns the cached name of uid, "" if it has none.
func (c *Capturer) userName(uid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	name, ok := c.users[uid]
	if !ok {
		if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
			name = u.Username
		}
		c.users[uid] = name
	}
	return name
}

func (c *Capturer) groupName(gid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	name, ok := c.groups[gid]
	if !ok {
		if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
			name = g.Name
		}
		c.groups[gid] = name
	}
	return name
}

// ListXattrs reads the extended attributes of path (not following a final
// symlink), sorted by name. POSIX ACLs appear as system.posix_acl_access and
// system.posix_acl_default. A file system without xattr support yields nil.
func ListXattrs(path string) ([]snapshot.Xattr, error) {
	return readXattrs(xattrSource{
		path: path,
		list: func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		get:  func(name string, b []byte) (int, error) { return unix.Lgetxattr(path, name, b) },
	})
}

// xattrSource reads the attributes of one object, by path or through a
// descriptor.
type xattrSource struct {
	path string // for errors
	list func([]byte) (int, error)
	get  func(string, []byte) (int, error)
}

func readXattrs(src xattrSource) ([]snapshot.Xattr, error) {
	names, err := src.names()
	if err != nil || len(names) == 0 {
		return nil, err
	}
	sort.Strings(names)
	out := make([]snapshot.Xattr, 0, len(names))
	for _, name := range names {
		v, err := src.value(name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, snapshot.Xattr{Name: name, Value: v})
	}
	return out, nil
}

func (src xattrSource) names() ([]string, error) {
	for {
		size, err := src.list(nil)
		if err != nil {
			if xattrUnsupported(err) {
				return nil, nil
			}
			return nil, &os.PathError{Op: "listxattr", Path: src.path, Err: err}
		}
		if size == 0 {
			return nil, nil
		}
		buf := make([]byte, size)
		n, err := src.list(buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew between the two calls
		}
		if err != nil {
			return nil, &os.PathError{Op: "listxattr", Path: src.path, Err: err}
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

func (src xattrSource) value(name string) ([]byte, error) {
	for {
		size, err := src.get(name, nil)
		if err != nil {
			return nil, &os.PathError{Op: "getxattr " + name, Path: src.path, Err: err}
		}
		buf := make([]byte, size)
		if size == 0 {
			return buf, nil
		}
		n, err := src.get(name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr " + name, Path: src.path, Err: err}
		}
		return buf[:n], nil
	}
}

func xattrUnsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}
