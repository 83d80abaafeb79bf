package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// request is the state of one request as it passes auth → tenant →
// policy → storage.
type request struct {
	id     string
	w      *statusWriter
	r      *http.Request
	client Client
	path   restapi.Path
	log    *slog.Logger
	code   string     // error code of a refusal or failure, for metrics
	body   *bodyLimit // the request's body, if it has one (limits.go)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	q := &request{id: newRequestID(), w: &statusWriter{ResponseWriter: rw}, r: r}
	q.w.Header().Set(restapi.HeaderRequestID, q.id)
	q.log = s.log.With("req", q.id, "method", shorten(r.Method, 16), "path", shorten(r.URL.EscapedPath(), 512), "remote", r.RemoteAddr)
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		q.body = newBodyLimit(rw, r, s.opts.BodyGrace, s.opts.BodyIdle, s.opts.BodyMinRate)
		r.Body = q.body
	}
	if methodLabel(r.Method) == "other" {
		// Before anything else: the method is the client's to choose, and
		// nothing of it is kept (R26).
		q.w.Header().Set("Allow", "GET, HEAD, POST, DELETE")
		q.refuse(http.StatusMethodNotAllowed, codeBadMethod, "method not allowed; allowed: GET, HEAD, POST, DELETE")
	} else {
		s.route(q)
	}
	status := q.w.status
	if status == 0 {
		status = http.StatusOK
	}
	q.log.Debug("request", "client", q.client.Name, "repo", q.path.RepoPath(), "status", status,
		"bytes_out", q.w.bytes, "took", s.opts.Now().Sub(start))
	s.metrics.request(q.client.Name, methodLabel(r.Method), q.path, q.code)
	s.count(q.client.Name, q.code != "")
}

// refuse answers an error, logs it as a refusal and records its code.
func (q *request) refuse(status int, code, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	q.code = code
	lvl := slog.LevelWarn
	if status >= 500 && code != restapi.CodeQuota && code != restapi.CodeNoSpace {
		lvl = slog.LevelError
	}
	q.log.Log(context.Background(), lvl, "refused", "client", q.client.Name, "repo", q.path.RepoPath(),
		"status", status, "code", code, "reason", msg)
	h := q.w.Header()
	h.Set(restapi.HeaderError, code)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if q.body != nil && !q.body.finished() {
		// Answered without reading the body: close rather than wait for
		// it (a client that sends headers only must not hold on).
		q.body.abandon()
		h.Set("Connection", "close")
	}
	q.w.WriteHeader(status)
	io.WriteString(q.w, msg+"\n")
}

// fail answers a storage error with the status restic expects.
func (q *request) fail(what string, err error) {
	status, code := restapi.Status(err)
	if errors.Is(err, context.Canceled) {
		status, code = 499, restapi.CodeBadRequest
	}
	q.refuse(status, code, "%s %s: %v", what, q.path.Handle, err)
}

func (s *Server) route(q *request) {
	r := q.r
	if r.URL.EscapedPath() == "/healthz" && r.Method == http.MethodGet {
		s.healthz(q.w, r)
		return
	}
	// auth: nothing, not even whether a path is valid, before credentials.
	name, pw, ok := r.BasicAuth()
	if !ok {
		q.refuse(http.StatusUnauthorized, restapi.CodeAuth, "credentials required")
		return
	}
	src := sourceOf(r)
	c, err := s.auth.check(r.Context(), name, pw, func() error {
		if ok, wait := s.authLimit.allowed(src); !ok {
			return &authLimitedError{wait: wait}
		}
		return nil
	})
	if err != nil {
		q.log = q.log.With("user", shorten(name, 64))
		var le *authLimitedError
		switch {
		case errors.As(err, &le):
			q.w.Header().Set("Retry-After", strconv.Itoa(max(1, int(le.wait.Seconds()+0.5))))
			q.refuse(http.StatusTooManyRequests, codeAuthLimited, "too many failed logins from %s; retry later", src)
		case errors.Is(err, errBadCredentials):
			s.authLimit.failed(src)
			q.refuse(http.StatusUnauthorized, restapi.CodeAuth, "unknown client or wrong password")
		default:
			q.refuse(http.StatusInternalServerError, restapi.CodeInternal, "authenticate: %v", err)
		}
		return
	}
	q.client = c
	if c.Disabled {
		q.refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s is disabled", c.Name)
		return
	}
	// tenant: a client sees only /<its name>/…
	p, err := restapi.ParsePath(r.URL.EscapedPath())
	if err != nil {
		q.refuse(http.StatusNotFound, restapi.CodeInvalidName, "%v", err)
		return
	}
	q.path = p
	if len(p.Repo) == 0 || p.Repo[0] != c.Name {
		q.refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s may use only /%s/…", c.Name, c.Name)
		return
	}
	switch p.Kind {
	case restapi.KindRepo:
		s.serveRepo(q)
	case restapi.KindList:
		s.serveList(q)
	default:
		s.serveFile(q)
	}
}

