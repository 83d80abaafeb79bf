package fsmeta

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Temporary names. A file is written under a hidden name next to its final
// one and renamed into place when complete, so an interrupted restore never
// leaves part of a file under a name the snapshot has:
//
//	.NAME.cairn-TTTTTTTT-N
//
// NAME is the final name (cut to fit in MaxNameLen), TTTTTTTT eight hex
// digits drawn once per Restorer and N a hex counter. RemoveTemps recognises
// the names of other Restorers (an earlier run killed before it could clean
// up) by the suffix and removes them.
const (
	tempMarker   = ".cairn-"
	tempTokenLen = 8
	tempMaxSeq   = 16 // hex digits of the counter
	// tempNameRoom is what a temporary name adds to NAME.
	tempNameRoom = 1 + len(tempMarker) + tempTokenLen + 1 + tempMaxSeq
)

func newTempToken() string {
	var b [tempTokenLen / 2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tempName is the temporary name of final for number seq.
func (r *Restorer) tempName(final string, seq uint64) string {
	if len(final) > MaxNameLen-tempNameRoom {
		final = final[:MaxNameLen-tempNameRoom]
	}
	return "." + final + tempMarker + r.token + "-" + strconv.FormatUint(seq, 16)
}

// parseTemp returns the token of a temporary name, or false if name is not
// one.
func parseTemp(name string) (token string, ok bool) {
	if len(name) == 0 || name[0] != '.' {
		return "", false
	}
	i := strings.LastIndex(name, tempMarker)
	if i < 1 {
		return "", false
	}
	rest := name[i+len(tempMarker):]
	token, seq, ok := strings.Cut(rest, "-")
	if !ok || len(token) != tempTokenLen || !isLowerHex(token) || len(seq) == 0 || len(seq) > tempMaxSeq || !isLowerHex(seq) {
		return "", false
	}
	return token, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CreateTemp creates a regular file in the directory of components (an
// existing one), open for reading and writing, mode 0600, at size as
// CreateFile does. Nothing exists under the final name until Commit;
// Close without Commit removes the file. Where the file system allows,
// the file has no name at all until Commit (O_TMPFILE): a restore killed
// mid-file leaves nothing behind, and a file costs one entry in its
// directory, not a temporary one and a rename (30% of the system time of
// creating small files on ext4). Elsewhere it is made under a temporary
// name (tempName) that Commit renames. The directory stays open until
// Close, so Commit links or renames within the directory the file was
// made in, whatever happens to the path meanwhile.
func (r *Restorer) CreateTemp(components []string, size int64) (*File, error) {
	if size < 0 {
		return nil, opErr("create", components, fmt.Errorf("negative size %d", size))
	}
	p, name, err := r.parent(components)
	if err != nil {
		return nil, opErr("create", components, err)
	}
	fd, temp, err := r.openTemp(p, name)
	if err != nil {
		p.release()
		return nil, opErr("create", components, err)
	}
	// A new file is owned by the euid and by the egid or, in a setgid
	// directory (or on a grpid mount), by the directory's group: by both
	// of this process's ids when the directory has its group.
	f := &File{fd: fd, name: joinComponents(components), dir: p, temp: temp, anon: temp == "", final: name, ownedBySelf: p.owner().gid == r.self.gid}
	if size > 0 {
		if err := unix.Ftruncate(fd, size); err != nil {
			f.Close()
			return nil, opErr("truncate", components, err)
		}
	}
	return f, nil
}

// openTemp opens a new file in p for the final name name: without a name
// (temp empty) where the file system takes O_TMPFILE, else under a new
// temporary name.
func (r *Restorer) openTemp(p dirRef, name string) (fd int, temp string, err error) {
	if !r.noTmpfile.Load() {
		fd, err = unix.Openat(p.fd(), ".", unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
		switch {
		case err == nil:
			return fd, "", nil
		case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL):
			// Not on this file system (or kernel): named ones from now on.
			r.noTmpfile.Store(true)
		case err != unix.EINTR:
			return -1, "", err
		}
	}
	for {
		temp = r.tempName(name, r.seq.Add(1))
		fd, err = unix.Openat(p.fd(), temp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != unix.EEXIST && err != unix.EINTR {
			return fd, temp, err
		}
	}
}

// ErrIsDir is a directory where a file was to be put: it is never replaced.
var ErrIsDir = errors.New("exists and is a directory")

// Commit puts a file CreateTemp made under its final name. With replace,
// an existing non-directory there is replaced in one step (the old object
// is unlinked, never opened); without it, an existing entry is an error
// matching fs.ErrExist. A directory is never replaced (ErrIsDir).
func (f *File) Commit(replace bool) error {
	if (f.temp == "" && !f.anon) || f.fd < 0 || f.committed {
		return f.err("commit", errors.New("not an open temporary file"))
	}
	dfd := f.dir.fd()
	if f.anon {
		if !replace {
			// A link fails on an existing name, as RENAME_NOREPLACE does.
			if err := f.link(f.final); err != nil {
				return f.err("commit", err)
			}
			f.committed = true
			return nil
		}
		// Replacing takes a rename: the file gets a temporary name first
		// (Close removes it unless the rename below succeeds).
		temp := f.dir.r.tempName(f.final, f.dir.r.seq.Add(1))
		if err := f.link(temp); err != nil {
			return f.err("commit", err)
		}
		f.temp, f.anon = temp, false
	}
	var err error
	if replace {
		err = ignoringEINTR(func() error { return unix.Renameat(dfd, f.temp, dfd, f.final) })
	} else {
		err = ignoringEINTR(func() error { return unix.Renameat2(dfd, f.temp, dfd, f.final, unix.RENAME_NOREPLACE) })
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// A file system without RENAME_NOREPLACE: link, which
			// fails on an existing name, then drop the temporary one.
			err = unix.Linkat(dfd, f.temp, dfd, f.final, 0)
			if err == nil {
				f.committed = true
				if uerr := unix.Unlinkat(dfd, f.temp, 0); uerr != nil {
					return f.err("commit", fmt.Errorf("remove temporary file %s: %w", f.temp, uerr))
				}
				return nil
			}
		}
	}
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) {
		return f.err("commit", fmt.Errorf("%w; not replaced", ErrIsDir))
	}
	if err != nil {
		return f.err("commit", err)
	}
	f.committed = true
	return nil
}

// link gives the nameless file f (O_TMPFILE) the name name in its
// directory; it fails if name exists. Linking a descriptor itself
// (AT_EMPTY_PATH) takes CAP_DAC_READ_SEARCH; without it the link goes
// through /proc/self/fd, which needs no privilege.
func (f *File) link(name string) error {
	dfd := f.dir.fd()
	err := ignoringEINTR(func() error { return unix.Linkat(f.fd, "", dfd, name, unix.AT_EMPTY_PATH) })
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		err = ignoringEINTR(func() error {
			return unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(f.fd), dfd, name, unix.AT_SYMLINK_FOLLOW)
		})
	}
	return err
}

// ReadAt reads len(b) bytes at off (io.ReaderAt).
func (f *File) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		k, err := unix.Pread(f.fd, b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, f.err("read", err)
		}
		if k == 0 {
			return n, io.EOF
		}
		n += k
	}
	return n, nil
}

