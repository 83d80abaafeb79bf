package prune

import (
	"crypto/sha256"
	"encoding/binary"
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

// TestLiveSetMemory holds the live set to BytesPerLiveBlob: a liveRef is
// that size, one merge allocates one slice of that many bytes per element
// and nothing else, and the set built from 20 snapshots (10 000 refs each,
// 10% new per snapshot) retains at most twice that per unique blob (a
// merge's result keeps the capacity of both inputs).
func TestLiveSetMemory(t *testing.T) {
	if got := unsafe.Sizeof(liveRef{}); got != BytesPerLiveBlob {
		t.Fatalf("liveRef is %d bytes, BytesPerLiveBlob says %d", got, BytesPerLiveBlob)
	}
	var snaps [][]liveRef
	for i := range 20 {
		snaps = append(snaps, tagged(refsFrom(i*1000, i*1000+10000), 0))
	}
	if n := testing.AllocsPerRun(10, func() { merge(snaps[0], snaps[1]) }); n != 1 {
		t.Errorf("merge makes %v allocations, want 1", n)
	}

	runtime.GC()
	var m0, m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m0)
	var live []liveRef
	var inputs uint64
	for _, s := range snaps {
		inputs += uint64(len(live) + len(s))
		live = merge(live, s)
	}
	runtime.ReadMemStats(&m1)
	runtime.GC()
	runtime.ReadMemStats(&m2)
	n := uint64(len(live))
	if n != 29000 {
		t.Fatalf("%d unique live blobs, want 29000", n)
	}
	// A large allocation is rounded up to whole 8 KiB pages.
	allocated := m1.TotalAlloc - m0.TotalAlloc
	if limit := inputs*BytesPerLiveBlob + uint64(len(snaps))*8192; allocated > limit {
		t.Errorf("20 merges allocated %d bytes, want at most %d", allocated, limit)
	}
	retained := int64(m2.HeapAlloc) - int64(m0.HeapAlloc)
	perBlob := float64(retained) / float64(n)
	t.Logf("%d unique live blobs: %.1f bytes/blob retained, %d bytes allocated by 20 merges", n, perBlob, allocated)
	if perBlob > 2*BytesPerLiveBlob+1 {
		t.Errorf("live set retains %.1f bytes per blob, want at most %d", perBlob, 2*BytesPerLiveBlob)
	}
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
