package archiver

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// CacheDirTag is the --exclude-caches rule: a directory holding a
// CACHEDIR.TAG file that starts with the signature of the Cache Directory
// Tagging Specification is a cache.
const CacheDirTag = "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55"

// excludes are the rules a backup applies on top of fsmeta's patterns:
// case-insensitive patterns, tag files and a size limit. An entry one of
// them matches is left out of the snapshot, as a pattern's is.
type excludes struct {
	icase      *fsmeta.Excluder
	ifPresent  []tagFile
	largerThan uint64 // 0: no limit
}

// tagFile is an --exclude-if-present rule: a directory holding a file
// Name (whose content starts with Header, when given) is left out.
type tagFile struct {
	Name   string
	Header []byte
}

// parseTagFile parses "NAME" or "NAME:HEADER".
func parseTagFile(s string) (tagFile, error) {
	name, header, _ := strings.Cut(s, ":")
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return tagFile{}, fmt.Errorf("--exclude-if-present %q: want a file name, optionally followed by :HEADER", s)
	}
	return tagFile{Name: name, Header: []byte(header)}, nil
}

func newExcludes(o Options) (*excludes, error) {
	e := &excludes{largerThan: o.ExcludeLargerThan}
	if len(o.IExcludes) > 0 {
		lower := make([]string, len(o.IExcludes))
		for i, p := range o.IExcludes {
			lower[i] = strings.ToLower(p)
		}
		ex, err := fsmeta.NewExcluder(lower)
		if err != nil {
			return nil, fmt.Errorf("--iexclude: %w", err)
		}
		e.icase = ex
	}
	for _, s := range o.ExcludeIfPresent {
		t, err := parseTagFile(s)
		if err != nil {
			return nil, err
		}
		e.ifPresent = append(e.ifPresent, t)
	}
	return e, nil
}

// excluded reports whether the entry at path, captured as n, is left out.
func (e *excludes) excluded(path string, n *snapshot.Node) bool {
	isDir := n.Type == snapshot.TypeDir
	if e.icase != nil && e.icase.Excluded(strings.ToLower(path), isDir) {
		return true
	}
	if e.largerThan > 0 && n.Type == snapshot.TypeFile && n.Size > e.largerThan {
		return true
	}
	if isDir {
		for _, t := range e.ifPresent {
			if t.presentIn(path) {
				return true
			}
		}
	}
	return false
}

// presentIn reports whether dir holds the tag file. A tag file that
// cannot be read does not count: leaving data out needs certainty.
func (t tagFile) presentIn(dir string) bool {
	p := filepath.Join(dir, t.Name)
	// Only a regular file: opening a FIFO named like a tag would block.
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	if len(t.Header) == 0 {
		return true
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(t.Header))
	if _, err := io.ReadFull(f, buf); err != nil {
		return false
	}
	return bytes.Equal(buf, t.Header)
}
