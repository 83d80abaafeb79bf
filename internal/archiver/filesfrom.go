package archiver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// ListFormat is how a --files-from list is written.
type ListFormat int

const (
	// ListGlobs is --files-from: one path a line; blank lines and lines
	// starting with "#" are skipped, surrounding blanks trimmed, and glob
	// patterns expanded.
	ListGlobs ListFormat = iota
	// ListVerbatim is --files-from-verbatim: one path a line, as it is;
	// only empty lines are skipped.
	ListVerbatim
	// ListRaw is --files-from-raw: paths each ended by a NUL byte (find
	// -print0), as they are; any byte but NUL may be in a name.
	ListRaw
)

// ReadPathList reads a list of paths to back up. A glob pattern that
// matches nothing is reported in unmatched, not returned; a plain path is
// returned whether or not it exists (Backup reports a missing one).
func ReadPathList(r io.Reader, format ListFormat) (paths, unmatched []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	if format == ListRaw {
		sc.Split(splitNUL)
	}
	for sc.Scan() {
		line := sc.Text()
		switch format {
		case ListRaw:
			if line != "" {
				paths = append(paths, line)
			}
			continue
		case ListVerbatim:
			line = strings.TrimSuffix(line, "\r")
			if line != "" {
				paths = append(paths, line)
			}
			continue
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.ContainsAny(line, "*?[") {
			paths = append(paths, line)
			continue
		}
		m, err := filepath.Glob(line)
		if err != nil {
			return nil, nil, fmt.Errorf("pattern %q: %w", line, err)
		}
		if len(m) == 0 {
			unmatched = append(unmatched, line)
		}
		paths = append(paths, m...)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return paths, unmatched, nil
}

// splitNUL is a bufio.SplitFunc for NUL-terminated records; a last record
// without its NUL still counts.
func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
