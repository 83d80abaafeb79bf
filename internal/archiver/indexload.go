package archiver

import (
	"context"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
)

// indexLoad is the repository index loading in the background. As a
// repository.Known it answers only once the load has finished: an answer
// from a half-loaded index would upload again what is already stored. A
// failed load cancels the backup with its error and answers no to every
// question, so nothing waits forever; the backup fails before it commits.
// A nil *indexLoad (a writer, which has no index to load) is loaded.
type indexLoad struct {
	done chan struct{}
	err  error
	idx  repository.Known
}

func loadIndex(ctx context.Context, repo *repository.Repository, fail context.CancelCauseFunc) *indexLoad {
	// Only the key's own domain counts (R23): a writer's garbage under
	// a guessed ID must not make the owner skip uploading the real blob.
	l := &indexLoad{done: make(chan struct{}), idx: repo.Index().In(repo.Domain())}
	go func() {
		defer close(l.done)
		if err := repo.LoadIndex(ctx); err != nil {
			l.err = err
			fail(l.err)
		}
	}()
	return l
}

// wait blocks until the index is loaded and returns the load's error.
func (l *indexLoad) wait() error {
	if l == nil {
		return nil
	}
	<-l.done
	return l.err
}

func (l *indexLoad) Has(id blob.ID, t blob.Type) bool {
	return l.wait() == nil && l.idx.Has(id, t)
}
