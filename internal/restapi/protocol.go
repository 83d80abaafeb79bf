package restapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Media types of the list formats. restic compares the response
// Content-Type with MediaV2 for exact equality: never add a charset.
const (
	MediaV1 = "application/vnd.x.restic.rest.v1"
	MediaV2 = "application/vnd.x.restic.rest.v2"
)

// Headers cairn adds to restic's protocol; restic ignores them.
const (
	// HeaderError carries the error code (see ErrorCode) of a failed request.
	HeaderError = "X-Cairn-Error"
	// HeaderStrict, sent by cairn clients, asks for exact semantics where
	// restic needs leniency: DELETE of a missing file answers 404 instead
	// of 200.
	HeaderStrict = "X-Cairn-Strict"
	// HeaderRequestID echoes the server's ID of a request, for its logs.
	HeaderRequestID = "X-Request-Id"
	// HeaderSession, on a snapshot upload, names the backup session
	// (see session.go) the snapshot commits; the server ends that session
	// once the snapshot is stored.
	HeaderSession = "X-Cairn-Session"
)

// Error codes in HeaderError. Codes beyond the backend sentinels describe
// server policy refusals.
const (
	CodeNotFound     = "not-found"
	CodeExists       = "exists"
	CodeHashMismatch = "hash-mismatch"
	CodeInvalidName  = "invalid-name"
	CodeNoSpace      = "no-space"
	CodePermission   = "permission"
	CodeAppendOnly   = "append-only"
	CodeQuota        = "quota"
	CodeTooLarge     = "too-large"
	CodeTooOften     = "too-often"
	CodeAuth         = "auth"
	CodeForbidden    = "forbidden"
	CodeBadRequest   = "bad-request"
	CodeInternal     = "internal"
	// CodeSequence: a snapshot, roster or config out of sequence.
	CodeSequence = "bad-sequence"
	// CodeSessionGone: a heartbeat for a backup session that has ended or
	// whose lease expired (410).
	CodeSessionGone = "session-gone"
	// CodeTooManySessions: the client has as many open backup sessions as
	// the server allows (429).
	CodeTooManySessions = "too-many-sessions"
)

// ErrRefused is the sentinel for a policy refusal by the server
// (append-only, interval, tenant, size). It wraps backend.ErrPermission, so
// retrying decorators treat it as permanent.
var ErrRefused = fmt.Errorf("refused by the server: %w", backend.ErrPermission)

// ErrAuth is returned for a 401: wrong or unknown credentials. It wraps
// backend.ErrPermission too.
var ErrAuth = fmt.Errorf("the server refused the credentials: %w", backend.ErrPermission)

// Status returns the HTTP status and error code for a backend error.
func Status(err error) (int, string) {
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, backend.ErrExists):
		return http.StatusForbidden, CodeExists
	case errors.Is(err, backend.ErrHashMismatch):
		return http.StatusBadRequest, CodeHashMismatch
	case errors.Is(err, backend.ErrInvalidName):
		return http.StatusNotFound, CodeInvalidName
	case errors.Is(err, backend.ErrNoSpace):
		return http.StatusInsufficientStorage, CodeNoSpace
	case errors.Is(err, backend.ErrPermission):
		return http.StatusForbidden, CodePermission
	}
	return http.StatusInternalServerError, CodeInternal
}

