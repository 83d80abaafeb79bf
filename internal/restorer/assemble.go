package restorer

import (
	"bytes"
	"context"
	"strings"
	"sync"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/repository"
)

// Files of several blobs (and sparse files) are restored from the same
// pack reads as single-blob files: a batch's blobs are grouped by pack,
// and every blob a range read passes is handed to every file of the batch
// that needs it. A backup stores the blobs of large and small files
// interleaved, so reading a large file blob by blob read most of its blobs
// twice (once in a small file's range, thrown away, then alone) and cost
// a request each.
//
// The index knows a blob's sealed length, not its plaintext length, so
// where a blob goes in its file is known only once the blobs before it are
// written. An assembly writes the blobs that arrive in order straight into
// the file's temporary file and holds those that arrive ahead (their pack
// was read first) in memory until the written prefix reaches them. What it
// holds counts against a budget shared by the restore (holdBudget); a
// blob that does not fit is dropped, and once every pack read the file
// needed is done, the blobs from the first one not written are loaded one
// by one (finishAssembly). A blob that cannot be read in a pack read sends
// the file to restoreLarge whole, whose loss handling it then gets.

// holdBudget is how much plaintext the assemblies of a restore may hold
// for blobs that arrived before the blobs ahead of them in their files.
// Packs are read a few at a time in the order a batch first needs them,
// so what arrives early is usually a pack or two per worker: 64 MiB holds
// that with room, and bounds the memory of a tree whose large files are
// scattered over many packs; beyond it a blob costs one more request. A
// variable so a test can make it small.
var holdBudget int64 = 64 << 20

// assembly is a file of several blobs being written as its blobs arrive.
type assembly struct {
	job fileJob
	// pending counts the pack reads of the batch that deliver blobs to it
	// and have not ended: set while the batch is planned, then under mu.
	pending int

	mu   sync.Mutex
	f    *fsmeta.File // opened at the first blob written
	w    contentWriter
	next int            // index in job.node.Content of the first blob not written
	held map[int][]byte // blobs at indices after next, until next reaches them
	pos  map[blob.ID][]int
	// failed: a blob could not be read (the file goes to restoreLarge,
	// which is given the errors in lost rather than read those blobs
	// again); dead: the file could not be written (already reported), or
	// is done.
	failed, dead bool
	lost         map[blob.ID]error
}

func newAssembly(job fileJob) *assembly {
	a := &assembly{job: job, pos: map[blob.ID][]int{}}
	for i, id := range job.node.Content {
		a.pos[id] = append(a.pos[id], i)
	}
	return a
}

// reserve takes n bytes of the hold budget, or reports false.
func (r *restore) reserve(n int64) bool {
	if r.held.Add(n) > holdBudget {
		r.held.Add(-n)
		return false
	}
	return true
}

// deliver hands a's file the plaintext of blob id (valid only during the
// call), or the error it could not be read with.
func (r *restore) deliver(a *assembly, id blob.ID, plain []byte, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil && !a.dead {
		a.fail(r, id, err)
	}
	if a.failed || a.dead {
		return
	}
	var kept []byte // one copy for every index of id held
	for _, i := range a.pos[id] {
		switch {
		case i < a.next:
			// written already (a repeat of an earlier blob)
		case i == a.next:
			if !r.writeNext(a, plain) {
				return
			}
			if r.writeHeld(a); a.dead {
				return
			}
		case a.held[i] == nil:
			if !r.reserve(int64(len(plain))) {
				// Its pack was read anyway; the blob will be read again
				// on its own (finishAssembly).
				if r.opts.Log != nil {
					r.opts.Log.Debug("restore: blob arrived ahead of its file's written part and over the budget; it will be read again", "path", strings.Join(a.job.comps, "/"))
				}
				continue
			}
			if kept == nil {
				kept = bytes.Clone(plain)
				if kept == nil {
					kept = []byte{}
				}
			}
			if a.held == nil {
				a.held = map[int][]byte{}
			}
			a.held[i] = kept
		}
	}
}

// writeNext writes plain as a's blob at index next, opening its temporary
// file first if it is the first; it reports false when the file is dead.
func (r *restore) writeNext(a *assembly, plain []byte) bool {
	if a.f == nil {
		f, ok := r.createFile(a.job, true)
		if !ok {
			a.dead = true
			a.release(r)
			return false
		}
		a.f = f
		a.w = contentWriter{f: f, ext: a.job.node.Extents}
	}
	if err := a.w.write(plain); err != nil {
		r.finishFile(a.job, a.f, true, false, err)
		a.f = nil
		a.dead = true
		a.release(r)
		return false
	}
	a.next++
	return true
}

// writeHeld writes the held blobs the written prefix has reached.
func (r *restore) writeHeld(a *assembly) {
	for !a.dead {
		plain, ok := a.held[a.next]
		if !ok {
			return
		}
		delete(a.held, a.next)
		r.held.Add(-int64(len(plain)))
		r.writeNext(a, plain)
	}
}

// fail records that blob id of a's file could not be read: the file
// will be restored by restoreLarge.
func (a *assembly) fail(r *restore, id blob.ID, err error) {
	if a.lost == nil {
		a.lost = map[blob.ID]error{}
	}
	a.lost[id] = err
	a.failed = true
	a.release(r)
}

// release gives back what a holds, and removes its temporary file if it
// has one.
func (a *assembly) release(r *restore) {
	for i, plain := range a.held {
		r.held.Add(-int64(len(plain)))
		delete(a.held, i)
	}
	if a.f != nil {
		a.f.Close() // removes the temporary file
		a.f = nil
	}
}

// packDone is called by each pack read that delivered to a when it ends;
// the last one finishes the file.
func (r *restore) packDone(ctx context.Context, a *assembly) {
	a.mu.Lock()
	a.pending--
	last := a.pending == 0
	a.mu.Unlock()
	if last {
		r.finishAssembly(ctx, a)
	}
}

// finishAssembly completes a's file once no pack read will deliver to it:
// the blobs from the first one not written are taken from what is held or
// loaded in order, and the file is verified, given its metadata and put
// in place. A file a blob of which could not be read, in the pack reads or
// here, is restored again by restoreLarge.
func (r *restore) finishAssembly(ctx context.Context, a *assembly) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ctx.Err() != nil {
		a.dead = true
		a.release(r)
		return
	}
	if a.dead {
		return
	}
	content := a.job.node.Content
	if !a.failed && a.next < len(content) {
		bufs := r.getBufs()
		defer r.bufs.Put(bufs)
		for a.next < len(content) && !a.dead {
			if plain, ok := a.held[a.next]; ok {
				delete(a.held, a.next)
				r.held.Add(-int64(len(plain)))
				r.writeNext(a, plain)
				continue
			}
			plain, err := r.repo.LoadBlobInto(ctx, blob.Data, content[a.next], bufs)
			if err != nil {
				if ctx.Err() != nil {
					a.dead = true
					a.release(r)
					return
				}
				a.fail(r, content[a.next], err)
				break
			}
			r.writeNext(a, plain)
		}
	}
	if a.dead {
		return
	}
	if a.failed {
		a.dead = true
		r.restoreLarge(ctx, a.job, a.lost)
		return
	}
	a.dead = true
	r.finishFile(a.job, a.f, true, false, nil)
	a.f = nil
}

// getBufs takes blob buffers from the restore's pool.
func (r *restore) getBufs() *repository.BlobBuffers {
	bufs, _ := r.bufs.Get().(*repository.BlobBuffers)
	if bufs == nil {
		bufs = new(repository.BlobBuffers)
	}
	return bufs
}