// Lstat describes the object at components without following a symlink
// there (nor anywhere on the way): its type, size, mode, owner, times,
// inode, device, link count and rdev, as a backup would capture them.
func (r *Restorer) Lstat(components []string) (snapshot.Node, error) {
	p, name, err := r.parent(components)
	if err != nil {
		return snapshot.Node{}, opErr("lstat", components, err)
	}
	defer p.release()
	var st unix.Stat_t
	if err := unix.Fstatat(p.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return snapshot.Node{}, opErr("lstat", components, err)
	}
	return nodeFromStat(name, &st), nil
}

// Readlink returns the target of the symlink at components.
func (r *Restorer) Readlink(components []string) (string, error) {
	p, name, err := r.parent(components)
	if err != nil {
		return "", opErr("readlink", components, err)
	}
	defer p.release()
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(p.fd(), name, buf)
		if err != nil {
			return "", opErr("readlink", components, err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 1<<16 {
			return "", opErr("readlink", components, errors.New("target too long"))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// OpenExisting opens the regular file at components for reading, without
// following a symlink, without blocking on a FIFO swapped in and without
// moving its access time where permitted, and describes it (fstat of the
// open file). Anything but a regular file is an error. The File reads
// with ReadAt and takes metadata with SetFileMetadata; the caller closes
// it.
func (r *Restorer) OpenExisting(components []string) (*File, snapshot.Node, error) {
	p, name, err := r.parent(components)
	if err != nil {
		return nil, snapshot.Node{}, opErr("open", components, err)
	}
	defer p.release()
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := unix.Openat(p.fd(), name, flags|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = unix.Openat(p.fd(), name, flags, 0)
	}
	if err != nil {
		return nil, snapshot.Node{}, opErr("open", components, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, snapshot.Node{}, opErr("fstat", components, err)
	}
	n := nodeFromStat(name, &st)
	if n.Type != snapshot.TypeFile {
		unix.Close(fd)
		return nil, n, opErr("open", components, fmt.Errorf("is a %s, not a file", n.Type))
	}
	return &File{fd: fd, name: joinComponents(components)}, n, nil
}

// RemoveTemps removes from the directory at components the regular files
// with temporary names (see CreateTemp) of other Restorers: what an
// earlier restore killed before it could clean up left behind. It returns
// how many it removed.
func (r *Restorer) RemoveTemps(components []string) (int, error) {
	d, err := r.openDir(components)
	if err != nil {
		return 0, opErr("list", components, err)
	}
	defer d.release()
	fd, err := unix.Openat(d.fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, opErr("list", components, err)
	}
	dir := os.NewFile(uintptr(fd), joinComponents(components))
	defer dir.Close()
	removed := 0
	for {
		names, err := dir.Readdirnames(1024)
		for _, name := range names {
			token, ok := parseTemp(name)
			if !ok || token == r.token {
				continue
			}
			var st unix.Stat_t
			if unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			if err := unix.Unlinkat(d.fd(), name, 0); err != nil && err != unix.ENOENT {
				return removed, opErr("remove", append(components[:len(components):len(components)], name), err)
			}
			removed++
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return removed, nil
			}
			return removed, opErr("list", components, err)
		}
	}
}

// SyncFS flushes the file system holding the target to stable storage
// (syncfs(2)): everything a restore wrote there, content, metadata and
// names, in one pass.
func (r *Restorer) SyncFS() error {
	if err := ignoringEINTR(func() error { return unix.Syncfs(int(r.root.Fd())) }); err != nil {
		return fmt.Errorf("syncfs %s: %w", r.root.Name(), err)
	}
	return nil
}
