// Package writerlist serves a writer's own snapshot list (R16). A writer cannot read the index or
// other snapshots' headers, so in server mode it asks the server for its
// dedup scope: the statements it signed (seq, arrival time on the
// server's clock, statement hash) and the blob-ID set of its last one,
// which the server reads from the reference manifest with its metadata
// identity. The request is signed with the writer's key over the
// repository path and a timestamp, and only statements signed by that
// key are returned; tenant credentials alone are not enough, so one
// writer of a client never learns another writer's blob IDs.
package writerlist

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/tenant"
	"github.com/cairnbackup/cairn/internal/server/verify"
)

// Every: at most one writer list per client this often.
const Every = 2 * time.Second

// Handler answers writer list requests (?writer-list).
type Handler struct {
	verify *verify.Verifier
	repo   func(ctx context.Context, repoPath string) (backend.Backend, error)
	now    func() time.Time
	limit  tenant.Every // per client
}

// New returns a handler that reads repositories through repo and
// verifies requests and lists with v.
func New(v *verify.Verifier, repo func(ctx context.Context, repoPath string) (backend.Backend, error), now func() time.Time) *Handler {
	return &Handler{verify: v, repo: repo, now: now, limit: tenant.Every{Every: Every}}
}

// Serve answers q, a writer list request of client.
func (h *Handler) Serve(q *repohttp.Request, client string) {
	ctx, repoPath := q.R.Context(), q.Path.RepoPath()
	if wait, ok := h.limit.Allow(client, h.now()); !ok {
		q.W.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		q.Refuse(http.StatusTooManyRequests, restapi.CodeTooOften, "client %s may ask for a writer's snapshot list once every %v", client, h.limit.Every)
		return
	}
	var req restapi.WriterListRequest
	if err := json.NewDecoder(io.LimitReader(q.R.Body, 4<<10)).Decode(&req); err != nil {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "writer list request: %v", err)
		return
	}
	if err := verify.WriterListRequest(&req, repoPath, h.now()); err != nil {
		q.Answer("writer list", err)
		return
	}
	be, err := h.repo(ctx, repoPath)
	if err != nil {
		q.Fail("writer list", err)
		return
	}
	cr, err := h.verify.Repo(ctx, repoPath, be)
	if err != nil {
		q.Fail("writer list", err)
		return
	}
	if cr == nil {
		q.Refuse(http.StatusNotFound, restapi.CodeNotFound, "%s is not a cairn repository", repoPath)
		return
	}
	list, err := h.verify.WriterList(ctx, cr, be, req.Writer)
	if err != nil {
		q.Fail("writer list", err)
		return
	}
	body, _ := json.Marshal(list)
	q.Log.Info("writer snapshot list", "client", client, "repo", repoPath, "writer", hex.EncodeToString(req.Writer[:6]),
		"snapshots", len(list.Snapshots), "last_refs", len(list.LastRefs)/restapi.WriterRefSize)
	q.W.Header().Set("Content-Type", "application/json")
	q.W.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.W.WriteHeader(http.StatusOK)
	q.W.Write(body)
}
