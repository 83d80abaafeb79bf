package archiver

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// blobStore is what the archiver needs of a repository.Session.
type blobStore interface {
	SaveBlob(ctx context.Context, t blob.Type, plain []byte) (blob.ID, bool, error)
	SaveBlobID(ctx context.Context, t blob.Type, id blob.ID, plain []byte) (bool, error)
	Has(t blob.Type, id blob.ID) bool
}

// dryRunStore is a blobStore for --dry-run: it computes IDs and counts
// the blobs that would be new, storing nothing.
type dryRunStore struct {
	repo  *repository.Repository
	known repository.Known

	mu    sync.Mutex
	added map[snapshot.Ref]struct{}

	blobs, bytes atomic.Uint64 // would be added; plaintext bytes
}

func newDryRunStore(repo *repository.Repository, known repository.Known) *dryRunStore {
	return &dryRunStore{repo: repo, known: known, added: map[snapshot.Ref]struct{}{}}
}

func (d *dryRunStore) SaveBlob(ctx context.Context, t blob.Type, plain []byte) (blob.ID, bool, error) {
	id := d.repo.BlobID(t, plain)
	isNew, err := d.SaveBlobID(ctx, t, id, plain)
	return id, isNew, err
}

func (d *dryRunStore) SaveBlobID(_ context.Context, t blob.Type, id blob.ID, plain []byte) (bool, error) {
	if d.known.Has(id, t) {
		return false, nil
	}
	ref := snapshot.Ref{Type: t, ID: id}
	d.mu.Lock()
	_, dup := d.added[ref]
	d.added[ref] = struct{}{}
	d.mu.Unlock()
	if dup {
		return false, nil
	}
	d.blobs.Add(1)
	d.bytes.Add(uint64(len(plain)))
	return true, nil
}

func (d *dryRunStore) Has(t blob.Type, id blob.ID) bool {
	d.mu.Lock()
	_, ok := d.added[snapshot.Ref{Type: t, ID: id}]
	d.mu.Unlock()
	return ok || d.known.Has(id, t)
}

// nothingKnown is the Known of a writer with no earlier snapshot.
type nothingKnown struct{}

func (nothingKnown) Has(blob.ID, blob.Type) bool { return false }
