package prune

import (
	"context"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// BytesPerLiveBlob is the live set's memory per unique reachable blob: a
// snapshot.Ref (1-byte type + 32-byte ID) in a sorted slice. A merge holds
// the old and the new slice at once, so the peak is about twice this.
const BytesPerLiveBlob = 33

// LiveSet is the sorted set of every blob the kept snapshots reach.
type LiveSet []snapshot.Ref

// Has reports whether the blob is live.
func (l LiveSet) Has(t blob.Type, id blob.ID) bool {
	_, ok := slices.BinarySearchFunc(l, snapshot.Ref{Type: t, ID: id}, snapshot.Ref.Compare)
	return ok
}

// merge merges two sorted, unique ref lists.
func merge(a, b []snapshot.Ref) []snapshot.Ref {
	out := make([]snapshot.Ref, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := a[i].Compare(b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// Mark merges the manifests of snaps, one at a time, into the live set.
func Mark(ctx context.Context, repo *repository.Repository, snaps []*repository.Snapshot) (LiveSet, error) {
	var live []snapshot.Ref
	var pages []snapshot.Ref
	for _, s := range snaps {
		refs, err := repo.ManifestRefs(ctx, s)
		if err != nil {
			return nil, err
		}
		// Pages are cut from one sorted list, so their concatenation is
		// sorted; SortRefs guards against a malformed manifest.
		refs = snapshot.SortRefs(refs)
		live = merge(live, refs)
		for _, p := range s.Meta.Pages {
			pages = append(pages, snapshot.Ref{Type: blob.ManifestPage, ID: p})
		}
	}
	return merge(live, snapshot.SortRefs(pages)), nil
}
