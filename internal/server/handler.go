package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/agentreport"
	"github.com/cairnbackup/cairn/internal/server/enrol"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/sessions"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/storage"
	"github.com/cairnbackup/cairn/internal/server/tenant"
)

// request is the state of one request as it passes auth → tenant →
// policy → storage: the repository handler's (package repohttp) and the
// client it turned out to be.
type request struct {
	*repohttp.Request
	client state.Client
}

func (s *Server) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	q := &request{Request: repohttp.NewRequest(rw, r, s.log, s.bodyRate())}
	if repohttp.MethodLabel(r.Method) == "other" {
		// Before anything else: the method is the client's to choose, and
		// nothing of it is kept (R26).
		q.W.Header().Set("Allow", "GET, HEAD, POST, DELETE")
		q.Refuse(http.StatusMethodNotAllowed, restapi.CodeBadMethod, "method not allowed; allowed: GET, HEAD, POST, DELETE")
	} else {
		s.route(q)
	}
	status := q.W.Status
	if status == 0 {
		status = http.StatusOK
	}
	if q.Log.Enabled(context.Background(), slog.LevelDebug) { // its arguments cost even unwritten
		q.Log.Debug("request", "client", q.client.Name, "repo", q.Path.RepoPath(), "status", status,
			"bytes_out", q.W.Bytes, "took", s.opts.Now().Sub(start))
	}
	s.metrics.Request(q.client.Name, repohttp.MethodLabel(r.Method), q.Path, q.Code)
	s.counts.Count(q.client.Name, q.Code != "")
}

