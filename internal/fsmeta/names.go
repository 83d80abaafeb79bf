package fsmeta

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on restored paths. Restore walks paths one directory file
// descriptor at a time, so PATH_MAX does not apply, but a hostile tree must
// not be able to make restore open millions of nested directories.
const (
	MaxNameLen = 255  // bytes in one path component (NAME_MAX)
	MaxDepth   = 4096 // components in one restored path
)

// Errors returned for names and paths that restore refuses.
var (
	ErrInvalidName = errors.New("invalid file name")
	ErrTooDeep     = errors.New("path too deep")
)

// ValidName reports whether name can be used as one path component on
// restore: it must not be empty, "." or "..", must not contain '/' or NUL
// and must be at most MaxNameLen bytes. Any other byte sequence, including
// non-UTF-8, is a valid name.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("%w: %q contains '/'", ErrInvalidName, name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: %q contains NUL", ErrInvalidName, name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidName, len(name), MaxNameLen)
	}
	return nil
}

// ValidPath checks every component of a restore path and its depth.
func ValidPath(components []string) error {
	if len(components) > MaxDepth {
		return fmt.Errorf("%w: %d components, limit %d", ErrTooDeep, len(components), MaxDepth)
	}
	for _, c := range components {
		if err := ValidName(c); err != nil {
			return err
		}
	}
	return nil
}

// SplitPath splits a '/'-separated path relative to the snapshot root (as in
// snapshot.Node.HardLinkTo) into validated components. Absolute paths,
// empty components ("a//b", trailing '/'), "." and ".." are refused rather
// than cleaned, because a well-formed tree never contains them.
func SplitPath(p string) ([]string, error) {
	if p == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidName)
	}
	if p[0] == '/' {
		return nil, fmt.Errorf("%w: absolute path %q", ErrInvalidName, p)
	}
	c := strings.Split(p, "/")
	if err := ValidPath(c); err != nil {
		return nil, err
	}
	return c, nil
}

// joinComponents is for error messages only.
func joinComponents(c []string) string {
	if len(c) == 0 {
		return "."
	}
	return strings.Join(c, "/")
}