func (q *request) methodNotAllowed(allow string) {
	q.w.Header().Set("Allow", allow)
	q.refuse(http.StatusMethodNotAllowed, restapi.CodeBadRequest, "method %s not allowed here; allowed: %s", q.r.Method, allow)
}

func (s *Server) serveRepo(q *request) {
	if q.r.Method == http.MethodGet && q.r.URL.RawQuery == restapi.IdentityQuery {
		s.serveIdentity(q)
		return
	}
	if q.r.Method == http.MethodPost && q.r.URL.RawQuery == WriterListQuery {
		s.serveWriterList(q)
		return
	}
	if isSessionRequest(q) {
		s.serveSession(q)
		return
	}
	if q.r.Method != http.MethodPost {
		q.methodNotAllowed("POST")
		return
	}
	if q.r.URL.RawQuery != "create=true" {
		q.refuse(http.StatusBadRequest, restapi.CodeBadRequest, "to create a repository, POST with ?create=true")
		return
	}
	if err := s.repos.Create(q.r.Context(), q.path.RepoPath(), s.mayCreateRepo(q.client)); err != nil {
		var rf *refusal
		if errors.As(err, &rf) {
			q.refuse(rf.status, rf.code, "%s", rf.msg)
			return
		}
		q.refuse(http.StatusInternalServerError, restapi.CodeInternal, "create repository %s: %v", q.path.RepoPath(), err)
		return
	}
	q.log.Info("repository ready", "client", q.client.Name, "repo", q.path.RepoPath())
	q.w.WriteHeader(http.StatusOK)
}

func (s *Server) serveList(q *request) {
	if q.r.Method != http.MethodGet {
		q.methodNotAllowed("GET")
		return
	}
	be, err := s.repos.Get(q.r.Context(), q.path.RepoPath())
	if err != nil {
		q.fail("list", err)
		return
	}
	entries := []restapi.ListEntry{}
	err = be.List(q.r.Context(), q.path.Handle.Type, func(fi backend.FileInfo) error {
		entries = append(entries, restapi.ListEntry{Name: fi.Name, Size: fi.Size})
		return nil
	})
	if err != nil {
		q.fail("list", err)
		return
	}
	body, ct := restapi.EncodeList(entries, restapi.WantsV2(q.r.Header.Get("Accept")))
	q.w.Header().Set("Content-Type", ct)
	q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(http.StatusOK)
	q.w.Write(body)
}

func (s *Server) serveFile(q *request) {
	be, err := s.repos.Get(q.r.Context(), q.path.RepoPath())
	if err != nil {
		q.fail(q.r.Method, err)
		return
	}
	switch q.r.Method {
	case http.MethodHead, http.MethodGet:
		s.serveRead(q, be)
	case http.MethodPost:
		s.serveSave(q, be)
	case http.MethodDelete:
		s.serveDelete(q, be)
	default:
		q.methodNotAllowed("HEAD, GET, POST, DELETE")
	}
}

func (s *Server) serveRead(q *request, be backend.Backend) {
	ctx := q.r.Context()
	h := q.path.Handle
	fi, err := be.Stat(ctx, h)
	if err != nil {
		q.fail("stat", err)
		return
	}
	hdr := q.w.Header()
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Accept-Ranges", "bytes")
	if q.r.Method == http.MethodHead {
		hdr.Set("Content-Length", strconv.FormatInt(fi.Size, 10))
		q.w.WriteHeader(http.StatusOK)
		return
	}
	rg, ranged, err := restapi.ParseRange(q.r.Header.Get("Range"))
	if err != nil {
		q.refuse(http.StatusBadRequest, restapi.CodeBadRequest, "%v", err)
		return
	}
	start, end, status := int64(0), fi.Size-1, http.StatusOK
	if ranged && fi.Size > 0 {
		if rg.Start >= fi.Size {
			hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", fi.Size))
			q.refuse(http.StatusRequestedRangeNotSatisfiable, restapi.CodeBadRequest, "range starts at %d of %d bytes", rg.Start, fi.Size)
			return
		}
		start, status = rg.Start, http.StatusPartialContent
		if rg.End >= 0 && rg.End < end {
			end = rg.End
		}
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, fi.Size))
	} else if ranged && rg.Start > 0 {
		hdr.Set("Content-Range", "bytes */0")
		q.refuse(http.StatusRequestedRangeNotSatisfiable, restapi.CodeBadRequest, "range starts at %d of 0 bytes", rg.Start)
		return
	}
	n := end - start + 1
	hdr.Set("Content-Length", strconv.FormatInt(n, 10))
	if n == 0 {
		q.w.WriteHeader(status)
		return
	}
	err = be.Load(ctx, h, int(n), start, func(rd io.Reader) error {
		q.w.WriteHeader(status)
		_, err := io.Copy(q.w, rd)
		return err
	})
	if err != nil && q.w.status == 0 {
		q.fail("load", err)
	} else if err != nil {
		q.code = restapi.CodeInternal
		q.log.Warn("load failed mid-response", "client", q.client.Name, "repo", q.path.RepoPath(), "file", h.String(), "err", err)
	}
}