func (s *Server) route(q *request) {
	r := q.R
	if r.URL.EscapedPath() == "/healthz" && r.Method == http.MethodGet {
		s.healthz(q.W, r)
		return
	}
	// auth: nothing, not even whether a path is valid, before credentials.
	name, pw, ok := r.BasicAuth()
	if !ok {
		q.Refuse(http.StatusUnauthorized, restapi.CodeAuth, "credentials required")
		return
	}
	src := repohttp.Source(r)
	c, err := s.auth.Check(r.Context(), name, pw, func() error {
		if ok, wait := s.authLimit.Allowed(src); !ok {
			return &tenant.AuthLimitedError{Wait: wait}
		}
		return nil
	})
	if err != nil {
		q.Log = q.Log.With("user", repohttp.Shorten(name, 64))
		var le *tenant.AuthLimitedError
		switch {
		case errors.As(err, &le):
			q.W.Header().Set("Retry-After", strconv.Itoa(max(1, int(le.Wait.Seconds()+0.5))))
			q.Refuse(http.StatusTooManyRequests, restapi.CodeAuthLimited, "too many failed logins from %s; retry later", src)
		case errors.Is(err, tenant.ErrBadCredentials):
			s.authLimit.Failed(src)
			q.Refuse(http.StatusUnauthorized, restapi.CodeAuth, "unknown client or wrong password")
		default:
			q.Refuse(http.StatusInternalServerError, restapi.CodeInternal, "authenticate: %v", err)
		}
		return
	}
	q.client, q.User = c, c.Name
	if c.Disabled {
		q.Refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s is disabled", c.Name)
		return
	}
	// tenant: a client sees only /<its name>/…
	p, err := restapi.ParsePath(r.URL.EscapedPath())
	if err != nil {
		q.Refuse(http.StatusNotFound, restapi.CodeInvalidName, "%v", err)
		return
	}
	q.Path = p
	if len(p.Repo) == 0 || p.Repo[0] != c.Name {
		q.Refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s may use only /%s/…", c.Name, c.Name)
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

func (s *Server) serveRepo(q *request) {
	if s.refuseReplicaRepo(q) {
		return
	}
	if q.R.Method == http.MethodGet && q.R.URL.RawQuery == restapi.IdentityQuery {
		enrol.Serve(q.Request, s.data.Identity) // package enrol
		return
	}
	if q.R.Method == http.MethodPost && q.R.URL.RawQuery == restapi.WriterListQuery {
		s.writerList.Serve(q.Request, q.client.Name) // package writerlist
		return
	}
	if q.R.Method == http.MethodPost && q.R.URL.RawQuery == restapi.OwnerRequestQuery {
		s.owner.Serve(q.Request, q.client.Name) // package owner
		return
	}
	if q.R.Method == http.MethodPost && q.R.URL.RawQuery == restapi.AgentReportQuery {
		agentreport.Serve(q.Request, s.data.State, &s.agentReports, q.client.Name, s.opts.Now()) // package agentreport
		return
	}
	if q.R.Method == http.MethodGet && q.R.URL.RawQuery == restapi.AgentPollQuery {
		agentreport.ServePoll(q.Request, s.data.State, q.client.Name) // package agentreport
		return
	}
	if sessions.IsRequest(q.R) {
		s.sessions.Serve(q.Request, q.client.Name)
		return
	}
	if q.R.Method != http.MethodPost {
		q.MethodNotAllowed("POST")
		return
	}
	if q.R.URL.RawQuery != "create=true" {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "to create a repository, POST with ?create=true")
		return
	}
	if err := s.repos.Create(q.R.Context(), q.Path.RepoPath(), s.mayCreateRepo(q.client)); err != nil {
		var rf *repohttp.Refusal
		if errors.As(err, &rf) {
			q.Answer("create repository", err)
			return
		}
		if errors.Is(err, storage.ErrNested) {
			q.Refuse(http.StatusConflict, restapi.CodeBadRequest, "create repository: %v", err)
			return
		}
		q.Refuse(http.StatusInternalServerError, restapi.CodeInternal, "create repository %s: %v", q.Path.RepoPath(), err)
		return
	}
	q.Log.Info("repository ready", "client", q.client.Name, "repo", q.Path.RepoPath())
	q.W.WriteHeader(http.StatusOK)
}

func (s *Server) serveList(q *request) {
	if q.R.Method != http.MethodGet {
		q.MethodNotAllowed("GET")
		return
	}
	be, err := s.repos.Get(q.R.Context(), q.Path.RepoPath())
	if err != nil {
		q.Fail("list", err)
		return
	}
	repohttp.List(q.Request, be)
}

func (s *Server) serveFile(q *request) {
	be, err := s.repos.Get(q.R.Context(), q.Path.RepoPath())
	if err != nil {
		q.Fail(q.R.Method, err)
		return
	}
	switch q.R.Method {
	case http.MethodHead, http.MethodGet:
		repohttp.Read(q.Request, be)
	case http.MethodPost:
		s.serveSave(q, be)
	case http.MethodDelete:
		s.serveDelete(q, be)
	default:
		q.MethodNotAllowed("HEAD, GET, POST, DELETE")
	}
}

// tooSoon answers a snapshot upload with 429 if the client's last snapshot
// arrived less than its minimum interval ago; it reports whether it did.
// A restic client retries a 429 for up to 15 minutes and gives up at once
// only on 401, 403, 416 and 507, so a restic repository (restic true) gets
// 403: the refusal is quick, and the reason is in the body and the log.
func (s *Server) tooSoon(q *request, restic bool) bool {
	c := q.client
	if c.MinInterval <= 0 {
		return false
	}
	fresh, err := s.data.State.Client(q.R.Context(), c.Name)
	if err != nil {
		q.Fail("save", err)
		return true
	}
	if since := s.opts.Now().Sub(fresh.LastSnapshot); !fresh.LastSnapshot.IsZero() && since < c.MinInterval {
		status := http.StatusTooManyRequests
		if restic {
			status = http.StatusForbidden
		}
		q.Refuse(status, restapi.CodeTooOften, "client %s may store a snapshot every %v; the last one arrived %v ago",
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
func (s *Server) storedMeanwhile(ctx context.Context, q *request, be backend.Backend, u *repohttp.Upload, session string) bool {
	h := q.Path.Handle
	_, err := be.Stat(ctx, h)
	if errors.Is(err, backend.ErrNotFound) {
		return false
	}
	if err != nil {
		q.Fail("save", err)
		return true
	}
	body, err := u.Bytes(s.maxInMemory(h.Type))
	if err != nil {
		q.Fail("save", err)
		return true
	}
	stored, err := backend.LoadAll(ctx, be, h)
	if err != nil {
		q.Fail("save", err)
		return true
	}
	if !bytes.Equal(stored, body) {
		// The stored file does not hash to its name: damaged storage,
		// which the owner's check reports; never overwritten.
		q.Fail("save", fmt.Errorf("%v exists with other bytes and is never overwritten: %w", h, backend.ErrExists))
		return true
	}
	q.Log.Info("already stored by an identical upload meanwhile", "client", q.client.Name, "repo", q.Path.RepoPath(), "file", h.String())
	s.sessions.EndCommitted(q.Request, q.client.Name, session)
	q.W.WriteHeader(http.StatusOK)
	return true
}

// serveDelete: an append-only client deletes nothing but restic's locks;
// a replica tenant, nothing sound (refuseReplicaDelete).
func (s *Server) serveDelete(q *request, be backend.Backend) {
	h, c := q.Path.Handle, q.client
	if c.Replica {
		if s.refuseReplicaDelete(q, be) {
			return
		}
	} else if c.AppendOnly && h.Type != backend.Locks {
		q.Refuse(http.StatusForbidden, restapi.CodeAppendOnly, "client %s is append-only: deleting %v is refused", c.Name, h)
		return
	}
	repohttp.Delete(q.Request, be, func(size int64) { s.usage.Release(c.Name, size) })
}
