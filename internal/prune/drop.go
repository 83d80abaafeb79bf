package prune

import (
	"context"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
)

// DropPacks removes packs from the index with prune's fragment rewrite
// (each fragment listing one is replaced by one without it, the new one
// stored before the old is removed), and from the repository's in-memory
// index. The pack files are left alone. `cairn repair` uses it for packs
// that are missing or unreadable. It returns the fragments written and
// removed.
func DropPacks(ctx context.Context, repo *repository.Repository, packs map[blob.ID]bool) (written, removed int, err error) {
	p := &pruner{repo: repo, be: repo.Backend(), rep: &Report{},
		stats: map[blob.ID]*packStat{}, fragments: map[blob.ID][]string{}, stored: map[blob.ID]int64{}}
	if err := p.load(ctx); err != nil {
		return 0, 0, err
	}
	if err := p.rewriteIndex(ctx, packs); err != nil {
		return p.rep.IndexWritten, p.rep.IndexRemoved, err
	}
	repo.Index().RemovePacks(toSet(packs))
	return p.rep.IndexWritten, p.rep.IndexRemoved, nil
}
