package owner

// Drill records (docs/server.md, "Restore drills"): `cairn drill` sends
// an owner request with action drill (trust.DrillRecord) after a
// successful drill. Serve has checked the signature, its
// time, the repository and that the owner key signed it; the server
// checks the snapshot is stored and the nonce is new, and keeps the
// record as the repository's last drill. Nothing in the repository
// changes.

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
	"github.com/cairnbackup/cairn/internal/trust"
)

// serveDrillRecord keeps the drill record req carries for client's
// repository repoPath, stored in be.
func (h *Handler) serveDrillRecord(q *repohttp.Request, client, repoPath string, be backend.Backend, req *trust.OwnerRequest) {
	ctx, d := q.R.Context(), req.Drill
	if skew := d.Time.Sub(req.Time); skew > restapi.OwnerRequestSkew || skew < -restapi.OwnerRequestSkew {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "drill record: the drill's time is %v from the request's; sign a new one after the drill", skew.Round(time.Second))
		return
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Snapshots, Name: d.Snapshot}); errors.Is(err, backend.ErrNotFound) {
		q.Refuse(http.StatusNotFound, restapi.CodeNotFound, "drill record: snapshot %.8s is not stored in %s", d.Snapshot, repoPath)
		return
	} else if err != nil {
		q.Fail("drill record", err)
		return
	}
	switch fresh, full := h.nonces.take(req.Nonce, h.now()); {
	case full:
		q.Refuse(http.StatusTooManyRequests, restapi.CodeTooOften, "owner request: too many in the last %v", 2*restapi.OwnerRequestSkew)
		return
	case !fresh:
		q.Refuse(http.StatusConflict, restapi.CodeReplayed, "drill record %.8s: recorded already (a replay)", req.Nonce)
		return
	}
	rec := reports.Drill{Client: client, Repo: repoPath, Snapshot: d.Snapshot, At: d.Time, Received: h.now(),
		Files: d.Files, Bytes: d.Bytes, Total: d.Total, Result: d.Result, Problems: d.Problems}
	if err := h.host.RecordDrill(ctx, rec); err != nil {
		q.Fail("drill record", err)
		return
	}
	q.Log.Info("drill recorded", "client", client, "repo", repoPath, "snapshot", d.Snapshot[:8], "result", d.Result,
		"files", d.Files, "bytes", d.Bytes)
	body := []byte(`{"action":"drill","dry_run":false,"snapshots":[],"removed":0}`)
	q.W.Header().Set("Content-Type", "application/json")
	q.W.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.W.WriteHeader(http.StatusOK)
	q.W.Write(body)
}
