// Package repohttp answers restic's REST protocol (package restapi) for
// one repository at a time: reads, listings, deletes and durable writes
// of a repository's files through its backend, and the machinery every
// answer shares — the response with its status, a refusal with an
// X-Cairn-Error code and a one-line message, logged; the request body's
// minimum rate (BodyLimit); uploads spooled to disk while hashed
// (Upload). It knows nothing of tenants, quotas or validation: the server
// (package server) decides who may do what, and calls in here to do it.
package repohttp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// Request is one request as the handler answers it.
type Request struct {
	ID   string
	W    *StatusWriter
	R    *http.Request
	Path restapi.Path // set once the path has parsed
	Log  *slog.Logger // with the request's ID, method, path and remote address
	User string       // who asks, for log lines; "" before authentication
	Code string       // error code of a refusal or failure, for metrics
	Body *BodyLimit   // the request's body, if it has one
}

// BodyRate is the pace a request body must keep (BodyLimit).
type BodyRate struct {
	Grace, Idle time.Duration
	MinRate     int64 // bytes per second
}

// NewRequest starts answering r: a request ID (also in the response's
// header), a logger with the request's attributes (built when it writes
// a line: requestHandler), and the body under rate's limit.
func NewRequest(rw http.ResponseWriter, r *http.Request, log *slog.Logger, rate BodyRate) *Request {
	q := &Request{ID: newRequestID(), W: &StatusWriter{ResponseWriter: rw}, R: r}
	q.W.Header().Set(restapi.HeaderRequestID, q.ID)
	q.Log = slog.New(&requestHandler{base: log.Handler(), id: q.ID, method: Shorten(r.Method, 16),
		path: Shorten(r.URL.EscapedPath(), 512), remote: r.RemoteAddr})
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		q.Body = NewBodyLimit(rw, r, rate.Grace, rate.Idle, rate.MinRate)
		r.Body = q.Body
	}
	return q
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Shorten cuts a client-chosen string for a log line.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// StatusWriter records the status and the bytes of a response.
type StatusWriter struct {
	http.ResponseWriter
	Status int   // 0 until written
	Bytes  int64 // body bytes written
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(p []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.Bytes += int64(n)
	return n, err
}

// ReadFrom copies src into the response through the response's own
// ReadFrom, which lets the kernel send a file (sendfile) without a copy
// through the process (a repository file's range from the local storage,
// whose reader hands its file over).
func (w *StatusWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.Bytes += n
	return n, err
}

// Refuse answers an error, logs it as a refusal and records its code.
func (q *Request) Refuse(status int, code, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	q.Code = code
	lvl := slog.LevelWarn
	if status >= 500 && code != restapi.CodeQuota && code != restapi.CodeNoSpace {
		lvl = slog.LevelError
	}
	q.Log.Log(context.Background(), lvl, "refused", "client", q.User, "repo", q.Path.RepoPath(),
		"status", status, "code", code, "reason", msg)
	h := q.W.Header()
	h.Set(restapi.HeaderError, code)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if q.Body != nil && !q.Body.Finished() {
		// Answered without reading the body: close rather than wait for
		// it (a client that sends headers only must not hold on).
		q.Body.Abandon()
		h.Set("Connection", "close")
	}
	q.W.WriteHeader(status)
	io.WriteString(q.W, msg+"\n")
}

// Fail answers a storage error with the status restic expects. The
// message names the file the request is about, if it is about one (a
// writer list, an owner request or a session is not).
func (q *Request) Fail(what string, err error) {
	status, code := restapi.Status(err)
	if errors.Is(err, context.Canceled) {
		status, code = 499, restapi.CodeBadRequest
	}
	if q.Path.Handle == (backend.Handle{}) {
		q.Refuse(status, code, "%s: %v", what, err)
		return
	}
	q.Refuse(status, code, "%s %s: %v", what, q.Path.Handle, err)
}

// Answer answers err: as the refusal it is (Refusal), or as a failure of
// what.
func (q *Request) Answer(what string, err error) {
	var rf *Refusal
	if errors.As(err, &rf) {
		q.Refuse(rf.Status, rf.Code, "%s", rf.Msg)
		return
	}
	q.Fail(what, err)
}

// MethodNotAllowed refuses the request's method, naming those allowed.
func (q *Request) MethodNotAllowed(allow string) {
	q.W.Header().Set("Allow", allow)
	q.Refuse(http.StatusMethodNotAllowed, restapi.CodeBadRequest, "method %s not allowed here; allowed: %s", q.R.Method, allow)
}

// Refusal is an error that says what the client is told.
type Refusal struct {
	Status int
	Code   string
	Msg    string
}

func (r *Refusal) Error() string { return r.Msg }

// Refusef makes a Refusal.
func Refusef(status int, code, format string, a ...any) *Refusal {
	return &Refusal{Status: status, Code: code, Msg: fmt.Sprintf(format, a...)}
}
