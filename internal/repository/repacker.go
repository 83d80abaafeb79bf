package repository

import (
	"bytes"
	"context"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
)

// Repacker copies sealed blobs verbatim, with their key slots, into new
// packs of one provenance domain each, for prune's repack and repair's
// salvage. Each new pack keeps the domain its blobs came from (R23): the
// coordinator key signs it, and it stands for exactly what the old copies
// stood for. Full packs are stored as they fill; Finish stores the rest
// and the index fragments listing every new pack (R12: copy, re-index,
// then condemn).
type Repacker struct {
	repo    *Repository
	target  int
	writers map[blob.Domain]*pack.Writer
	written []pack.IndexPack
	bytes   uint64
}

// NewRepacker returns a repacker filling packs to the repository's pack
// size.
func (r *Repository) NewRepacker() *Repacker {
	target := r.Config().PackSize
	if target <= 0 {
		target = DefaultPackSize
	}
	return &Repacker{repo: r, target: target, writers: map[blob.Domain]*pack.Writer{}}
}

// Add copies one blob (sealed, as LoadSealed or a pack read returns it)
// into the pack being filled for its domain, storing that pack once full.
func (rp *Repacker) Add(ctx context.Context, e index.Entry, sealed []byte) error {
	w := rp.writers[e.Domain]
	if w == nil {
		w = pack.NewWriter(rp.target + 1<<20)
		rp.writers[e.Domain] = w
	}
	if err := rp.repo.CopySealed(w, e, sealed); err != nil {
		return err
	}
	rp.bytes += uint64(len(sealed))
	if w.Size() >= rp.target {
		return rp.flush(ctx, e.Domain)
	}
	return nil
}

// CopiedBytes is the sealed bytes added so far.
func (rp *Repacker) CopiedBytes() uint64 { return rp.bytes }

func (rp *Repacker) flush(ctx context.Context, dom blob.Domain) error {
	w := rp.writers[dom]
	delete(rp.writers, dom)
	if w == nil || w.Count() == 0 {
		return nil
	}
	ip, err := rp.repo.SavePack(ctx, w, dom)
	if err != nil {
		return err
	}
	rp.written = append(rp.written, ip)
	return nil
}

// Finish stores the packs still being filled (in domain order) and the
// index fragments listing every new pack, split as a session's are
// (WriteIndexFragments). It returns the new packs and the name of the
// fragment listing each (fragments[i] lists packs[i]); none when nothing
// was copied.
func (rp *Repacker) Finish(ctx context.Context) (packs []blob.ID, fragments []string, err error) {
	doms := make([]blob.Domain, 0, len(rp.writers))
	for d := range rp.writers {
		doms = append(doms, d)
	}
	slices.SortFunc(doms, func(a, b blob.Domain) int { return bytes.Compare(a[:], b[:]) })
	for _, d := range doms {
		if err := rp.flush(ctx, d); err != nil {
			return nil, nil, err
		}
	}
	if len(rp.written) == 0 {
		return nil, nil, nil
	}
	if fragments, err = rp.repo.WriteIndexFragments(ctx, rp.written); err != nil {
		return nil, nil, err
	}
	for _, ip := range rp.written {
		packs = append(packs, ip.Pack)
	}
	return packs, fragments, nil
}