// Err turns a failed response back into an error wrapping the right
// sentinel. code is the HeaderError value (may be empty: a restic-only
// server), msg the body's first line.
func Err(status int, code, msg string) error {
	var base error
	switch code {
	case CodeNotFound:
		base = backend.ErrNotFound
	case CodeExists:
		base = backend.ErrExists
	case CodeHashMismatch:
		base = backend.ErrHashMismatch
	case CodeInvalidName:
		base = backend.ErrInvalidName
	case CodeNoSpace, CodeQuota:
		base = backend.ErrNoSpace
	case CodePermission:
		base = backend.ErrPermission
	case CodeSequence:
		base = backend.ErrSequence
	case CodeAuth:
		base = ErrAuth
	case CodeAppendOnly, CodeTooOften, CodeForbidden, CodeTooLarge:
		base = ErrRefused
	default:
		switch status {
		case http.StatusNotFound:
			base = backend.ErrNotFound
		case http.StatusUnauthorized:
			base = ErrAuth
		case http.StatusInsufficientStorage:
			base = backend.ErrNoSpace
		case http.StatusForbidden:
			base = ErrRefused
		}
	}
	text := fmt.Sprintf("server answered %d %s", status, http.StatusText(status))
	if msg != "" {
		text += ": " + msg
	}
	if base != nil {
		text += ": " + base.Error()
	}
	return &StatusError{Status: status, Code: code, Msg: msg, text: text, base: base}
}

// StatusError is a refusal by a server, as Err decodes it: the status,
// the HeaderError code and the message, wrapping the sentinel of Err.
// A client tells a quota (507) from a snapshot interval (429, CodeTooOften)
// by it.
type StatusError struct {
	Status    int
	Code, Msg string
	text      string
	base      error
}

func (e *StatusError) Error() string { return e.text }
func (e *StatusError) Unwrap() error { return e.base }

// ListEntry is one file of a v2 listing.
type ListEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// WantsV2 reports whether a request's Accept header asks for the v2 list.
func WantsV2(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.TrimSpace(mt) == MediaV2 {
			return true
		}
	}
	return false
}

// EncodeList renders a listing in v1 or v2 form; it returns the body and
// the exact Content-Type. An empty listing is "[]", never "null".
func EncodeList(entries []ListEntry, v2 bool) ([]byte, string) {
	if v2 {
		if entries == nil {
			entries = []ListEntry{}
		}
		buf, _ := json.Marshal(entries) // cannot fail: strings and ints
		return buf, MediaV2
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name)
	}
	buf, _ := json.Marshal(names)
	return buf, MediaV1
}

// DecodeList parses a listing according to its Content-Type. v1 entries
// have size -1: the client must HEAD each to learn it.
func DecodeList(contentType string, body []byte) ([]ListEntry, error) {
	if contentType == MediaV2 {
		var out []ListEntry
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("decode v2 list: %w", err)
		}
		return out, nil
	}
	var names []string
	if err := json.Unmarshal(body, &names); err != nil {
		return nil, fmt.Errorf("decode v1 list: %w", err)
	}
	out := make([]ListEntry, len(names))
	for i, n := range names {
		out[i] = ListEntry{Name: n, Size: -1}
	}
	return out, nil
}

// FormatRange is the Range header for length bytes at offset; length 0
// means to the end.
func FormatRange(offset int64, length int) string {
	if length == 0 {
		return "bytes=" + strconv.FormatInt(offset, 10) + "-"
	}
	return fmt.Sprintf("bytes=%d-%d", offset, offset+int64(length)-1)
}

// Range is one requested byte range; End is inclusive, -1 for open.
type Range struct {
	Start, End int64
}

// ParseRange parses the single-range forms restic sends ("bytes=a-" and
// "bytes=a-b"). ok is false for an absent header; multiple ranges and
// suffix ranges are refused with an error.
func ParseRange(h string) (r Range, ok bool, err error) {
	if h == "" {
		return Range{}, false, nil
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return Range{}, false, fmt.Errorf("unsupported range %q", h)
	}
	a, b, found := strings.Cut(spec, "-")
	if !found || a == "" {
		return Range{}, false, fmt.Errorf("unsupported range %q", h)
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return Range{}, false, fmt.Errorf("bad range start in %q", h)
	}
	end := int64(-1)
	if b != "" {
		end, err = strconv.ParseInt(b, 10, 64)
		if err != nil || end < start {
			return Range{}, false, fmt.Errorf("bad range end in %q", h)
		}
	}
	return Range{Start: start, End: end}, true, nil
}