// tooSoon answers a snapshot upload with 429 if the client's last snapshot
// arrived less than its minimum interval ago; it reports whether it did.
func (s *Server) tooSoon(q *request) bool {
	c := q.client
	if c.MinInterval <= 0 {
		return false
	}
	fresh, err := s.data.State.Client(q.r.Context(), c.Name)
	if err != nil {
		q.fail("save", err)
		return true
	}
	if since := s.opts.Now().Sub(fresh.LastSnapshot); !fresh.LastSnapshot.IsZero() && since < c.MinInterval {
		q.refuse(http.StatusTooManyRequests, restapi.CodeTooOften, "client %s may store a snapshot every %v; the last one arrived %v ago",
			c.Name, c.MinInterval, since.Round(time.Second))
		return true
	}
	return false
}

// storedMeanwhile answers a snapshot upload whose file an identical upload
// stored while this one waited for the repository's locks: two retries of
// one commit racing each other both succeed, and the second stores nothing
// (R22), as if it had come after the first. It reports whether it answered
// the request. The caller holds the locks, so nothing commits meanwhile.
func (s *Server) storedMeanwhile(ctx context.Context, q *request, be backend.Backend, u *upload, session string) bool {
	h := q.path.Handle
	_, err := be.Stat(ctx, h)
	if errors.Is(err, backend.ErrNotFound) {
		return false
	}
	if err != nil {
		q.fail("save", err)
		return true
	}
	body, err := u.Bytes(s.maxInMemory(h.Type))
	if err != nil {
		q.fail("save", err)
		return true
	}
	stored, err := backend.LoadAll(ctx, be, h)
	if err != nil {
		q.fail("save", err)
		return true
	}
	if !bytes.Equal(stored, body) {
		// The stored file does not hash to its name: damaged storage,
		// which the owner's check reports; never overwritten.
		q.fail("save", fmt.Errorf("%v exists with other bytes and is never overwritten: %w", h, backend.ErrExists))
		return true
	}
	q.log.Info("already stored by an identical upload meanwhile", "client", q.client.Name, "repo", q.path.RepoPath(), "file", h.String())
	s.endCommittedSession(q, session)
	q.w.WriteHeader(http.StatusOK)
	return true
}

func (s *Server) serveDelete(q *request, be backend.Backend) {
	ctx := q.r.Context()
	h, c := q.path.Handle, q.client
	if c.AppendOnly && h.Type != backend.Locks {
		q.refuse(http.StatusForbidden, restapi.CodeAppendOnly, "client %s is append-only: deleting %v is refused", c.Name, h)
		return
	}
	fi, err := be.Stat(ctx, h)
	if errors.Is(err, backend.ErrNotFound) && q.r.Header.Get(restapi.HeaderStrict) == "" {
		q.w.WriteHeader(http.StatusOK) // restic needs DELETE to be idempotent
		return
	}
	if err != nil {
		q.fail("delete", err)
		return
	}
	if err := be.Remove(ctx, h); err != nil {
		if errors.Is(err, backend.ErrNotFound) && q.r.Header.Get(restapi.HeaderStrict) == "" {
			q.w.WriteHeader(http.StatusOK)
			return
		}
		q.fail("delete", err)
		return
	}
	s.usage.release(c.Name, fi.Size)
	q.log.Info("deleted", "client", c.Name, "repo", q.path.RepoPath(), "file", h.String(), "size", fi.Size)
	q.w.WriteHeader(http.StatusOK)
}
