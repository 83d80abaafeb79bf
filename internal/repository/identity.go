package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"time"
)

// SignerKind says what the roster makes of a snapshot's signing key.
type SignerKind uint8

const (
	SignerUnknown SignerKind = iota // neither the owner nor in the roster
	SignerOwner                     // the owner key: any host label
	SignerWriter                    // a listed writer: its bound host labels
	SignerRevoked                   // a revoked writer: the binding it had
)

// Signer is who signed a snapshot, as the pinned owner key and the
// owner-signed roster tell (R25).
type Signer struct {
	Kind  SignerKind
	Name  string   // the writer's roster name
	Hosts []string // host labels it may use (not the owner's: any)
	ID    []byte   // its Ed25519 public key
}

// String is how listings show the signer: "owner", the writer's roster
// name, "revoked:<name>" or "unknown".
func (s Signer) String() string {
	name := s.Name
	if name == "" && len(s.ID) >= 4 {
		name = "key-" + hex.EncodeToString(s.ID[:4])
	}
	switch s.Kind {
	case SignerOwner:
		return "owner"
	case SignerWriter:
		return name
	case SignerRevoked:
		return "revoked:" + name
	}
	return "unknown"
}

// MayUse reports whether the signer's snapshots may carry host label h.
func (s Signer) MayUse(h string) bool {
	switch s.Kind {
	case SignerOwner:
		return true
	case SignerWriter, SignerRevoked:
		return slices.Contains(s.Hosts, h)
	}
	return false
}

// SignerOf looks up a snapshot signing key.
func (r *Repository) SignerOf(pub []byte) Signer {
	if bytes.Equal(pub, r.keys.OwnerSignPub) {
		return Signer{Kind: SignerOwner, ID: pub}
	}
	b, ok := r.roster.Binding(pub)
	switch {
	case !ok:
		return Signer{Kind: SignerUnknown, ID: pub}
	case b.Revoked:
		return Signer{Kind: SignerRevoked, Name: b.Name, Hosts: b.Hosts, ID: pub}
	}
	return Signer{Kind: SignerWriter, Name: b.Name, Hosts: b.Hosts, ID: pub}
}

// HostLabel returns the host label a backup by this key records when
// none is asked for: the hostname for the owner (and for a writer bound to
// it), else the writer's first bound label, so a writer's snapshots carry
// the identity it was enrolled under.
func (r *Repository) HostLabel(hostname string) string {
	s := r.SignerOf(r.keys.SignerID())
	if s.Kind == SignerOwner || s.MayUse(hostname) || len(s.Hosts) == 0 {
		return hostname
	}
	return s.Hosts[0]
}

// MayUseHost reports whether this key's snapshots may carry host label
// h, and the labels it may use.
func (r *Repository) MayUseHost(h string) (bool, []string) {
	s := r.SignerOf(r.keys.SignerID())
	return s.MayUse(h), s.Hosts
}

// Standing is how a snapshot stands when a command picks one by itself
// ("latest", --host, the parent of a backup): by its signer's host
// binding and by policy time, never by a writer's claim (R14, R25).
type Standing struct {
	Signer   Signer
	Time     time.Time // policy time: what selection orders by
	Receipt  bool      // Time is a coordinator-signed receipt's
	Suspect  bool      // a writer's snapshot whose time nothing vouches for
	Impostor bool      // its host label is not bound to its signer
	Judged   bool      // set by Judge
}

// Selectable reports whether selection may pick the snapshot by itself;
// one that is not is still reachable by its ID.
func (s Standing) Selectable() bool { return s.Judged && !s.Suspect && !s.Impostor }

// PolicyTime is the time selection orders a snapshot by (pure):
//   - a valid coordinator receipt's arrival time, when there is one;
//   - else the owner's claimed time (the owner is trusted);
//   - else, for a writer, the earlier of its claim and the storage's
//     time for the file, so a claim in the future gains nothing. Such a
//     snapshot is suspect in a server-mode repository (every commit
//     through the server gets a receipt) and where storage gives no time.
func PolicyTime(claimed, stored, receipt time.Time, ownerSigned, serverMode bool) (t time.Time, suspect bool) {
	switch {
	case !receipt.IsZero():
		return receipt, false
	case ownerSigned:
		return claimed, false
	case stored.IsZero():
		return claimed, true
	}
	if stored.Before(claimed) {
		claimed = stored
	}
	return claimed, serverMode
}

// Judge gives each snapshot its Standing and sorts snaps by policy time,
// oldest first. Receipts that do not verify, or name another statement,
// are returned as problems and ignored. Call it before ApplyReceipts,
// which replaces the storage time it reads.
func (r *Repository) Judge(ctx context.Context, snaps []*Snapshot) ([]error, error) {
	rcs, bad, err := r.Receipts(ctx)
	if err != nil {
		return bad, fmt.Errorf("load receipts: %w", err)
	}
	serverMode := len(r.cfg.MetaRecipientsExtra) > 0
	for _, s := range snaps {
		st := s.File.Statement
		sg := r.SignerOf(st.Writer[:])
		var receipt time.Time
		if rc, ok := rcs[s.ID.String()]; ok {
			h := sha256.Sum256(s.File.StatementRaw)
			if bytes.Equal(rc.StatementHash, h[:]) {
				receipt = rc.Arrived
			} else {
				bad = append(bad, fmt.Errorf("receipt for snapshot %s names another statement", s.ID.Short()))
			}
		}
		t, suspect := PolicyTime(st.Time, s.ModTime, receipt, sg.Kind == SignerOwner, serverMode)
		s.Standing = Standing{Signer: sg, Time: t, Receipt: !receipt.IsZero(), Suspect: suspect,
			Impostor: s.Meta != nil && !sg.MayUse(s.Meta.HostLabel), Judged: true}
	}
	SortByPolicyTime(snaps)
	return bad, nil
}

// SortByPolicyTime sorts judged snapshots oldest first by policy time,
// then by ID.
func SortByPolicyTime(snaps []*Snapshot) {
	sort.SliceStable(snaps, func(i, j int) bool {
		a, b := snaps[i].Standing.Time, snaps[j].Standing.Time
		if !a.Equal(b) {
			return a.Before(b)
		}
		return bytes.Compare(snaps[i].ID[:], snaps[j].ID[:]) < 0
	})
}

// Latest returns the newest selectable snapshot by policy time among
// those match accepts, and the matching ones it passed over because
// they are suspect or impostors (newest first). snaps must be judged.
func Latest(snaps []*Snapshot, match func(*Snapshot) bool) (best *Snapshot, skipped []*Snapshot) {
	for _, s := range snaps {
		if match != nil && !match(s) {
			continue
		}
		if !s.Standing.Selectable() {
			skipped = append(skipped, s)
			continue
		}
		if best == nil || s.Standing.Time.After(best.Standing.Time) ||
			(s.Standing.Time.Equal(best.Standing.Time) && bytes.Compare(s.ID[:], best.ID[:]) > 0) {
			best = s
		}
	}
	slices.Reverse(skipped)
	return best, skipped
}

// boundHosts is what AddWriter records: the hosts asked for, or the
// label, so every new roster entry names its binding explicitly.
func boundHosts(label string, hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	if len(out) == 0 && label != "" {
		out = []string{label}
	}
	return out
}
