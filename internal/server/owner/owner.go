// Package owner answers owner requests for the server (package server).
//
// Owner requests (docs/retention.md, "On a cairn server"; the bytes in
// docs/format.md §21). Tombstones, plans and deletions in a server
// repository are the server's to write, so the owner, whose key never
// reaches the server (R4), asks: POST /{client}/{repo}/?owner-request with
// a trust.OwnerRequest signed by the owner's signing key. The server
// checks that the signature verifies (else 403 bad-signature), that the
// request is fresh (its time within restapi.OwnerRequestSkew, else 403
// request-expired), for this repository (else 403 wrong-repository),
// signed by the owner key of the repository's config (else 403 not-owner:
// a writer's key, the server's own, any other), made against the
// snapshots stored now (else 409 stale-request) and not seen before (else
// 409 replayed); then it forgets and prunes exactly as its own
// maintenance does (maintain.Scheduler.Owner) and answers a
// restapi.OwnerAnswer. Tenant credentials alone never suffice: a
// compromised client holds them and a writer key, not the owner key.
package owner

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/server/maintain"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
	"github.com/cairnbackup/cairn/internal/trust"
)

// Host is what owner requests need of the server.
type Host interface {
	// CairnRepo returns the storage of the repository at path (client/repo)
	// and its ID; ok is false if it is not a cairn repository.
	CairnRepo(ctx context.Context, path string) (be backend.Backend, id [32]byte, ok bool, err error)
	// Open opens the repository at path with the server's keys (nil if it
	// is not a cairn repository), as the maintenance scheduler does.
	Open(ctx context.Context, path string) (*repository.Repository, backend.Backend, error)
	// Owner carries out an owner order (maintain.Scheduler.Owner).
	Owner(ctx context.Context, client, path string, o maintain.OwnerOrder, check func(*repository.Repository) error) (*maintain.OwnerResult, error)
	// RecordDrill keeps a drill record as the repository's last drill.
	RecordDrill(ctx context.Context, d reports.Drill) error
	// RefuseCoordinate answers a request whose repository could not be
	// coordinated.
	RefuseCoordinate(q *repohttp.Request, err error)
}

// Handler answers owner requests.
type Handler struct {
	host   Host
	now    func() time.Time
	nonces nonces // owner requests carried out lately
}

// New returns a handler answering owner requests through host, with now
// as the clock.
func New(host Host, now func() time.Time) *Handler {
	return &Handler{host: host, now: now}
}

// maxNonces bounds the nonces remembered (R26); only requests the
// owner key signed are remembered.
const maxNonces = 4096

// nonces remembers the nonces of owner requests carried out in the
// last 2 × restapi.OwnerRequestSkew: a request seen again within its time
// window is a replay. (After that window its time refuses it; and a
// request that changed anything no longer matches the stored snapshots.)
type nonces struct {
	mu   sync.Mutex
	seen map[string]time.Time // nonce → when it may be forgotten
}

// take records nonce unless it was seen; it reports whether it was new.
func (n *nonces) take(nonce string, now time.Time) (fresh bool, full bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[string]time.Time{}
	}
	if until, ok := n.seen[nonce]; ok && now.Before(until) {
		return false, false
	}
	if len(n.seen) >= maxNonces {
		for k, until := range n.seen {
			if !now.Before(until) {
				delete(n.seen, k)
			}
		}
		if len(n.seen) >= maxNonces {
			return false, true
		}
	}
	n.seen[nonce] = now.Add(2 * restapi.OwnerRequestSkew)
	return true, false
}

// Serve carries out an owner request (see the top of this
// file) and answers a restapi.OwnerAnswer.
func (h *Handler) Serve(q *repohttp.Request, client string) {
	ctx, repoPath := q.R.Context(), q.Path.RepoPath()
	req, signer, ok := readOwnerRequest(q)
	if !ok {
		return
	}
	now := h.now()
	if d := now.Sub(req.Time); d > restapi.OwnerRequestSkew || d < -restapi.OwnerRequestSkew {
		q.Refuse(http.StatusForbidden, restapi.CodeExpired, "owner request: its time is %v from the server's clock (at most %v); sign a new one", d.Round(time.Second), restapi.OwnerRequestSkew)
		return
	}
	be, ok := h.ownerRepo(q, req)
	if !ok {
		return
	}
	if err := h.ownerFirst(ctx, repoPath, be, signer); err != nil {
		h.refuseOwner(q, err)
		return
	}
	if req.Action == trust.ActionDrill {
		h.serveDrillRecord(q, client, repoPath, be, req) // drill.go
		return
	}
	order, err := ownerOrder(req)
	if err != nil {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "owner request: %v", err)
		return
	}
	res, err := h.host.Owner(ctx, client, repoPath, order, h.ownerCheck(ctx, req, signer))
	if err != nil {
		h.refuseOwner(q, err)
		return
	}
	writeOwnerAnswer(q, client, req, order, res)
}

