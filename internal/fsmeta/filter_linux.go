package fsmeta

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// FilterOptions select what a backup leaves out.
type FilterOptions struct {
	Excludes       []string // exclude patterns (package doc); ReadPatterns reads --exclude-file
	OneFileSystem  bool     // do not descend into directories on other devices than the roots
	IncludeVirtual bool     // descend into virtual and network file systems too
}

// Filter combines the exclude patterns, the one-file-system rule and the
// virtual/network file system rule. It is safe for concurrent use.
type Filter struct {
	opts     FilterOptions
	excluder *Excluder
	rootDevs map[uint64]bool

	mu     sync.Mutex
	fsSkip map[uint64]string // device -> skip reason ("" = descend)
}

// NewFilter compiles opts for a backup of roots. Roots are stat'ed (both
// without and with following a final symlink) to learn the devices that
// OneFileSystem allows.
func NewFilter(opts FilterOptions, roots []string) (*Filter, error) {
	ex, err := NewExcluder(opts.Excludes)
	if err != nil {
		return nil, err
	}
	f := &Filter{opts: opts, excluder: ex, rootDevs: map[uint64]bool{}, fsSkip: map[uint64]string{}}
	for _, r := range roots {
		var st unix.Stat_t
		if err := unix.Lstat(r, &st); err != nil {
			return nil, &os.PathError{Op: "lstat", Path: r, Err: err}
		}
		f.rootDevs[st.Dev] = true
		if err := unix.Stat(r, &st); err == nil {
			f.rootDevs[st.Dev] = true
		}
	}
	return f, nil
}

// Excluded reports whether path is excluded by the patterns. Call it for
// every entry, with isDir from its Lstat.
func (f *Filter) Excluded(path string, isDir bool) bool {
	return f.excluder.Excluded(path, isDir)
}

// SkipDir reports why the directory at path (whose Lstat is dir) must be
// recorded but not descended into, or "" to descend. Reasons read like
// "proc file system" or "other file system (--one-file-system)", so a
// caller can print "skipped /proc (proc file system)". The directory entry
// itself, with its metadata, still belongs in the snapshot: it is the mount
// point restore recreates.
func (f *Filter) SkipDir(path string, dir snapshot.Node) (string, error) {
	if f.opts.OneFileSystem && !f.rootDevs[dir.Device] {
		return fmt.Sprintf("other file system, device %d:%d (one file system)",
			unix.Major(dir.Device), unix.Minor(dir.Device)), nil
	}
	if f.opts.IncludeVirtual {
		return "", nil
	}
	f.mu.Lock()
	reason, ok := f.fsSkip[dir.Device]
	f.mu.Unlock()
	if ok {
		return reason, nil
	}
	kind, name, err := FileSystem(path)
	if err != nil {
		return "", err
	}
	switch kind {
	case FSVirtual:
		reason = name + " file system"
	case FSNetwork:
		reason = name + " network file system"
	}
	f.mu.Lock()
	f.fsSkip[dir.Device] = reason
	f.mu.Unlock()
	return reason, nil
}
