package restorer

import (
	"fmt"
	"strings"

	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Privileges says which privileged objects of a snapshot a restore
// refuses. A snapshot signed by a writer is the writer's word: a
// compromised machine can back up a setuid-root shell, a block device
// node with mode 0666 or a file with cap_setuid, and a root restore would
// recreate them on the owner's machine.
type Privileges struct {
	NoOwner        bool // leave ownership to the restoring user
	NoXattrs       bool // restore no extended attributes or ACLs
	NoSpecialFiles bool // skip devices, FIFOs and sockets
	NoSetid        bool // drop setuid/setgid bits and security.capability
}

// All reports whether every privileged object is refused.
func (p Privileges) All() bool { return p.NoOwner && p.NoXattrs && p.NoSpecialFiles && p.NoSetid }

// Missing names the flags (as `restore` spells them) not set.
func (p Privileges) Missing() []string {
	var m []string
	for _, f := range []struct {
		set  bool
		flag string
	}{{p.NoSetid, "--no-setid"}, {p.NoSpecialFiles, "--no-special-files"}, {p.NoXattrs, "--no-xattrs"}, {p.NoOwner, "--no-owner"}} {
		if !f.set {
			m = append(m, f.flag)
		}
	}
	return m
}

// fsOptions are the file system restorer's options for a restore: every
// xattr, ACL, owner or mode it cannot set becomes a warning.
func (r *restore) fsOptions() fsmeta.RestoreOptions {
	p := r.opts.Privileges
	return fsmeta.RestoreOptions{
		Overwrite: r.opts.Overwrite != OverwriteNever,
		NoOwner:   p.NoOwner,
		NoXattrs:  p.NoXattrs,
		NoSetid:   p.NoSetid,
		Warn:      func(path string, err error) { r.warn(path, err) },
	}
}

// skipSpecial reports (and notes in the result) a device, FIFO or socket
// that NoSpecialFiles keeps out.
func (r *restore) skipSpecial(comps []string, n *snapshot.Node) bool {
	switch n.Type {
	case snapshot.TypeCharDev, snapshot.TypeBlkDev, snapshot.TypeFIFO, snapshot.TypeSocket:
	default:
		return false
	}
	if !r.opts.Privileges.NoSpecialFiles {
		return false
	}
	r.mu.Lock()
	r.res.Skipped = append(r.res.Skipped, fmt.Sprintf("%s: %s not restored (--no-special-files)", strings.Join(comps, "/"), n.Type))
	r.mu.Unlock()
	return true
}
