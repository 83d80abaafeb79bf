package prune

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/repository"
)

func sortedIDs(m map[blob.ID]bool) []blob.ID {
	ids := make([]blob.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}

// condemn finds dead, mostly-dead and unindexed packs, repacks the live
// blobs of the mostly-dead ones, and stores a plan condemning them all.
// Packs condemned by a pending plan are left to it.
func (p *pruner) condemn(ctx context.Context, pending map[blob.ID]bool) (*repository.LoadedPlan, error) {
	dead, repack, unindexed := map[blob.ID]bool{}, map[blob.ID]bool{}, map[blob.ID]bool{}
	var missing int
	for id, st := range p.stats {
		if pending[id] {
			continue
		}
		if _, ok := p.stored[id]; !ok {
			missing++
			continue
		}
		switch {
		case st.liveEntries == 0:
			dead[id] = true
			p.rep.DeadBytes += st.total
		case float64(st.total-st.live) >= p.opts.RepackThreshold*float64(st.total):
			repack[id] = true
			p.rep.DeadBytes += st.total - st.live
		}
	}
	for id := range p.stored {
		if _, ok := p.stats[id]; !ok && !pending[id] {
			unindexed[id] = true
			p.rep.UnindexedBytes += uint64(p.stored[id])
			p.rep.DeadBytes += uint64(p.stored[id])
		}
	}
	if missing > 0 {
		p.rep.Notes = append(p.rep.Notes, fmt.Sprintf("%d indexed packs are missing from storage; run `cairn check`, then `cairn repair`", missing))
	}
	p.rep.DeadPacks, p.rep.RepackedPacks, p.rep.Unindexed = len(dead), len(repack), len(unindexed)
	all := map[blob.ID]bool{}
	for _, m := range []map[blob.ID]bool{dead, repack, unindexed, pending} {
		for id := range m {
			all[id] = true
		}
	}
	if len(dead)+len(repack)+len(unindexed) == 0 {
		return nil, nil
	}
	if p.opts.DryRun {
		for id := range all {
			if !pending[id] {
				p.rep.Condemned = append(p.rep.Condemned, id.String())
			}
		}
		sort.Strings(p.rep.Condemned)
		return nil, nil
	}
	ents := p.entries(all)
	if err := p.repack(ctx, repack, ents, all); err != nil {
		return nil, err
	}
	// Headers of unindexed packs, so the plan can name their blobs.
	for id := range unindexed {
		h, _, err := p.repo.StoredPackHeader(ctx, id)
		if err != nil {
			p.rep.Notes = append(p.rep.Notes, fmt.Sprintf("unindexed pack %s: %v", id.Short(), err))
			continue
		}
		for _, e := range h.Entries {
			ents[id] = append(ents[id], index.Entry{ID: e.ID, Type: e.Type, Pack: id, Offset: e.Offset, Length: e.Length, Domain: h.Domain})
		}
	}
	plan := repository.Plan{Created: p.repo.Now().UTC(), GraceSeconds: int64(p.opts.Grace.Seconds())}
	frags := map[string]bool{}
	for _, id := range sortedIDs(all) {
		if pending[id] {
			continue
		}
		plan.Packs = append(plan.Packs, id.String())
		p.rep.Condemned = append(p.rep.Condemned, id.String())
		for _, f := range p.fragments[id] {
			frags[f] = true
		}
		for _, e := range ents[id] {
			// Named unless its own domain keeps a copy elsewhere: a backup
			// of that domain must not dedup against it.
			if !p.hasCopyOutside(p.repo.Index().LookupAll(e.ID, e.Type), all, e.Domain, e.Domain) {
				h := repository.CondemnedHash(e.Type, e.ID)
				plan.Blobs = append(plan.Blobs, h[:]...)
			}
		}
	}
	for f := range frags {
		plan.Indexes = append(plan.Indexes, f)
	}
	sort.Strings(plan.Indexes)
	lp, err := p.repo.SavePlan(ctx, plan)
	if err != nil {
		return nil, err
	}
	return &lp, nil
}

// repack copies the live blobs of mostly-dead packs that have no copy
// outside the condemned set, verbatim with their key slots, into new
// packs, then indexes them (R12: copy, re-index, then condemn). Each new
// pack holds one domain's blobs and keeps that domain (R23): the
// coordinator signs it, and it stands for exactly what the old copies
// stood for.
func (p *pruner) repack(ctx context.Context, repack map[blob.ID]bool, ents map[blob.ID][]index.Entry, condemned map[blob.ID]bool) error {
	rp := p.repo.NewRepacker()
	type copyKey struct {
		ref [33]byte
		dom blob.Domain
	}
	copied := map[copyKey]bool{}
	for id := range repack {
		p.opts.Progress.AddTotal(1, uint64(p.stored[id]))
	}
	for _, id := range sortedIDs(repack) {
		var todo []index.Entry
		for _, e := range ents[id] {
			var k copyKey
			k.ref[0] = byte(e.Type)
			copy(k.ref[1:], e.ID[:])
			k.dom = e.Domain
			if !copied[k] && p.needed(e, condemned) {
				todo = append(todo, e)
				copied[k] = true
			}
		}
		if len(todo) == 0 {
			p.opts.Progress.Add(1, uint64(p.stored[id]))
			continue
		}
		start, end := todo[0].Offset, todo[len(todo)-1].Offset+todo[len(todo)-1].Length
		var buf []byte
		err := p.be.Load(ctx, backend.Handle{Type: backend.Data, Name: id.String()}, int(end-start), int64(start), func(rd io.Reader) error {
			buf = make([]byte, end-start)
			_, err := io.ReadFull(rd, buf)
			return err
		})
		if err != nil {
			return fmt.Errorf("repack %s: %w", id.Short(), err)
		}
		for _, e := range todo {
			if err := rp.Add(ctx, e, buf[e.Offset-start:e.Offset-start+e.Length]); err != nil {
				return err
			}
		}
		p.opts.Progress.Add(1, uint64(p.stored[id]))
	}
	packs, fragments, err := rp.Finish(ctx)
	if err != nil {
		return err
	}
	p.rep.CopiedBytes += rp.CopiedBytes()
	p.rep.NewPacks += len(packs)
	p.rep.IndexWritten += len(slices.Compact(slices.Clone(fragments)))
	for i, id := range packs {
		p.stored[id] = 0
		p.fragments[id] = append(p.fragments[id], fragments[i])
	}
	return nil
}
