package fsmeta

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// Excluder decides which paths a backup leaves out. It is built from
// gitignore-like patterns; see the package documentation for the syntax.
// It is immutable and safe for concurrent use.
type Excluder struct {
	rules []rule
}

type rule struct {
	src     string
	negate  bool
	dirOnly bool
	comps   []string // path components; "**" spans any number of them
}

// NewExcluder compiles patterns. It fails on an empty or malformed pattern
// (for example an unterminated "[") and names the pattern.
func NewExcluder(patterns []string) (*Excluder, error) {
	e := &Excluder{}
	for _, p := range patterns {
		r, err := compileRule(p)
		if err != nil {
			return nil, err
		}
		e.rules = append(e.rules, r)
	}
	return e, nil
}

func compileRule(src string) (rule, error) {
	r := rule{src: src}
	p := src
	if strings.HasPrefix(p, "!") {
		r.negate = true
		p = p[1:]
	} else if strings.HasPrefix(p, `\!`) || strings.HasPrefix(p, `\#`) {
		p = p[1:]
	}
	if strings.HasSuffix(p, "/") {
		r.dirOnly = true
		p = strings.TrimRight(p, "/")
	}
	anchored := strings.HasPrefix(p, "/")
	if !anchored {
		r.comps = []string{"**"}
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue // "/abs//x", "/./x" and the leading "/" add nothing
		}
		if c == "**" && len(r.comps) > 0 && r.comps[len(r.comps)-1] == "**" {
			continue
		}
		if c != "**" {
			if _, err := path.Match(c, ""); err != nil {
				return rule{}, fmt.Errorf("exclude pattern %q: bad glob %q", src, c)
			}
		}
		r.comps = append(r.comps, c)
	}
	if len(r.comps) == 0 || (len(r.comps) == 1 && r.comps[0] == "**" && !strings.Contains(p, "**")) {
		return rule{}, fmt.Errorf("exclude pattern %q matches nothing", src)
	}
	return r, nil
}

// Excluded reports whether p is excluded. isDir says whether p is a
// directory, for patterns ending in "/". The last matching pattern decides;
// a "!" pattern re-includes. Only p itself is tested, not its parents: a
// walker that skips an excluded directory never sees its contents.
func (e *Excluder) Excluded(p string, isDir bool) bool {
	if e == nil || len(e.rules) == 0 {
		return false
	}
	s := splitClean(p)
	excluded := false
	for _, r := range e.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if matchComps(r.comps, s) {
			excluded = !r.negate
		}
	}
	return excluded
}

func splitClean(p string) []string {
	p = path.Clean(p)
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// matchComps matches pattern components against path components. "**"
// matches zero or more components, except as the last pattern component,
// where it needs at least one ("dir/**" is what is inside dir, not dir).
func matchComps(p, s []string) bool {
	for len(p) > 0 {
		if p[0] == "**" {
			rest := p[1:]
			if len(rest) == 0 {
				return len(s) > 0
			}
			for i := 0; i <= len(s); i++ {
				if matchComps(rest, s[i:]) {
					return true
				}
			}
			return false
		}
		if len(s) == 0 {
			return false
		}
		if ok, _ := path.Match(p[0], s[0]); !ok {
			return false
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

// ReadPatterns reads an exclude file: one pattern per line; blank lines and
// lines starting with '#' are ignored; a trailing "\r" and trailing spaces
// are removed unless the last space is escaped as "\ ". Write "\#" for a
// pattern that starts with '#'.
func ReadPatterns(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		line = trimTrailingSpaces(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read exclude patterns: %w", err)
	}
	return out, nil
}

func trimTrailingSpaces(s string) string {
	for strings.HasSuffix(s, " ") {
		if strings.HasSuffix(s, `\ `) {
			return s[:len(s)-2] + " "
		}
		s = s[:len(s)-1]
	}
	return s
}
