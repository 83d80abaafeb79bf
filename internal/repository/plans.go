package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Plan is a condemnation plan (R11, R12): packs a prune means to delete,
// once the grace period has passed on the storage's clock (the plan file's
// own time) and a fresh reachability pass still finds them dead.
//
// Backups read plans without any secret: Blobs lists, for every blob whose
// only copies are in condemned packs, SHA-256("cairn condemned blob v1" ‖
// type ‖ ID), so a writer can tell that a blob it would dedup against is
// going away and upload it again, without the plan naming blob IDs.
type Plan struct {
	RepoID       []byte    `json:"repo_id"`
	Created      time.Time `json:"created"` // the coordinator's clock; informational
	GraceSeconds int64     `json:"grace_seconds"`
	Packs        []string  `json:"packs"`   // condemned pack names
	Indexes      []string  `json:"indexes"` // index fragments that list them, rewritten at the sweep
	Blobs        []byte    `json:"blobs"`   // concatenated 32-byte condemned-blob hashes
	Nonce        []byte    `json:"nonce"`
}

// LoadedPlan is a verified plan and its file.
type LoadedPlan struct {
	Plan
	Name    string
	ModTime time.Time // the storage's time: the grace period starts here
}

// Grace is the plan's grace period.
func (p *Plan) Grace() time.Duration { return time.Duration(p.GraceSeconds) * time.Second }

// CondemnedHash is how a plan names a blob: by its stored type, so a
// tree is named as content (what the header that condemns it says).
func CondemnedHash(t blob.Type, id blob.ID) [32]byte {
	h := sha256.New()
	h.Write([]byte("cairn condemned blob v1\x00"))
	h.Write([]byte{byte(t.Stored())})
	h.Write(id[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// SavePlan signs and stores a plan and returns it with the storage's time
// for it.
func (r *Repository) SavePlan(ctx context.Context, p Plan) (LoadedPlan, error) {
	p.RepoID = r.keys.RepoID[:]
	p.Nonce = nonce()
	buf, err := r.signFile(planMagic, sigPlan, p)
	if err != nil {
		return LoadedPlan{}, err
	}
	if err := saveNamed(ctx, r.be, backend.Plans, buf); err != nil {
		return LoadedPlan{}, err
	}
	h := backend.Handle{Type: backend.Plans, Name: backend.NameOf(buf)}
	fi, err := r.be.Stat(ctx, h)
	if err != nil {
		return LoadedPlan{}, fmt.Errorf("stat %s: %w", h, err)
	}
	return LoadedPlan{Plan: p, Name: h.Name, ModTime: fi.ModTime}, nil
}

// Plans loads and verifies every plan; bad ones come back in errs.
func (r *Repository) Plans(ctx context.Context) (ps []LoadedPlan, errs []error, err error) {
	err = r.be.List(ctx, backend.Plans, func(fi backend.FileInfo) error {
		buf, err := backend.LoadAll(ctx, r.be, fi.Handle)
		if errors.Is(err, backend.ErrNotFound) {
			return nil // swept meanwhile
		}
		if err != nil {
			return err
		}
		var p LoadedPlan
		if backend.NameOf(buf) != fi.Name {
			err = errors.New("content does not match its name")
		} else if _, err = r.openSigned(buf, planMagic, sigPlan, &p.Plan); err == nil && !bytes.Equal(p.RepoID, r.keys.RepoID[:]) {
			err = errors.New("belongs to another repository")
		}
		if err == nil && len(p.Blobs)%32 != 0 {
			err = errors.New("malformed blob list")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fi.Handle, err))
			return nil
		}
		p.Name, p.ModTime = fi.Name, fi.ModTime
		ps = append(ps, p)
		return nil
	})
	return ps, errs, err
}

// condemned is what the plans in the repository condemn.
type condemned struct {
	blobs map[[32]byte]*LoadedPlan
	packs map[blob.ID]bool
}

func (r *Repository) loadCondemned(ctx context.Context) (*condemned, error) {
	ps, _, err := r.Plans(ctx) // an unverifiable plan condemns nothing
	if err != nil {
		return nil, fmt.Errorf("read condemnation plans: %w", err)
	}
	c := &condemned{blobs: map[[32]byte]*LoadedPlan{}, packs: map[blob.ID]bool{}}
	for i := range ps {
		p := &ps[i]
		for _, name := range p.Packs {
			if id, err := blob.ParseID(name); err == nil {
				c.packs[id] = true
			}
		}
		for b := p.Blobs; len(b) >= 32; b = b[32:] {
			c.blobs[[32]byte(b[:32])] = p
		}
	}
	return c, nil
}

// withoutCondemned hides condemned blobs from a session's dedup scope, so
// a backup that starts after a prune condemned them uploads them again.
func (r *Repository) withoutCondemned(ctx context.Context, known Known) (Known, error) {
	c, err := r.loadCondemned(ctx)
	if err != nil || len(c.blobs) == 0 {
		return known, err
	}
	return condemnedFilter{known: known, c: c}, nil
}

type condemnedFilter struct {
	known Known
	c     *condemned
}

func (f condemnedFilter) Has(id blob.ID, t blob.Type) bool {
	if f.c.blobs[CondemnedHash(t, id)] != nil {
		return false
	}
	return f.known.Has(id, t)
}

// checkCondemned runs just before a commit writes its snapshot file
// (R11). It re-reads the plans; a ref whose blob is condemned is fine if
// this session holds a copy in a pack no plan condemns (it uploaded it
// again), or if its condemned pack still exists and less than half the
// plan's grace period has passed since the plan was stored: the sweep
// comes after the whole grace period and its fresh reachability pass will
// see this snapshot, so the pack lives on (it is resurrected). Otherwise
// the commit is rejected with the missing IDs and nothing is written.
func (s *Session) checkCondemned(ctx context.Context, refs []snapshot.Ref, pages []blob.ID) error {
	r := s.repo
	c, err := r.loadCondemned(ctx)
	if err != nil || len(c.blobs) == 0 {
		return err
	}
	all := refs
	for _, p := range pages {
		all = append(all[:len(all):len(all)], snapshot.Ref{Type: blob.ManifestPage, ID: p})
	}
	var missing []string
	now := r.now()
	for _, ref := range all {
		p := c.blobs[CondemnedHash(ref.Type, ref.ID)]
		if p == nil {
			continue
		}
		safe := false
		for _, e := range r.idx.LookupAll(ref.ID, ref.Type) {
			if e.Domain == r.Domain() && !c.packs[e.Pack] {
				safe = true
				break
			}
		}
		if !safe && now.Before(p.ModTime.Add(p.Grace()/2)) {
			safe = true
		}
		if !safe {
			missing = append(missing, ref.Type.String()+" "+ref.ID.Short())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("commit rejected: %d referenced blobs are in packs a prune condemned or deleted (%s); nothing was written, run the backup again to upload them anew",
			len(missing), strings.Join(missing[:min(len(missing), 8)], ", "))
	}
	return nil
}
