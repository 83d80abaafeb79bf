package prune

import (
	"context"
	"math/bits"
	"slices"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// BytesPerLiveBlob is the live set's memory per unique reachable blob and
// signer: a liveRef (1-byte type + 32-byte ID + 2-byte domain number,
// padded) in a sorted slice. Growing it holds the old and the new slice
// at once, so the peak is about twice this.
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
	ok, _ := l.servesFrom(e, -1)
	return ok
}

// servesFrom is Serves with the search started at position hint (see
// search; -1: no hint). It also returns the position of e's blob in the
// set (or where it would be), the hint for a later copy.
func (l *LiveSet) servesFrom(e index.Entry, hint int) (bool, int) {
	ref := snapshot.Ref{Type: e.Type, ID: e.ID}
	i := l.search(ref, hint)
	for j := i; j < len(l.refs) && l.refs[j].Ref == ref; j++ {
		if e.Domain == l.owner || l.doms[l.refs[j].dom] == e.Domain {
			return true, i
		}
	}
	return false, i
}

// search returns the position of the first pair of ref in the set, or
// where it would be. With a hint (0 ≤ hint ≤ Len) not past that
// position, it gallops forward from hint: O(log d) for a position d
// pairs on, so lookups in ascending order cost one pass over the set in
// all. A hint past the position, or -1, costs one binary search.
func (l *LiveSet) search(ref snapshot.Ref, hint int) int {
	refs := l.refs
	cmp := func(a liveRef, r snapshot.Ref) int { return a.Ref.Compare(r) }
	if hint < 0 || hint > len(refs) || (hint > 0 && refs[hint-1].Ref.Compare(ref) >= 0) {
		i, _ := slices.BinarySearchFunc(refs, ref, cmp)
		return i
	}
	// Every pair before lo is less than ref; the answer is at most hi.
	lo, hi := hint, hint
	for step := 1; hi < len(refs) && refs[hi].Ref.Compare(ref) < 0; step *= 2 {
		lo = hi + 1
		hi += step
	}
	hi = min(hi, len(refs))
	i, _ := slices.BinarySearchFunc(refs[lo:hi], ref, cmp)
	return lo + i
}

// Cursor answers Serves for copies asked in ascending (ID, type) order,
// the order of index.Each, in one pass over the set: each lookup starts
// where the one before found its blob. (A binary search of the whole set
// per index entry made prune's pack statistics grow as N log N: 10.8×
// from 1 M to 10 M blobs, cache misses on the set.) Copies out of order
// are answered right, at the cost of a binary search.
type Cursor struct {
	l  *LiveSet
	at int
}

// Cursor returns a cursor at the start of the set.
func (l *LiveSet) Cursor() *Cursor { return &Cursor{l: l} }

// Serves is LiveSet.Serves.
func (c *Cursor) Serves(e index.Entry) bool {
	ok, at := c.l.servesFrom(e, c.at)
	c.at = at
	return ok
}

// add merges n pairs, sorted and unique (at(i) is the i-th), into the
// set in place: the pairs not in it yet are set aside (a binary search
// each when they are few against the set, else one walk of both), the set
// grows by that many in its own capacity, and the two merge from the
// back. A snapshot that adds little to a large set costs no copy of the
// set; the first snapshot's refs are the set, with no copy between.
// (Merging into a new slice per snapshot allocated, cleared and faulted
// in the whole set each time: prune's cost grew faster than the blob
// count, 11.6× from 1 M to 10 M blobs.)
func (l *LiveSet) add(n int, at func(i int) liveRef) {
	a := l.refs
	if len(a) == 0 {
		// Room for later snapshots' new refs without a regrowth: the
		// first snapshot is most of the set, and growing a large slice
		// costs a copy of it into fresh memory.
		a = make([]liveRef, n, n+n/8)
		for i := range a {
			a[i] = at(i)
		}
		l.refs = a
		return
	}
	var fresh []liveRef
	if n*bits.Len(uint(len(a))) < len(a)+n {
		for i := range n {
			x := at(i)
			if _, found := slices.BinarySearchFunc(a, x, liveRef.compare); !found {
				fresh = append(fresh, x)
			}
		}
	} else {
		j := 0
		for i := range n {
			x := at(i)
			for j < len(a) && a[j].compare(x) < 0 {
				j++
			}
			if j == len(a) || a[j].compare(x) != 0 {
				fresh = append(fresh, x)
			}
		}
	}
	if len(fresh) == 0 {
		return
	}
	i, j := len(a)-1, len(fresh)-1
	a = slices.Grow(a, len(fresh))[:len(a)+len(fresh)]
	for k := len(a) - 1; j >= 0; k-- {
		if i >= 0 && a[i].compare(fresh[j]) > 0 {
			a[k] = a[i]
			i--
		} else {
			a[k] = fresh[j]
			j--
		}
	}
	l.refs = a
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
		refs = snapshot.SortRefs(refs)
		l.add(len(refs), func(i int) liveRef { return liveRef{refs[i], dom} })
		for _, p := range s.Meta.Pages {
			pages = append(pages, liveRef{snapshot.Ref{Type: blob.ManifestPage, ID: p}, dom})
		}
	}
	slices.SortFunc(pages, liveRef.compare)
	pages = slices.CompactFunc(pages, func(a, b liveRef) bool { return a.compare(b) == 0 })
	l.add(len(pages), func(i int) liveRef { return pages[i] })
	return l, nil
}
