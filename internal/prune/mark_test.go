package prune

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
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
	live := LiveSet(merge(merge(nil, refsFrom(0, 100)), refsFrom(50, 150)))
	if len(live) != 150 {
		t.Fatalf("%d refs, want 150", len(live))
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
	var snaps [][]snapshot.Ref
	for i := range 20 {
		snaps = append(snaps, refsFrom(i*10000, i*10000+100000))
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	var live []snapshot.Ref
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
