package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// startHeapProfile implements CAIRN_MEMPROFILE=FILE: it samples the heap
// every 100 ms and, whenever the live heap after a GC reaches a new peak,
// rewrites FILE with a heap profile, so the file shows what was live at
// the run's peak (for `go tool pprof -sample_index=inuse_space`). The
// returned stop function writes nothing more. A forced collection (the
// one after unlocking a key file) starts a new peak.
func startHeapProfile(path string) (stop func()) {
	runtime.MemProfileRate = 64 << 10
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var peak uint64
		var lastGC, forced uint32
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.NumForcedGC != forced {
				// The key file's KDF memory was just given back: what
				// matters is the peak of the work that follows.
				forced, peak = ms.NumForcedGC, 0
			}
			if ms.NumGC == lastGC || ms.HeapAlloc <= peak {
				continue
			}
			lastGC, peak = ms.NumGC, ms.HeapAlloc
			fmt.Fprintf(os.Stderr, "memprofile: heap alloc %d MiB, heap sys %d MiB (idle %d, released %d), stacks %d MiB, other %d MiB, total sys %d MiB\n",
				ms.HeapAlloc>>20, ms.HeapSys>>20, ms.HeapIdle>>20, ms.HeapReleased>>20, ms.StackSys>>20, (ms.Sys-ms.HeapSys-ms.StackSys)>>20, ms.Sys>>20)
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
	}()
	return func() { close(done); <-finished }
}
