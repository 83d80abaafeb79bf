package prune

import (
	"context"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// BytesPerLiveBlob is the live set's memory per unique reachable blob and
// signer: a liveRef (1-byte type + 32-byte ID + 2-byte domain number,
// padded) in a sorted slice. A merge holds the old and the new slice at
// once, so the peak is about twice this.
const BytesPerLiveBlob = 36

// liveRef is a blob some kept snapshot reaches, with the domain number of
// that snapshot's signer: only a copy of that domain or the owner's may
// serve it (R23).
type liveRef struct {
	snapshot.Ref
	dom uint16
}

func (a liveRef) compare(b liveRef) int {
	if c := a.Ref.Compare(b.Ref); c != 0 {
		return c
	}
	return int(a.dom) - int(b.dom)
}

// LiveSet is the sorted set of every (blob, signer) the kept snapshots
// reach.
type LiveSet struct {
	refs  []liveRef
	doms  []blob.Domain // domain numbers of liveRef.dom
	owner blob.Domain
}

// Len is the number of (blob, signer) pairs.
func (l *LiveSet) Len() int { return len(l.refs) }

// Has reports whether any kept snapshot reaches the blob.
func (l *LiveSet) Has(t blob.Type, id blob.ID) bool {
	i, _ := slices.BinarySearchFunc(l.refs, liveRef{Ref: snapshot.Ref{Type: t, ID: id}}, liveRef.compare)
	return i < len(l.refs) && l.refs[i].Ref == (snapshot.Ref{Type: t, ID: id})
}

// needers calls fn with the domain of every signer whose kept snapshots
// reach the blob.
func (l *LiveSet) needers(t blob.Type, id blob.ID, fn func(blob.Domain) bool) {
	ref := snapshot.Ref{Type: t, ID: id}
	i, _ := slices.BinarySearchFunc(l.refs, liveRef{Ref: ref}, liveRef.compare)
	for ; i < len(l.refs) && l.refs[i].Ref == ref; i++ {
		if !fn(l.doms[l.refs[i].dom]) {
			return
		}
	}
}

// Serves reports whether copy e serves a kept snapshot: some snapshot
// signed by e's domain reaches it, or e is the owner's and any snapshot
// reaches it. A copy in another party's domain is garbage to everyone but
// that party (R23).
func (l *LiveSet) Serves(e index.Entry) bool {
	if e.Domain == l.owner {
		return l.Has(e.Type, e.ID)
	}
	found := false
	l.needers(e.Type, e.ID, func(d blob.Domain) bool {
		found = d == e.Domain
		return !found
	})
	return found
}

// merge merges two sorted, unique lists.
func merge(a, b []liveRef) []liveRef {
	out := make([]liveRef, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := a[i].compare(b[j]); {
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

func tagged(refs []snapshot.Ref, dom uint16) []liveRef {
	out := make([]liveRef, len(refs))
	for i, r := range refs {
		out[i] = liveRef{r, dom}
	}
	return out
}

// Mark merges the manifests of snaps, one at a time, into the live set,
// each ref under its snapshot's signer.
func Mark(ctx context.Context, repo *repository.Repository, snaps []*repository.Snapshot) (*LiveSet, error) {
	return MarkWith(ctx, repo, snaps, repo.ManifestRefs)
}

// MarkWith is Mark with the manifests' refs read by manifestRefs (a
// cache of repo.ManifestRefs, say: a snapshot's manifest never changes).
func MarkWith(ctx context.Context, repo *repository.Repository, snaps []*repository.Snapshot,
	manifestRefs func(context.Context, *repository.Snapshot) ([]snapshot.Ref, error)) (*LiveSet, error) {
	l := &LiveSet{owner: repo.OwnerDomain()}
	domNum := map[blob.Domain]uint16{}
	num := func(d blob.Domain) uint16 {
		n, ok := domNum[d]
		if !ok {
			n = uint16(len(l.doms))
			domNum[d] = n
			l.doms = append(l.doms, d)
		}
		return n
	}
	var pages []liveRef
	for _, s := range snaps {
		refs, err := manifestRefs(ctx, s)
		if err != nil {
			return nil, err
		}
		dom := num(blob.Domain(s.File.Statement.Writer))
		// Pages are cut from one sorted list, so their concatenation is
		// sorted; SortRefs guards against a malformed manifest.
		l.refs = merge(l.refs, tagged(snapshot.SortRefs(refs), dom))
		for _, p := range s.Meta.Pages {
			pages = append(pages, liveRef{snapshot.Ref{Type: blob.ManifestPage, ID: p}, dom})
		}
	}
	slices.SortFunc(pages, liveRef.compare)
	l.refs = merge(l.refs, slices.CompactFunc(pages, func(a, b liveRef) bool { return a.compare(b) == 0 }))
	return l, nil
}