// readOwnerRequest reads and opens the signed request in q's body; it
// answers q and returns false if it cannot.
func readOwnerRequest(q *repohttp.Request) (*trust.OwnerRequest, ed25519.PublicKey, bool) {
	buf, err := io.ReadAll(io.LimitReader(q.R.Body, trust.MaxOwnerRequest+1))
	if err != nil {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "owner request: %v", err)
		return nil, nil, false
	}
	if len(buf) > trust.MaxOwnerRequest {
		q.Refuse(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge, "owner request larger than %d bytes", trust.MaxOwnerRequest)
		return nil, nil, false
	}
	req, signer, err := trust.OpenOwnerRequest(buf)
	switch {
	case errors.Is(err, crypto.ErrBadSignature):
		q.Refuse(http.StatusForbidden, restapi.CodeBadSignature, "owner request: the signature does not verify (the request was altered, or not signed by the key it names)")
		return nil, nil, false
	case err != nil:
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "%v", err)
		return nil, nil, false
	}
	return req, signer, true
}

// ownerRepo opens the cairn repository q names and checks that req was
// signed for it; it answers q and returns false if not.
func (h *Handler) ownerRepo(q *repohttp.Request, req *trust.OwnerRequest) (backend.Backend, bool) {
	ctx, repoPath := q.R.Context(), q.Path.RepoPath()
	be, id, ok, err := h.host.CairnRepo(ctx, repoPath)
	if err != nil {
		q.Fail("owner request", err)
		return nil, false
	}
	if !ok {
		q.Refuse(http.StatusNotFound, restapi.CodeNotFound, "%s is not a cairn repository", repoPath)
		return nil, false
	}
	if req.RepoID != hex.EncodeToString(id[:]) {
		q.Refuse(http.StatusForbidden, restapi.CodeWrongRepository, "owner request: signed for repository %.8s, this is %.8s (%s)", req.RepoID, hex.EncodeToString(id[:]), repoPath)
		return nil, false
	}
	return be, true
}

// ownerCheck returns the check the maintenance scheduler runs under the
// repository's coordination before carrying out req: signed by the owner
// key, made against the snapshots stored now, and not seen before.
func (h *Handler) ownerCheck(ctx context.Context, req *trust.OwnerRequest, signer ed25519.PublicKey) func(*repository.Repository) error {
	return func(r *repository.Repository) error {
		if err := checkOwnerSigner(r, signer); err != nil {
			return err
		}
		var names []string
		if err := r.Backend().List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
			names = append(names, fi.Name)
			return nil
		}); err != nil {
			return err
		}
		if trust.SnapshotHead(names) != req.Head {
			return repohttp.Refusef(http.StatusConflict, restapi.CodeStale, "owner request: the stored snapshots changed since it was signed (a backup arrived, or the request was carried out already); sign a new one")
		}
		// Taken last, under the repository's coordination: of two copies
		// of one request, one is carried out.
		switch fresh, full := h.nonces.take(req.Nonce, h.now()); {
		case full:
			return repohttp.Refusef(http.StatusTooManyRequests, restapi.CodeTooOften, "owner request: too many in the last %v", 2*restapi.OwnerRequestSkew)
		case !fresh:
			return repohttp.Refusef(http.StatusConflict, restapi.CodeReplayed, "owner request %.8s: carried out already (a replay)", req.Nonce)
		}
		return nil
	}
}

// writeOwnerAnswer logs a carried-out owner request and answers it with
// a restapi.OwnerAnswer.
func writeOwnerAnswer(q *repohttp.Request, client string, req *trust.OwnerRequest, order maintain.OwnerOrder, res *maintain.OwnerResult) {
	ans := restapi.OwnerAnswer{Action: req.Action, DryRun: req.DryRun, Snapshots: []restapi.OwnerItem{}, Removed: res.Removed}
	gb := retention.GroupBy{}
	if order.Policy != nil {
		gb = order.Policy.GroupBy
	}
	for _, d := range res.Decisions {
		it := restapi.OwnerItem{ID: d.Snapshot.ID, Time: d.Snapshot.Time, Host: d.Snapshot.Host, Tags: d.Snapshot.Tags,
			Group: gb.Key(d.Snapshot), Action: "keep", Reasons: d.Reasons}
		if !d.Keep {
			it.Action = "remove"
		}
		ans.Snapshots = append(ans.Snapshots, it)
	}
	if res.Prune != nil {
		ans.Prune, _ = json.Marshal(res.Prune)
	}
	body, _ := json.Marshal(ans)
	q.Log.Info("owner request", "client", client, "repo", q.Path.RepoPath(), "action", req.Action, "nonce", req.Nonce[:8],
		"dry_run", req.DryRun, "removed", res.Removed, "pruned", res.Prune != nil)
	q.W.Header().Set("Content-Type", "application/json")
	q.W.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.W.WriteHeader(http.StatusOK)
	q.W.Write(body)
}

