package prune

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"slices"
	"testing"

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

func TestMerge(t *testing.T) {
	live := &LiveSet{refs: merge(merge(nil, tagged(refsFrom(0, 100), 0)), tagged(refsFrom(50, 150), 0)), doms: []blob.Domain{{1}}}
	if live.Len() != 150 {
		t.Fatalf("%d refs, want 150", live.Len())
	}
	for _, r := range refsFrom(0, 150) {
		if !live.Has(r.Type, r.ID) {
			t.Fatal("lost a ref")
		}
	}
	if live.Has(blob.Tree, refsFrom(0, 1)[0].ID) {
		t.Fatal("type ignored")
	}
}

// TestLiveSetMemory measures the live set's heap per unique blob: 20
// snapshots of 100 000 refs each, 10% new per snapshot (290 000 unique).
// go test ./internal/prune -run LiveSetMemory -v
func TestLiveSetMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~150 MB")
	}
	var snaps [][]liveRef
	for i := range 20 {
		snaps = append(snaps, tagged(refsFrom(i*10000, i*10000+100000), 0))
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	var live []liveRef
	for _, s := range snaps {
		live = merge(live, s)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	n := len(live)
	t.Logf("%d unique live blobs: %.1f bytes/blob retained; peak during a merge ≈ 2× that", n, float64(m1.HeapAlloc-m0.HeapAlloc)/float64(n))
	runtime.KeepAlive(live)
	runtime.KeepAlive(snaps)
}

// A copy serves a blob only for snapshots of its own domain, except the
// owner's, which serves everyone's (R23).
func TestServesByDomain(t *testing.T) {
	owner, w1, w2 := blob.Domain{1}, blob.Domain{2}, blob.Domain{3}
	refs := refsFrom(0, 10)
	// w1's snapshots reach refs 0-4, the owner's 5-9.
	l := &LiveSet{owner: owner, doms: []blob.Domain{w1, owner},
		refs: merge(tagged(refs[:5], 0), tagged(snapshot.SortRefs(slices.Clone(refs[5:])), 1))}
	l.refs = merge(nil, l.refs)
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
