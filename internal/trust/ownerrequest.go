package trust

// Owner requests: the owner's signed order to a cairn server to forget
// snapshots or prune a repository the owner cannot delete from itself (a
// server repository's tombstones, plans and deletions are the server's to
// write). docs/format.md §21 gives the bytes.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/retention"
)

// SigOwnerRequest is the signing context of an owner request: a
// signature made for any other object never verifies as one.
const SigOwnerRequest = "cairn v1 owner request"

const ownerRequestMagic = "CRO1"

// MaxOwnerRequest bounds an owner request: room for about 10 000
// snapshot IDs.
const MaxOwnerRequest = 1 << 20

// Owner request actions.
const (
	ActionForget = "forget" // snapshots by ID, or by a policy
	ActionPrune  = "prune"  // garbage collection only
	// ActionDrill records a restore drill the owner ran (Drill): the
	// server changes nothing in the repository, it remembers when the
	// repository was last proven restorable.
	ActionDrill = "drill"
)

// DrillRecord is what `cairn drill` proved: a sample of the snapshot's
// files restored and checked against their sealed content hashes.
type DrillRecord struct {
	Snapshot string    `json:"snapshot"` // file name, hex
	Time     time.Time `json:"time"`     // when the drill ran, the owner's clock
	Files    int64     `json:"files"`    // sampled files restored and verified
	Bytes    int64     `json:"bytes"`    // their size
	Total    int64     `json:"total"`    // regular files in the snapshot
	Result   string    `json:"result"`   // DrillOK or DrillFailed
	Problems int64     `json:"problems,omitempty"`
}

// Drill results.
const (
	DrillOK     = "ok"
	DrillFailed = "failed"
)

// OwnerRequest is what the owner signs. It is bound to one repository
// (RepoID) and to the set of snapshots stored when it was made (Head), so
// it cannot be used on another repository, nor again once it has removed
// anything or a backup has arrived; Time and Nonce make every request
// unique and let the server refuse one outside its time window or seen
// before.
type OwnerRequest struct {
	RepoID string    `json:"repo_id"` // hex
	Head   string    `json:"head"`    // hex, SnapshotHead of the stored snapshots
	Time   time.Time `json:"time"`    // the owner's clock
	Nonce  string    `json:"nonce"`   // hex, 16 random bytes
	Action string    `json:"action"`
	// Snapshots names the snapshots to forget (file names, hex); with a
	// Policy, the snapshots the policy sees (nil: all of them).
	Snapshots []string       `json:"snapshots,omitempty"`
	Policy    *RequestPolicy `json:"policy,omitempty"`
	DryRun    bool           `json:"dry_run,omitempty"`
	// Prune prunes after forgetting (always, for ActionPrune) with Grace
	// and RepackThreshold (a fraction in (0, 1]).
	Prune           bool          `json:"prune,omitempty"`
	Grace           time.Duration `json:"grace_ns,omitempty"`
	RepackThreshold float64       `json:"repack_threshold,omitempty"`
	// Drill is the record of ActionDrill.
	Drill *DrillRecord `json:"drill,omitempty"`
}

// RequestPolicy is a retention policy as `cairn forget` takes it: Keep
// rules, Importance or MaxSize (one kind), grouped by GroupBy.
type RequestPolicy struct {
	Keep       retention.Policy `json:"keep"`
	Within     time.Duration    `json:"within_ns,omitempty"` // Keep.Within, which Policy's JSON leaves out
	GroupBy    string           `json:"group_by"`
	Importance int              `json:"importance,omitempty"`
	MaxSize    uint64           `json:"max_size,omitempty"`
}

// Rules is the policy's keep rules with Within.
func (p *RequestPolicy) Rules() retention.Policy {
	k := p.Keep
	k.Within = p.Within
	return k
}

// ErrOwnerRequest reports a malformed owner request.
var ErrOwnerRequest = errors.New("malformed owner request")

// Check checks a request's shape (not its signature, freshness or
// repository).
func (r *OwnerRequest) Check() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrOwnerRequest, fmt.Sprintf(f, a...)) }
	if !isHex(r.RepoID, 32) {
		return bad("repo_id is not 32 bytes of hex")
	}
	if !isHex(r.Head, 32) {
		return bad("head is not 32 bytes of hex")
	}
	if !isHex(r.Nonce, 16) {
		return bad("nonce is not 16 bytes of hex")
	}
	if r.Time.IsZero() {
		return bad("no time")
	}
	for _, id := range r.Snapshots {
		if !isHex(id, 32) {
			return bad("snapshot %q is not a snapshot file name", id)
		}
	}
	if r.Grace < 0 {
		return bad("negative grace")
	}
	if r.RepackThreshold < 0 || r.RepackThreshold > 1 {
		return bad("repack_threshold %v outside [0, 1]", r.RepackThreshold)
	}
	if r.Drill != nil && r.Action != ActionDrill {
		return bad("a drill record in a %s request", r.Action)
	}
	switch r.Action {
	case ActionDrill:
		if r.Policy != nil || len(r.Snapshots) > 0 || r.Prune || r.DryRun {
			return bad("drill takes no snapshots, policy, prune or dry run")
		}
		if r.Drill == nil {
			return bad("drill without a record")
		}
		return r.Drill.check()
	case ActionForget:
		if r.Policy == nil && len(r.Snapshots) == 0 {
			return bad("forget names no snapshot and no policy")
		}
		if r.Policy != nil {
			return r.Policy.check()
		}
	case ActionPrune:
		if r.Policy != nil || len(r.Snapshots) > 0 {
			return bad("prune takes no snapshots and no policy")
		}
	default:
		return bad("unknown action %q", r.Action)
	}
	return nil
}