// ownerFirst refuses a request not signed by the owner key of the
// stored config before the repository is coordinated: only the owner's
// requests make the server wait for a repository (checkOwnerSigner checks
// again, under coordination, against the repository as opened).
func (h *Handler) ownerFirst(ctx context.Context, repoPath string, be backend.Backend, signer ed25519.PublicKey) error {
	raw, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		return err
	}
	cfg, err := repository.PeekConfig(raw)
	if err != nil {
		return err
	}
	if signer.Equal(ed25519.PublicKey(cfg.OwnerSignPub)) {
		return nil
	}
	r, _, err := h.host.Open(ctx, repoPath) // to name the key
	if err != nil || r == nil {
		return repohttp.Refusef(http.StatusForbidden, restapi.CodeNotOwner, "owner request: not signed by the repository's owner key; only the owner may forget or prune")
	}
	return checkOwnerSigner(r, signer)
}

// ownerOrder is req in the maintenance scheduler's terms.
func ownerOrder(req *trust.OwnerRequest) (maintain.OwnerOrder, error) {
	o := maintain.OwnerOrder{DryRun: req.DryRun, Prune: req.Prune || req.Action == trust.ActionPrune,
		PruneOptions: prune.Options{Grace: req.Grace, RepackThreshold: req.RepackThreshold},
		Rule:         fmt.Sprintf("owner request %.8s: ", req.Nonce)}
	if req.Action != trust.ActionForget {
		return o, nil
	}
	if req.Policy == nil {
		o.IDs = req.Snapshots
		return o, nil
	}
	gb, err := retention.ParseGroupBy(req.Policy.GroupBy)
	if err != nil {
		return o, err
	}
	o.Policy = &forget.Policy{Keep: req.Policy.Rules(), GroupBy: gb, Importance: req.Policy.Importance, MaxSize: req.Policy.MaxSize}
	o.Scope = req.Snapshots
	return o, nil
}

// checkOwnerSigner refuses a request not signed by the repository's owner
// key, naming what the key is.
func checkOwnerSigner(r *repository.Repository, signer ed25519.PublicKey) error {
	if signer.Equal(r.Keys().OwnerSignPub) {
		return nil
	}
	what := "a key this repository does not know"
	if b, ok := r.Roster().Binding(signer); ok {
		what = fmt.Sprintf("the writer key %q", b.Name)
		if b.Revoked {
			what = "a revoked writer key"
		}
	} else if r.Roster().IsCoordinator(signer) {
		what = "a server (coordinator) key"
	}
	return repohttp.Refusef(http.StatusForbidden, restapi.CodeNotOwner, "owner request: signed by %s, not the repository's owner key; only the owner may forget or prune", what)
}

// refuseOwner answers an owner request that failed.
func (h *Handler) refuseOwner(q *repohttp.Request, err error) {
	var rf *repohttp.Refusal
	switch {
	case errors.As(err, &rf):
		q.Refuse(rf.Status, rf.Code, "%s", rf.Msg)
	case errors.Is(err, maintain.ErrElsewhere):
		h.host.RefuseCoordinate(q, err)
	case errors.Is(err, maintain.ErrBusy):
		q.W.Header().Set("Retry-After", "10")
		q.Refuse(http.StatusServiceUnavailable, restapi.CodeBusy, "owner request: %v; try again", err)
	case errors.Is(err, maintain.ErrOverBudget):
		q.Refuse(http.StatusConflict, restapi.CodeOverBudget, "owner request: %v; nothing was forgotten", err)
	case errors.Is(err, backend.ErrNotFound):
		q.Refuse(http.StatusNotFound, restapi.CodeNotFound, "owner request: %v; nothing was forgotten", err)
	case errors.Is(err, context.Canceled):
		q.Refuse(499, restapi.CodeBadRequest, "owner request: %v", err)
	default:
		q.Refuse(http.StatusInternalServerError, restapi.CodeInternal, "owner request: %v", err)
	}
}
