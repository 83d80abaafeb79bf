package restapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cairnbackup/cairn/internal/backend"
)

// MaxRepoDepth is the most path components a repository name may have: a
// client's folder and two levels below it.
const MaxRepoDepth = 3

// maxComponent bounds one repository path component.
const maxComponent = 64

// Kind is what a request path addresses.
type Kind int

// The kinds of resource a path can address.
const (
	KindRepo   Kind = iota + 1 // {repo}/ : creation (?create=true)
	KindConfig                 // {repo}/config
	KindList                   // {repo}/{type}/
	KindObject                 // {repo}/{type}/{name}
)

func (k Kind) String() string {
	switch k {
	case KindRepo:
		return "repo"
	case KindConfig:
		return "config"
	case KindList:
		return "list"
	case KindObject:
		return "object"
	}
	return "invalid"
}

// Path is a parsed request path.
type Path struct {
	Repo   []string // repository components; empty for the root "/"
	Kind   Kind
	Handle backend.Handle // Config handle for KindConfig; Type only for KindList
}

// RepoPath is the repository's components joined with "/".
func (p Path) RepoPath() string { return strings.Join(p.Repo, "/") }

// ErrBadPath is wrapped by every ParsePath refusal.
var ErrBadPath = errors.New("invalid request path")

func badPath(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPath, fmt.Sprintf(format, a...))
}

// ParsePath parses the escaped path of a request (URL.EscapedPath, never the
// decoded form, so that an encoded slash cannot pass as a separator). See
// the package documentation for what it accepts.
func ParsePath(escaped string) (Path, error) {
	if !strings.HasPrefix(escaped, "/") {
		return Path{}, badPath("path %q is not absolute", escaped)
	}
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' || c == '\\' || c < 0x20 || c >= 0x7f {
			return Path{}, badPath("path %q holds an escape or a disallowed byte", escaped)
		}
	}
	if strings.Contains(escaped, "//") {
		return Path{}, badPath("path %q has an empty component", escaped)
	}
	rest := escaped[1:]
	trailing := strings.HasSuffix(rest, "/")
	rest = strings.TrimSuffix(rest, "/")
	var parts []string
	if rest != "" {
		parts = strings.Split(rest, "/")
	}
	var p Path
	i := 0
	for ; i < len(parts); i++ {
		c := parts[i]
		if c == string(backend.Config) || isListType(c) {
			break
		}
		if err := validComponent(c); err != nil {
			return Path{}, err
		}
		p.Repo = append(p.Repo, c)
	}
	if len(p.Repo) > MaxRepoDepth {
		return Path{}, badPath("repository path %q has more than %d components", strings.Join(p.Repo, "/"), MaxRepoDepth)
	}
	res := parts[i:]
	switch {
	case len(res) == 0 && trailing || len(res) == 0 && escaped == "/":
		p.Kind = KindRepo
	case len(res) == 1 && res[0] == string(backend.Config) && !trailing:
		p.Kind = KindConfig
		p.Handle = backend.Handle{Type: backend.Config, Name: "config"}
	case len(res) == 1 && trailing && isListType(res[0]):
		p.Kind = KindList
		p.Handle = backend.Handle{Type: backend.FileType(res[0])}
	case len(res) == 2 && !trailing && isListType(res[0]):
		h := backend.Handle{Type: backend.FileType(res[0]), Name: res[1]}
		if err := backend.ValidName(h); err != nil {
			return Path{}, badPath("%v", err)
		}
		p.Kind = KindObject
		p.Handle = h
	default:
		return Path{}, badPath("%q addresses no repository resource", escaped)
	}
	return p, nil
}

// isListType reports whether c names a file type other than config.
func isListType(c string) bool {
	t := backend.FileType(c)
	return t != backend.Config && backend.ValidType(t)
}

// validComponent checks one repository path component.
func validComponent(c string) error {
	switch {
	case c == "":
		return badPath("empty path component")
	case c == "." || c == "..":
		return badPath("path component %q", c)
	case c[0] == '.':
		return badPath("path component %q starts with a dot", c)
	case len(c) > maxComponent:
		return badPath("path component longer than %d bytes", maxComponent)
	}
	for i := 0; i < len(c); i++ {
		if !NameByte(c[i]) {
			return badPath("path component %q holds %q", c, c[i])
		}
	}
	return nil
}

// NameByte reports whether b may appear in a repository path component or
// a client name: ASCII letters, digits, '_', '-', '.' and '@'.
func NameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
		b == '_' || b == '-' || b == '.' || b == '@'
}

// LeaseDir is the name under a server's S3 storage prefix where servers
// keep their repositories' leases (internal/backend/s3, lease.go), beside
// the clients' directories; no client may take it.
const LeaseDir = "leases"

// ValidClientName checks a client name: a valid single path component,
// not LeaseDir.
func ValidClientName(name string) error {
	if err := validComponent(name); err != nil {
		return fmt.Errorf("client name %q: use 1 to %d letters, digits, '_', '-', '.', '@', not starting with a dot", name, maxComponent)
	}
	if name == LeaseDir {
		return fmt.Errorf("client name %q is reserved: S3 storage keeps the servers' leases under it", name)
	}
	return nil
}

// URLPath is the request path, relative to a repository's base URL, of a
// handle (KindConfig or KindObject) or of a type's listing (Name empty).
func URLPath(h backend.Handle) string {
	switch {
	case h.Type == backend.Config:
		return "config"
	case h.Name == "":
		return string(h.Type) + "/"
	}
	return string(h.Type) + "/" + h.Name
}

// ValidSessionID reports whether id has the form a server's session IDs
// have: 32 lowercase hex digits.
func ValidSessionID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
