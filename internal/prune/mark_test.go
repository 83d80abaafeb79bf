package prune

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func refsFrom(lo, hi int) []snapshot.Ref {
	var refs []snapshot.Ref
	for i := lo; i < hi; i++ {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		refs = append(refs, snapshot.Ref{Type: blob.Data, ID: blob.ID(sha256.Sum256(b[:]))})
	}
	return snapshot.SortRefs(refs)
}

// addRefs adds refs (sorted, unique) under domain number dom.
func addRefs(l *LiveSet, refs []snapshot.Ref, dom uint16) {
	l.add(len(refs), func(i int) liveRef { return liveRef{refs[i], dom} })
}

// add keeps the set sorted and unique whether the refs added are few
// against it (a binary search each) or many (one walk), under one domain
// or several.
func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts [][2]int // ranges of refsFrom, added in turn
	}{
		{"overlapping halves", [][2]int{{0, 100}, {50, 150}}},
		{"few into many", [][2]int{{0, 5000}, {4990, 5010}, {7000, 7003}}},
		{"many into few", [][2]int{{0, 3}, {0, 5000}}},
		{"nothing new", [][2]int{{0, 1000}, {10, 20}, {0, 1000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &LiveSet{doms: []blob.Domain{{1}, {2}}}
			var want []liveRef
			for i, p := range tc.parts {
				refs := refsFrom(p[0], p[1])
				addRefs(l, refs, uint16(i%2))
				for _, r := range refs {
					want = append(want, liveRef{r, uint16(i % 2)})
				}
			}
			slices.SortFunc(want, liveRef.compare)
			want = slices.CompactFunc(want, func(a, b liveRef) bool { return a.compare(b) == 0 })
			if !slices.Equal(l.refs, want) {
				t.Fatalf("set of %d pairs, want %d (sorted, unique)", len(l.refs), len(want))
			}
		})
	}
	live := &LiveSet{doms: []blob.Domain{{1}}}
	addRefs(live, refsFrom(0, 100), 0)
	addRefs(live, refsFrom(50, 150), 0)
	if live.Has(blob.Tree, refsFrom(0, 1)[0].ID) {
		t.Fatal("type ignored")
	}
}

// TestLiveSetMemory holds the live set to BytesPerLiveBlob: a liveRef is
// that size, and the set built from 20 snapshots (10 000 refs each, 10%
// new per snapshot) retains at most twice that per unique blob (growing
// in place keeps some capacity spare). Adding a snapshot allocates only
// room for what is new, never a copy of the set per snapshot.
func TestLiveSetMemory(t *testing.T) {
	if got := unsafe.Sizeof(liveRef{}); got != BytesPerLiveBlob {
		t.Fatalf("liveRef is %d bytes, BytesPerLiveBlob says %d", got, BytesPerLiveBlob)
	}
	var snaps [][]snapshot.Ref
	for i := range 20 {
		snaps = append(snaps, refsFrom(i*1000, i*1000+10000))
	}
	big := &LiveSet{}
	addRefs(big, refsFrom(0, 100000), 0)
	big.refs = slices.Clip(big.refs)
	if n := testing.AllocsPerRun(10, func() { addRefs(&LiveSet{refs: big.refs}, snaps[0], 0) }); n != 0 {
		t.Errorf("adding refs all in the set makes %v allocations, want 0", n)
	}

	runtime.GC()
	var m0, m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m0)
	l := &LiveSet{}
	for _, s := range snaps {
		addRefs(l, s, 0)
	}
	runtime.ReadMemStats(&m1)
	runtime.GC()
	runtime.ReadMemStats(&m2)
	n := uint64(l.Len())
	if n != 29000 {
		t.Fatalf("%d unique live blobs, want 29000", n)
	}
	// Merging each snapshot into a new slice allocated about 20 × the
	// final set (21 MB here); growing in place, the set's regrowths
	// (append grows a large slice 1.25× a time: about 4 × the final set)
	// and the new refs set aside (6.5 MB in all).
	allocated := m1.TotalAlloc - m0.TotalAlloc
	if limit := 6*n*BytesPerLiveBlob + 2*19*1000*BytesPerLiveBlob; allocated > limit {
		t.Errorf("20 snapshots allocated %d bytes, want at most %d", allocated, limit)
	}
	retained := int64(m2.HeapAlloc) - int64(m0.HeapAlloc)
	perBlob := float64(retained) / float64(n)
	t.Logf("%d unique live blobs: %.1f bytes/blob retained, %d bytes allocated by 20 snapshots", n, perBlob, allocated)
	if perBlob > 2*BytesPerLiveBlob+1 {
		t.Errorf("live set retains %.1f bytes per blob, want at most %d", perBlob, 2*BytesPerLiveBlob)
	}
	runtime.KeepAlive(l)
	runtime.KeepAlive(snaps)
}