func (d *DrillRecord) check() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: drill: %s", ErrOwnerRequest, fmt.Sprintf(f, a...))
	}
	switch {
	case !isHex(d.Snapshot, 32):
		return bad("snapshot %q is not a snapshot file name", d.Snapshot)
	case d.Time.IsZero():
		return bad("no time")
	case d.Files < 0 || d.Bytes < 0 || d.Total < 0 || d.Problems < 0:
		return bad("negative count")
	case d.Files > d.Total:
		return bad("%d files verified of %d in the snapshot", d.Files, d.Total)
	case d.Result != DrillOK && d.Result != DrillFailed:
		return bad("unknown result %q", d.Result)
	case d.Result == DrillOK && d.Problems > 0:
		return bad("result ok with %d problems", d.Problems)
	}
	return nil
}

func (p *RequestPolicy) check() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrOwnerRequest, fmt.Sprintf(f, a...)) }
	k := p.Rules() // a negative count keeps without limit, as in `cairn forget`
	if p.Within < 0 || p.Importance < 0 {
		return bad("negative within or importance")
	}
	if _, err := retention.ParseGroupBy(p.GroupBy); err != nil {
		return bad("%v", err)
	}
	kinds := 0
	for _, b := range []bool{!k.Empty(), p.Importance > 0, p.MaxSize > 0} {
		if b {
			kinds++
		}
	}
	if kinds != 1 {
		return bad("a policy needs exactly one of keep rules, importance or max_size")
	}
	return nil
}

func isHex(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n
}

// SnapshotHead is what an owner request binds to: SHA-256 over the sorted
// snapshot file names, each followed by a newline.
func SnapshotHead(names []string) string {
	s := slices.Clone(names)
	slices.Sort(s)
	h := sha256.New()
	for _, n := range s {
		h.Write([]byte(n))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SealOwnerRequest checks and signs r with the owner's signing key:
//
//	"CRO1" | body length u32 | body (JSON) | signer Ed25519 key [32] | signature [64]
func SealOwnerRequest(r *OwnerRequest, owner ed25519.PrivateKey) ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	js, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	b := append([]byte(ownerRequestMagic), binary.LittleEndian.AppendUint32(nil, uint32(len(js)))...)
	b = append(b, js...)
	b = append(b, owner.Public().(ed25519.PublicKey)...)
	return append(b, crypto.Sign(owner, SigOwnerRequest, js)...), nil
}

// OpenOwnerRequest decodes a sealed owner request and verifies its
// signature by the key it names, which it returns: the caller decides
// whether that key is the owner's. A broken signature wraps
// crypto.ErrBadSignature, anything else malformed ErrOwnerRequest.
func OpenOwnerRequest(buf []byte) (*OwnerRequest, ed25519.PublicKey, error) {
	if len(buf) > MaxOwnerRequest {
		return nil, nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrOwnerRequest, len(buf), MaxOwnerRequest)
	}
	const tail = ed25519.PublicKeySize + ed25519.SignatureSize
	if len(buf) < 8+tail || string(buf[:4]) != ownerRequestMagic {
		return nil, nil, fmt.Errorf("%w: bad magic or truncated", ErrOwnerRequest)
	}
	l := binary.LittleEndian.Uint32(buf[4:])
	if uint64(l)+8+tail != uint64(len(buf)) {
		return nil, nil, fmt.Errorf("%w: body length %d does not match %d bytes", ErrOwnerRequest, l, len(buf))
	}
	body := buf[8 : 8+l]
	pub := ed25519.PublicKey(bytes.Clone(buf[8+l : 8+l+ed25519.PublicKeySize]))
	if err := crypto.Verify(pub, SigOwnerRequest, body, buf[8+l+ed25519.PublicKeySize:]); err != nil {
		return nil, nil, fmt.Errorf("owner request: %w", err)
	}
	var r OwnerRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrOwnerRequest, err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("%w: data after the body", ErrOwnerRequest)
	}
	if err := r.Check(); err != nil {
		return nil, nil, err
	}
	return &r, pub, nil
}
