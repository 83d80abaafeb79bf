package fsmeta

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// FSKind classifies a file system for the default "do not descend" rule.
type FSKind uint8

// File system kinds.
const (
	FSLocal   FSKind = iota // ordinary storage; backed up
	FSVirtual               // kernel or memory file system (proc, sysfs, tmpfs, ...)
	FSNetwork               // remote storage (nfs, cifs, sshfs, ...)
)

// Magic numbers x/sys/unix does not name.
const (
	mqueueMagic   = 0x19800202
	configfsMagic = 0x62656570
	fusectlMagic  = 0x65735543
)

type fsInfo struct {
	name string
	kind FSKind
}

// magicKinds lists the statfs f_type values that are not descended by
// default. devtmpfs reports the tmpfs magic number.
var magicKinds = map[int64]fsInfo{
	unix.PROC_SUPER_MAGIC:      {"proc", FSVirtual},
	unix.SYSFS_MAGIC:           {"sysfs", FSVirtual},
	unix.DEVPTS_SUPER_MAGIC:    {"devpts", FSVirtual},
	unix.TMPFS_MAGIC:           {"tmpfs", FSVirtual},
	unix.RAMFS_MAGIC:           {"ramfs", FSVirtual},
	unix.CGROUP_SUPER_MAGIC:    {"cgroup", FSVirtual},
	unix.CGROUP2_SUPER_MAGIC:   {"cgroup2", FSVirtual},
	unix.DEBUGFS_MAGIC:         {"debugfs", FSVirtual},
	unix.TRACEFS_MAGIC:         {"tracefs", FSVirtual},
	unix.SECURITYFS_MAGIC:      {"securityfs", FSVirtual},
	unix.PSTOREFS_MAGIC:        {"pstore", FSVirtual},
	unix.BPF_FS_MAGIC:          {"bpf", FSVirtual},
	configfsMagic:              {"configfs", FSVirtual},
	fusectlMagic:               {"fusectl", FSVirtual},
	mqueueMagic:                {"mqueue", FSVirtual},
	unix.HUGETLBFS_MAGIC:       {"hugetlbfs", FSVirtual},
	unix.AUTOFS_SUPER_MAGIC:    {"autofs", FSVirtual},
	unix.BINFMTFS_MAGIC:        {"binfmt_misc", FSVirtual},
	unix.SELINUX_MAGIC:         {"selinuxfs", FSVirtual},
	unix.SMACK_MAGIC:           {"smackfs", FSVirtual},
	unix.EFIVARFS_MAGIC:        {"efivarfs", FSVirtual},
	unix.NSFS_MAGIC:            {"nsfs", FSVirtual},
	unix.BINDERFS_SUPER_MAGIC:  {"binderfs", FSVirtual},
	unix.RDTGROUP_SUPER_MAGIC:  {"resctrl", FSVirtual},
	unix.OPENPROM_SUPER_MAGIC:  {"openpromfs", FSVirtual},
	unix.USBDEVICE_SUPER_MAGIC: {"usbdevfs", FSVirtual},
	unix.XENFS_SUPER_MAGIC:     {"xenfs", FSVirtual},
	unix.NFS_SUPER_MAGIC:       {"nfs", FSNetwork},
	unix.SMB_SUPER_MAGIC:       {"smb", FSNetwork},
	unix.SMB2_SUPER_MAGIC:      {"smb2", FSNetwork},
	unix.CIFS_SUPER_MAGIC:      {"cifs", FSNetwork},
	unix.CEPH_SUPER_MAGIC:      {"ceph", FSNetwork},
	unix.AFS_SUPER_MAGIC:       {"afs", FSNetwork},
	unix.AFS_FS_MAGIC:          {"afs", FSNetwork},
	unix.CODA_SUPER_MAGIC:      {"coda", FSNetwork},
	unix.NCP_SUPER_MAGIC:       {"ncpfs", FSNetwork},
}

// fuseKinds classifies FUSE file systems by mountinfo subtype
// ("fuse.sshfs" -> "sshfs"). Unlisted FUSE file systems (ntfs-3g, exfat,
// bindfs, ...) are treated as local.
var fuseKinds = map[string]FSKind{
	"sshfs": FSNetwork, "rclone": FSNetwork, "s3fs": FSNetwork,
	"gcsfuse": FSNetwork, "goofys": FSNetwork, "davfs": FSNetwork,
	"curlftpfs": FSNetwork, "glusterfs": FSNetwork, "ceph-fuse": FSNetwork,
	"juicefs": FSNetwork, "blobfuse": FSNetwork, "blobfuse2": FSNetwork,
	"mountpoint-s3": FSNetwork, "smbnetfs": FSNetwork, "afpfs": FSNetwork,
	"gvfsd-fuse": FSNetwork, "kbfsfuse": FSNetwork,
	"lxcfs": FSVirtual, "portal": FSVirtual,
}

// FileSystem reports the kind and name of the file system holding path
// (for example FSVirtual, "proc"). Local file systems report FSLocal and
// their statfs or mountinfo name when known. FUSE file systems are
// classified by their subtype in /proc/self/mountinfo; if that cannot be
// read they count as local.
func FileSystem(path string) (FSKind, string, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return FSLocal, "", &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	magic := int64(sfs.Type) & 0xffffffff
	if info, ok := magicKinds[magic]; ok {
		return info.kind, info.name, nil
	}
	if magic == unix.FUSE_SUPER_MAGIC {
		sub := fuseSubtype(path)
		if sub == "" {
			return FSLocal, "fuse", nil
		}
		return fuseKinds[sub], "fuse." + sub, nil
	}
	return FSLocal, "", nil
}

// fuseSubtype finds the mount holding path in /proc/self/mountinfo (longest
// mount point prefix) and returns its FUSE subtype, "" if unknown.
func fuseSubtype(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	best, bestType := -1, ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		mp, fstype, ok := parseMountinfo(sc.Text())
		if !ok || !pathHasPrefix(abs, mp) || len(mp) < best {
			continue
		}
		best, bestType = len(mp), fstype
	}
	if sub, ok := strings.CutPrefix(bestType, "fuse."); ok {
		return sub
	}
	if sub, ok := strings.CutPrefix(bestType, "fuseblk."); ok {
		return sub
	}
	return ""
}

// parseMountinfo returns the mount point and file system type of one
// /proc/self/mountinfo line (see proc(5)).
func parseMountinfo(line string) (mountPoint, fstype string, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 10 {
		return "", "", false
	}
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+1 >= len(fields) {
		return "", "", false
	}
	return unescapeOctal(fields[4]), fields[sep+1], true
}

// unescapeOctal undoes mountinfo's \ooo escaping of space, tab, newline
// and backslash.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func pathHasPrefix(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}
