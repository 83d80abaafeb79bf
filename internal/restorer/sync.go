package restorer

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cairnbackup/cairn/internal/fsmeta"
)

// Durability. A restore that returns without error has what it wrote on
// stable storage: at its end, one syncfs(2) on the target's file system
// flushes every file's content and metadata and every name renamed, linked
// or made. Flushing file by file (fsync before each rename) cost 0.4 ms of
// system time per file and made a restore of the Linux source about 3.5
// times slower on a loaded machine. A crash during the restore may leave
// renamed files short, as it may leave any file unwritten: the restore has
// not reported success, and running it again finds them (--overwrite
// if-changed compares sizes, then content identities) and writes them
// again. Options.NoFsync skips the flush.
//
// The disk should not start only when the last file is written: the
// kernel begins writing dirty pages back by itself only after 30 s or at
// a tenth of memory, so a restore of a few GiB would otherwise wait for
// all of them at the end. Every writebackEvery bytes restored start a
// syncfs in the background (one at a time; the workers do not wait for
// it), and the end's flush has only the last stretch left. On the Linux
// source from MinIO (1.2 GiB) the end's flush took 1.4 to 3 s of a 6 to 8
// s restore alone, and background flushing took back about half of that;
// every 128 MiB did a little better than every 256 (bench/README.md). A background flush's error is kept and returned by
// the end's: the file system reports a writeback error once per
// descriptor, to the first syncfs after it.

// writebackEvery is how much a restore writes between the flushes it
// starts in the background. A variable so a test can make it small.
var writebackEvery uint64 = 128 << 20

// syncFS flushes the file system of a restore's target. A variable so a
// test can count flushes and fail one.
var syncFS = (*fsmeta.Restorer).SyncFS

// writeback is a restore's background flushing.
type writeback struct {
	pending atomic.Uint64 // bytes written since the last flush started
	running atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error // the first background flush's failure
}

// wrote counts n bytes restored and starts a background flush when
// writebackEvery have been written since the last one started and none
// is running.
func (r *restore) wrote(n uint64) {
	w := &r.wb
	if r.opts.NoFsync || w.pending.Add(n) < writebackEvery || !w.running.CompareAndSwap(false, true) {
		return
	}
	w.pending.Store(0)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer w.running.Store(false)
		if err := syncFS(r.fs); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}()
}

// wait waits for a background flush still running and returns the first
// one's error.
func (w *writeback) wait() error {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// flush is the end-of-restore flush; a failure, its own or a background
// flush's, is an error, since what the restore reports done might not
// survive a crash.
func (r *restore) flush() error {
	if r.opts.NoFsync {
		return nil
	}
	bgErr := r.wb.wait()
	err := syncFS(r.fs)
	if bgErr != nil {
		err = bgErr
	}
	if err != nil {
		return fmt.Errorf("flush the restored files to disk: %w", err)
	}
	return nil
}
