package server

// A writer's own snapshot list (R16). A writer cannot read the index or
// other snapshots' headers, so in server mode it asks the server for its
// dedup scope: the statements it signed (seq, arrival time on the
// server's clock, statement hash) and the blob-ID set of its last one,
// which the server reads from the reference manifest with its metadata
// identity. The request is signed with the writer's key over the
// repository path and a timestamp, and only statements signed by that
// key are returned; tenant credentials alone are not enough, so one
// writer of a client never learns another writer's blob IDs.

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/verify"
)

// writerListEvery: at most one writer list per client this often.
const writerListEvery = 2 * time.Second

func (s *Server) serveWriterList(q *request) {
	ctx, repoPath := q.R.Context(), q.Path.RepoPath()
	if wait, ok := s.writerLists.Allow(q.client.Name, s.opts.Now()); !ok {
		q.W.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		q.Refuse(http.StatusTooManyRequests, restapi.CodeTooOften, "client %s may ask for a writer's snapshot list once every %v", q.client.Name, s.writerLists.Every)
		return
	}
	var req restapi.WriterListRequest
	if err := json.NewDecoder(io.LimitReader(q.R.Body, 4<<10)).Decode(&req); err != nil {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "writer list request: %v", err)
		return
	}
	if err := verify.WriterListRequest(&req, repoPath, s.opts.Now()); err != nil {
		q.Answer("writer list", err)
		return
	}
	be, err := s.repos.Get(ctx, repoPath)
	if err != nil {
		q.Fail("writer list", err)
		return
	}
	cr, err := s.verify.Repo(ctx, repoPath, be)
	if err != nil {
		q.Fail("writer list", err)
		return
	}
	if cr == nil {
		q.Refuse(http.StatusNotFound, restapi.CodeNotFound, "%s is not a cairn repository", repoPath)
		return
	}
	list, err := s.verify.WriterList(ctx, cr, be, req.Writer)
	if err != nil {
		q.Fail("writer list", err)
		return
	}
	body, _ := json.Marshal(list)
	q.Log.Info("writer snapshot list", "client", q.client.Name, "repo", repoPath, "writer", hex.EncodeToString(req.Writer[:6]),
		"snapshots", len(list.Snapshots), "last_refs", len(list.LastRefs)/restapi.WriterRefSize)
	q.W.Header().Set("Content-Type", "application/json")
	q.W.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.W.WriteHeader(http.StatusOK)
	q.W.Write(body)
}
