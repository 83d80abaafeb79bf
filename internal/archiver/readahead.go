package archiver

import (
	"sync"
	"sync/atomic"

	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// dirListing is what the walk learns of a directory before descending:
// why it is skipped, or its sorted names and their captured nodes.
type dirListing struct {
	reason  string // not descended into: why (a virtual file system, …)
	skipErr error  // deciding whether to skip failed (descended anyway)
	readErr error  // opening or reading the directory failed
	names   []string
	nodes   []snapshot.Node
	errs    []error
}

// listDir reads the directory at path (captured as n).
func (a *archiver) listDir(path string, n snapshot.Node) *dirListing {
	l := &dirListing{}
	// A root the user named is always descended into; below it, virtual
	// and network file systems (and others, with --one-file-system) are not.
	if !a.isRoot(path) {
		l.reason, l.skipErr = a.filter.SkipDir(path, n)
	}
	if l.reason != "" {
		return l
	}
	d, err := fsmeta.OpenDir(path)
	if err != nil {
		l.readErr = err
		return l
	}
	defer d.Close()
	if l.names, err = d.Names(); err != nil {
		l.names, l.readErr = nil, err
		return l
	}
	l.nodes, l.errs = a.lstatAll(d, l.names)
	return l
}

// readAhead lists directories the walk is about to enter on other
// goroutines. The walk is depth-first and lists one directory at a time,
// each listing a few system calls per entry; on a backup where little
// changed, that is nearly all the work, so the walk waited on one
// directory's calls after another while cores sat idle. A directory's
// subdirectories are queued when the walk reads it; the walk takes a
// listing when it gets there, lists a directory itself when no goroutine
// has started on it, and never sees anything in another order.
type readAhead struct {
	a    *archiver
	sem  chan struct{} // concurrent listings
	mu   sync.Mutex
	m    map[string]*aheadDir // by path; started or done, not yet taken
	wg   sync.WaitGroup
	stop atomic.Bool
}

// aheadMax bounds the listings queued or held ahead of the walk.
const aheadMax = 64

type aheadDir struct {
	claimed atomic.Bool // a goroutine or the walk has started listing
	done    chan struct{}
	l       *dirListing
}

func newReadAhead(a *archiver, workers int) *readAhead {
	return &readAhead{a: a, sem: make(chan struct{}, workers), m: map[string]*aheadDir{}}
}

// queue starts listing the directory at path, unless aheadMax are ahead.
func (r *readAhead) queue(path string, n snapshot.Node) {
	r.mu.Lock()
	if len(r.m) >= aheadMax || r.m[path] != nil {
		r.mu.Unlock()
		return
	}
	d := &aheadDir{done: make(chan struct{})}
	r.m[path] = d
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.sem <- struct{}{}
		defer func() { <-r.sem }()
		if r.stop.Load() || !d.claimed.CompareAndSwap(false, true) {
			return // the walk took it, or ended
		}
		d.l = r.a.listDir(path, n)
		close(d.done)
	}()
}

// take returns the listing of the directory at path: queued and done, or
// waited for when started, or made now.
func (r *readAhead) take(path string, n snapshot.Node) *dirListing {
	r.mu.Lock()
	d := r.m[path]
	delete(r.m, path)
	r.mu.Unlock()
	if d == nil || d.claimed.CompareAndSwap(false, true) {
		return r.a.listDir(path, n)
	}
	<-d.done
	return d.l
}

// close stops queued listings that have not started and waits for the
// others.
func (r *readAhead) close() {
	r.stop.Store(true)
	r.wg.Wait()
}
