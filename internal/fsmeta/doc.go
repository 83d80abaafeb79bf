// Package fsmeta is the file system side of backup and restore: it turns
// file system objects into snapshot.Nodes and snapshot.Nodes back into file
// system objects. It knows nothing of repositories, encryption or chunking;
// callers read content through Content (OpenContent) and write it through
// the File handles Restorer.CreateFile returns.
// It is Linux-only (the system-call parts live in *_linux.go files).
//
// # Capture
//
// Capturer.Lstat fills a Node from lstat(2): type, mode bits 07777,
// uid/gid and their names (cached), m/a/ctime with nanoseconds, size (regular
// files), inode/device/link count, rdev (devices), the symlink target
// (readlink), and the xattrs from llistxattr/lgetxattr sorted by name, POSIX
// ACLs included as system.posix_acl_*; a file opened for its content reads
// them through the descriptor instead (Content.Xattrs). Names are raw bytes.
//
// DataExtents finds the data runs of a sparse file with SEEK_DATA/SEEK_HOLE
// when its allocated blocks are fewer than its size; dense files give nil.
// HardLinks maps a second occurrence of a (device, inode) to the first
// path. Changed compares two captures of a file to detect a file that
// changed while it was read (size, mtime, ctime, inode, device, type).
//
// # Traversal
//
// ReadDirSorted (or Dir.Names on a directory opened with OpenDir) lists a
// directory sorted by raw name bytes, which is the order trees are built
// in; Capturer.LstatAt describes an entry relative to the open Dir. Filter holds the three rules below; Walk is a
// pre-order walker built from the same pieces for listings and dry runs.
//
// # Exclude patterns
//
// A pattern is tested against the path of each entry as the walker sees it
// (roots joined with names; the archiver passes absolute paths), split into
// '/'-separated components after cleaning. The rules, gitignore-like:
//
//   - A pattern starting with '/' is anchored: it must match the path from
//     its first component ("/home/u/tmp" matches exactly that path).
//   - Any other pattern may match any trailing run of components: "*.o"
//     tests the base name, "build/*.o" tests the last two components
//     (as if written "**/build/*.o").
//   - A trailing '/' restricts the pattern to directories ("cache/").
//   - Within a component, '*' matches any bytes, '?' one character,
//     "[a-z]" / "[^a-z]" a class, '\' escapes (path.Match syntax); none of
//     them matches '/'.
//   - A component "**" matches zero or more components; as the last
//     component it matches one or more, so "/data/**" excludes what is in
//     /data but not /data itself.
//   - A leading '!' re-includes what an earlier pattern excluded; the last
//     matching pattern wins. As in git, a re-included path inside an
//     excluded directory is never seen, because excluded directories are
//     not descended into.
//   - Matching is case-sensitive and byte-exact (names need not be UTF-8).
//
// Exclude files (ReadPatterns) hold one pattern per line; blank lines and
// lines starting with '#' are ignored, trailing spaces and "\r" are removed
// ("\ " keeps one), and "\#" / "\!" start a pattern with a literal '#' / '!'.
//
// # File systems that are not descended
//
// A directory is recorded but its contents are not read when
//   - OneFileSystem is set and its device is none of the roots' devices, or
//   - unless IncludeVirtual is set, statfs(2) reports a virtual or network
//     file system: proc, sysfs, devtmpfs and tmpfs (same magic number),
//     devpts, ramfs, cgroup, cgroup2, debugfs, tracefs, securityfs, pstore,
//     bpf, configfs, fusectl, mqueue, hugetlbfs, autofs, binfmt_misc,
//     selinuxfs, smackfs, efivarfs, nsfs, binderfs, resctrl, openpromfs,
//     usbdevfs, xenfs; nfs, smb, smb2, cifs, ceph, afs, coda, ncpfs; and
//     FUSE mounts whose /proc/self/mountinfo subtype is a known network or
//     virtual one (sshfs, rclone, s3fs, gcsfuse, glusterfs, ceph-fuse,
//     lxcfs, ...). Other FUSE file systems (ntfs-3g, ...) and 9p count as
//     local. Note that /tmp or /run on tmpfs are therefore skipped.
//
// Filter.SkipDir returns the reason ("proc file system") for the caller to
// report. Both rules apply to roots too.
//
// # Restore safety (docs/threat-model.md R18)
//
// A snapshot tree is hostile input: names, link targets and hard-link
// paths may try to escape the target directory. Restorer defends in depth:
//
//  1. Every path is a slice of components, each checked by ValidName: not
//     empty, ".", "..", no '/' or NUL, at most 255 bytes; at most 4096
//     components. Nothing is ever joined into a string path and re-parsed.
//  2. The target is opened once. Each operation walks from that descriptor
//     one component at a time with openat(O_PATH|O_DIRECTORY|O_NOFOLLOW)
//     and checks each result is a directory, so a symlink at any
//     intermediate position (restored earlier, pre-existing, or swapped in
//     concurrently) is an error, never followed. Directories so opened (or
//     made by MkdirAll) stay open in a bounded cache and later operations
//     start from them: the descriptor names the inode checked when it was
//     opened, and the Restorer never replaces a directory.
//  3. The final component is created with mkdirat, openat(O_CREAT|O_EXCL|
//     O_NOFOLLOW), symlinkat, linkat (flags 0) or mknodat, none of which
//     follows a symlink at that name; an existing entry is an error or, with
//     Overwrite, is unlinked first (never opened or written through). A
//     file written with CreateTemp gets a new hidden name, is created
//     O_EXCL|O_NOFOLLOW and renamed over its final name by Commit, which
//     replaces a non-directory there in one step and never a directory.
//  4. Metadata uses fchownat and utimensat with AT_SYMLINK_NOFOLLOW,
//     fchmodat2 with AT_SYMLINK_NOFOLLOW, fsetxattr on a descriptor opened
//     with O_NOFOLLOW, or lsetxattr, so it lands on the restored object.
//  5. Hard links name an existing path below the target in components, so
//     they cannot reach outside it; symlinks and directories are refused as
//     link sources.
//
// Files are created 0600 and directories 0700 until SetMetadata (for a file
// still open after writing, SetFileMetadata on its descriptor), so content
// is not exposed with the final, possibly looser, mode while being written.
// Directory metadata is applied after the directory's children (see
// SetMetadata). Restoring as root recreates owners, setuid bits and file
// capabilities exactly as stored; that is what a restore is for. As root
// with NoOwner, setuid/setgid bits and security.capability are dropped from
// non-directories, since the files would otherwise belong to root.
package fsmeta