// A copy serves a blob only for snapshots of its own domain, except the
// owner's, which serves everyone's (R23).
func TestServesByDomain(t *testing.T) {
	owner, w1, w2 := blob.Domain{1}, blob.Domain{2}, blob.Domain{3}
	refs := refsFrom(0, 10)
	// w1's snapshots reach refs 0-4, the owner's 5-9.
	l := &LiveSet{owner: owner, doms: []blob.Domain{w1, owner}}
	addRefs(l, refs[:5], 0)
	addRefs(l, snapshot.SortRefs(slices.Clone(refs[5:])), 1)
	at := func(i int, d blob.Domain) index.Entry {
		return index.Entry{Type: refs[i].Type, ID: refs[i].ID, Domain: d}
	}
	for i := range 10 {
		own := i < 5
		if got := l.Serves(at(i, w1)); got != own {
			t.Errorf("w1's copy of ref %d serves: %v, want %v", i, got, own)
		}
		if l.Serves(at(i, w2)) {
			t.Errorf("w2's copy of ref %d serves a snapshot w2 never signed", i)
		}
		if !l.Serves(at(i, owner)) {
			t.Errorf("the owner's copy of live ref %d does not serve", i)
		}
	}
	if l.Serves(index.Entry{Type: blob.Data, ID: blob.ID{0xff}, Domain: owner}) {
		t.Error("a dead blob serves")
	}
}

// servesBefore is Serves as it was before Cursor: a binary search of
// the set per copy.
func servesBefore(l *LiveSet, e index.Entry) bool {
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

// TestCursorServes: a cursor answers as a binary search per copy did,
// for copies asked in the index's order (duplicates, blobs no snapshot
// reaches, before the first and after the last live blob, every domain)
// and out of order.
func TestCursorServes(t *testing.T) {
	owner, w1, w2, w3 := blob.Domain{1}, blob.Domain{2}, blob.Domain{3}, blob.Domain{4}
	all := refsFrom(0, 3000)
	l := &LiveSet{owner: owner, doms: []blob.Domain{owner, w1, w2}}
	// The owner's snapshots reach every third blob, w1's every second,
	// w2's every fifth; the first and last 100 blobs none.
	for dom, every := range []int{3, 2, 5} {
		var refs []snapshot.Ref
		for i := 100; i < len(all)-100; i += every {
			refs = append(refs, all[i])
		}
		addRefs(l, refs, uint16(dom))
	}
	var copies []index.Entry
	for i, r := range all {
		for k, d := range []blob.Domain{owner, w1, w2, w3} {
			if (i+k)%3 != 0 {
				copies = append(copies, index.Entry{Type: r.Type, ID: r.ID, Domain: d, Pack: blob.ID{byte(k)}})
			}
		}
		if i%7 == 0 { // the same copy twice, in two packs
			copies = append(copies, index.Entry{Type: r.Type, ID: r.ID, Domain: w1, Pack: blob.ID{9}})
		}
		if i%11 == 0 { // a manifest page under a data blob's ID: no snapshot reaches that
			copies = append(copies, index.Entry{Type: blob.ManifestPage, ID: r.ID, Domain: owner})
		}
	}
	check := func(order string, copies []index.Entry) {
		t.Helper()
		c := l.Cursor()
		served := 0
		for _, e := range copies {
			want := servesBefore(l, e)
			if got := c.Serves(e); got != want {
				t.Fatalf("%s: cursor says copy %s (domain %x) serves: %v, want %v", order, e.ID.Short(), e.Domain[:1], got, want)
			}
			if got := l.Serves(e); got != want {
				t.Fatalf("%s: Serves(%s, domain %x) = %v, want %v", order, e.ID.Short(), e.Domain[:1], got, want)
			}
			if want {
				served++
			}
		}
		if served == 0 || served == len(copies) {
			t.Fatalf("%s: %d of %d copies serve; the test needs both kinds", order, served, len(copies))
		}
	}
	check("index order", copies)
	shuffled := slices.Clone(copies)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	check("shuffled", shuffled)
	slices.Reverse(copies)
	check("reversed", copies)
}
