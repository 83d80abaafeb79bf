package index

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
)

// entries calls fn with n pseudo-random entries, a new pack every 300, the
// same sequence for the same seed.
func entries(seed uint64, n int, fn func(Entry)) {
	r := rand.New(rand.NewPCG(seed, 0))
	var pack blob.ID
	for i := range n {
		if i%300 == 0 {
			pack = randID(r)
		}
		fn(Entry{ID: randID(r), Type: blob.Data, Pack: pack, Offset: uint32(i % 300 * 70000), Length: 70000, Slot: 1})
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// cpuTime returns the process's user+system CPU time; on a shared machine
// it is steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestIndexMemory measures heap bytes per blob, build time and lookup time.
// It runs 1 M entries unless -short; CAIRN_INDEX_MEM_10M=1 adds 10 M (about
// 1 GB of heap):
//
//	CAIRN_INDEX_MEM_10M=1 go test -run TestIndexMemory -v ./internal/index/
func TestIndexMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1 M entry index")
	}
	sizes := []int{1_000_000}
	if os.Getenv("CAIRN_INDEX_MEM_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			perBlob := func(b uint64) float64 { return float64(b) / float64(n) }
			for _, grow := range []bool{false, true} {
				before := heapAlloc()
				c0, w0 := cpuTime(), time.Now()
				x := New()
				if grow {
					x.Grow(n)
				}
				entries(1, n, x.Add)
				c1, w1 := cpuTime(), time.Now()
				added := heapAlloc() - before
				x.Compact()
				compacted := heapAlloc() - before
				t.Logf("%d entries, Grow %v: build %v CPU (%v wall); %.1f B/blob after Adds, %.1f after Compact",
					n, grow, (c1 - c0).Round(time.Millisecond), w1.Sub(w0).Round(time.Millisecond),
					perBlob(added), perBlob(compacted))
				// Issue 17's goal: at most 50 bytes per blob once loaded.
				if perBlob(compacted) > 50 {
					t.Errorf("%.1f B/blob after Compact, want at most 50", perBlob(compacted))
				}
				if grow {
					runtime.KeepAlive(x)
					break
				}

				// Lookups of present IDs (regenerated, so in random order)
				// and of absent ones.
				const q = 1_000_000
				ids := make([]blob.ID, 0, q)
				entries(1, min(n, q), func(e Entry) { ids = append(ids, e.ID) })
				start := time.Now()
				for _, id := range ids {
					if !x.Has(id, blob.Data) {
						t.Fatal("missing entry")
					}
				}
				hit := time.Since(start) / time.Duration(len(ids))
				ids = ids[:0]
				entries(2, q, func(e Entry) { ids = append(ids, e.ID) })
				start = time.Now()
				for _, id := range ids {
					if x.Has(id, blob.Data) {
						t.Fatal("phantom entry")
					}
				}
				miss := time.Since(start) / time.Duration(len(ids))
				// Recent entries: add 1% more, look them up from the tails.
				ids = ids[:0]
				entries(3, n/100, func(e Entry) { x.Add(e); ids = append(ids, e.ID) })
				start = time.Now()
				for _, id := range ids {
					if !x.Has(id, blob.Data) {
						t.Fatal("missing recent entry")
					}
				}
				recent := time.Since(start) / time.Duration(len(ids))
				t.Logf("%d entries: lookup hit %v, miss %v, recent hit %v", n, hit, miss, recent)
				runtime.KeepAlive(x)
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	const n = 1_000_000
	x := New()
	var ids []blob.ID
	entries(1, n, func(e Entry) { x.Add(e); ids = append(ids, e.ID) })
	x.Compact()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if !x.Has(ids[i], blob.Data) {
			b.Fatal("missing")
		}
		if i++; i == len(ids) {
			i = 0
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	x := New()
	r := rand.New(rand.NewPCG(1, 0))
	e := Entry{Type: blob.Data, Pack: randID(r)}
	for b.Loop() {
		e.ID = randID(r)
		x.Add(e)
	}
}
