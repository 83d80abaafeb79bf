package restapi

// Owner requests (docs/format.md §21, docs/retention.md): POST
// /{repo}/?owner-request with a sealed trust.OwnerRequest asks the server
// to forget snapshots or prune; the answer is an OwnerAnswer. The server
// (internal/server) answers it; the client side is internal/backend/rest.

import (
	"encoding/json"
	"time"
)

// OwnerRequestQuery is the query of POST /{repo}/?owner-request.
const OwnerRequestQuery = "owner-request"

// OwnerRequestSkew is how far an owner request's time may be from the
// server's clock; the server remembers the nonces it accepted for twice
// as long.
const OwnerRequestSkew = 5 * time.Minute

// Refusals of an owner request, beyond CodeBadRequest (malformed),
// CodeBadSignature (the signature does not verify: tampered), CodeNotFound
// (a named snapshot is not stored) and CodeNotCoordinator.
const (
	// CodeNotOwner: signed by a key that is not the repository's owner
	// key (a writer's, the server's, an unknown one) (403).
	CodeNotOwner = "not-owner"
	// CodeWrongRepository: signed for another repository (403).
	CodeWrongRepository = "wrong-repository"
	// CodeExpired: its time is too far from the server's clock (403).
	CodeExpired = "request-expired"
	// CodeReplayed: the server has carried out this request already (409).
	CodeReplayed = "replayed"
	// CodeStale: the stored snapshots changed since the request was
	// signed (a backup arrived, or it was carried out already) (409); the
	// owner may sign a new one.
	CodeStale = "stale-request"
	// CodeOverBudget: a space policy cannot be met without deleting a
	// floor snapshot; nothing was forgotten (409).
	CodeOverBudget = "over-budget"
	// CodeBusy: the repository stayed busy (a backup's commit, the
	// server's maintenance) longer than the server waits (503).
	CodeBusy = "repository-busy"
)

// OwnerItem is one snapshot in an OwnerAnswer, as `cairn forget --json`
// shows it.
type OwnerItem struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"` // policy time
	Host    string    `json:"host,omitempty"`
	Tags    []string  `json:"tags,omitempty"`
	Group   string    `json:"group"`
	Action  string    `json:"action"` // keep or remove
	Reasons []string  `json:"reasons"`
}

// OwnerAnswer is what the server decided and did.
type OwnerAnswer struct {
	Action    string      `json:"action"`
	DryRun    bool        `json:"dry_run"`
	Snapshots []OwnerItem `json:"snapshots"`
	Removed   int         `json:"removed"`
	// Prune is the prune.Report when the server pruned.
	Prune json.RawMessage `json:"prune,omitempty"`
}
