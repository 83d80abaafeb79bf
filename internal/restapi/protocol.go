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
	// CodeBackupQueued: the server runs as many backups as its fleet
	// limit allows; the session open is queued (503, a SessionQueued
	// body, see session.go).
	CodeBackupQueued = "backup-queued"
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
// have size -1: the client must HEAD each to learn it. A v2 size is a
// file's length: a negative one, or one beyond an int64, is refused.
func DecodeList(contentType string, body []byte) ([]ListEntry, error) {
	if contentType == MediaV2 {
		var out []ListEntry
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("decode v2 list: %w", err)
		}
		for _, e := range out {
			if e.Size < 0 {
				return nil, fmt.Errorf("decode v2 list: %q has a negative size (%d)", e.Name, e.Size)
			}
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

// Range is one requested byte range: Start to End inclusive, End -1 for
// "to the end"; or, when Suffix > 0, the last Suffix bytes ("bytes=-N").
type Range struct {
	Start, End int64
	Suffix     int64
}

// ParseRange parses a single byte range: "bytes=a-", "bytes=a-b" or the
// suffix form "bytes=-n". ok is false for an absent header. Another unit,
// several ranges and malformed numbers are errors; ResolveRange says what
// a server answers to each.
func ParseRange(h string) (r Range, ok bool, err error) {
	if h == "" {
		return Range{}, false, nil
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found {
		return Range{}, false, fmt.Errorf("%w %q", errRangeUnit, h)
	}
	if strings.Contains(spec, ",") {
		return Range{}, false, fmt.Errorf("%w %q", errRangeMulti, h)
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return Range{}, false, fmt.Errorf("bad range %q", h)
	}
	if a == "" {
		n, err := parseRangeInt(b)
		if err != nil || n == 0 {
			return Range{}, false, fmt.Errorf("bad suffix range %q", h)
		}
		return Range{Start: 0, End: -1, Suffix: n}, true, nil
	}
	start, err := parseRangeInt(a)
	if err != nil {
		return Range{}, false, fmt.Errorf("bad range start in %q", h)
	}
	end := int64(-1)
	if b != "" {
		end, err = parseRangeInt(b)
		if err != nil || end < start {
			return Range{}, false, fmt.Errorf("bad range end in %q", h)
		}
	}
	return Range{Start: start, End: end}, true, nil
}

var (
	errRangeUnit  = errors.New("range unit other than bytes in")
	errRangeMulti = errors.New("several ranges in")
)

// parseRangeInt accepts only the digits RFC 9110 allows (no sign, no
// spaces), up to what an int64 holds.
func parseRangeInt(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a byte position: %q", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// ResolveRange decides the answer to a GET of a size-byte file with Range
// header h, following RFC 9110 §14: no header, a unit other than bytes or
// several ranges (this server sends no multipart answers, which the RFC
// allows) give the whole file with 200; a satisfiable range gives 206 and
// its inclusive bounds; a malformed or unsatisfiable one gives 416 (the
// caller sends "Content-Range: bytes */size"). An empty file is always
// answered whole: it has no byte a range could name.
func ResolveRange(h string, size int64) (start, end int64, status int) {
	whole := func() (int64, int64, int) { return 0, size - 1, http.StatusOK }
	r, ok, err := ParseRange(h)
	switch {
	case errors.Is(err, errRangeUnit), errors.Is(err, errRangeMulti), !ok && err == nil, size == 0:
		return whole()
	case err != nil:
		return 0, 0, http.StatusRequestedRangeNotSatisfiable
	case r.Suffix > 0:
		return max(size-r.Suffix, 0), size - 1, http.StatusPartialContent
	case r.Start >= size:
		return 0, 0, http.StatusRequestedRangeNotSatisfiable
	}
	end = size - 1
	if r.End >= 0 && r.End < end {
		end = r.End
	}
	return r.Start, end, http.StatusPartialContent
}
