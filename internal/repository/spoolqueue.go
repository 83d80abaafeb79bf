package repository

import (
	"context"
	"errors"
	"sync"

	"github.com/cairnbackup/cairn/internal/backend"
)

// queuedSpool writes to a file spool from its own goroutine: a sealer adds
// a blob to the open pack under the session's lock, and write(2) into the
// page cache can block for a long time when the kernel throttles dirty
// pages, which would stall every sealer. Write only copies the bytes into
// a queue of at most spoolQueue buffers, or queues the caller's own buffer
// when it gave it away for that write (give); errors are sticky and come
// back from a later Write, or from Save.
type queuedSpool struct {
	sp   backend.Spool
	ch   chan queuedBuf
	done chan struct{}
	bufs *BufferList

	mu     sync.Mutex
	err    error // the first write error
	n      int64
	closed bool
	given  queuedBuf // for the next Write, if it writes exactly *given.b
}

// queuedBuf is a buffer in the queue and the list it goes back to once
// written.
type queuedBuf struct {
	b    *[]byte
	home *BufferList
}

// spoolQueue bounds the blobs waiting to be written per open pack: with
// chunks of at most 4 MiB that is at most 32 MiB, and mostly far less.
const spoolQueue = 8

func newQueuedSpool(sp backend.Spool, bufs *BufferList) *queuedSpool {
	q := &queuedSpool{sp: sp, ch: make(chan queuedBuf, spoolQueue), done: make(chan struct{}), bufs: bufs}
	go q.run()
	return q
}

func (q *queuedSpool) run() {
	defer close(q.done)
	for qb := range q.ch {
		q.mu.Lock()
		failed := q.err != nil
		q.mu.Unlock()
		if !failed {
			if _, err := q.sp.Write(*qb.b); err != nil {
				q.mu.Lock()
				q.err = err
				q.mu.Unlock()
			}
		}
		*qb.b = (*qb.b)[:0]
		qb.home.Put(qb.b)
	}
}

// give hands *b, a sealed blob, to the spool for the next Write, which
// writes exactly its bytes (the pack writer adding it): that Write queues
// b itself, not a copy, and b goes back to home once written. taken
// reports whether it did; the caller keeps b when not (the pack writer
// had failed and wrote nothing).
func (q *queuedSpool) give(b *[]byte, home *BufferList) {
	q.mu.Lock()
	q.given = queuedBuf{b, home}
	q.mu.Unlock()
}

// taken reports whether the buffer last given was queued, and forgets it.
func (q *queuedSpool) taken() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	left := q.given.b != nil
	q.given = queuedBuf{}
	return !left
}

func (q *queuedSpool) Write(p []byte) (int, error) {
	q.mu.Lock()
	err, closed, given := q.err, q.closed, q.given
	if given.b != nil && len(p) > 0 && len(*given.b) == len(p) && &(*given.b)[0] == &p[0] {
		q.given = queuedBuf{}
	} else {
		given = queuedBuf{}
	}
	q.n += int64(len(p))
	q.mu.Unlock()
	if closed || err != nil {
		if given.b != nil { // not queued: the giver keeps it
			q.mu.Lock()
			q.given = given
			q.mu.Unlock()
		}
		if closed {
			return 0, errors.New("write to a finished spool")
		}
		return 0, err
	}
	if given.b == nil {
		b := q.bufs.Get()
		*b = append((*b)[:0], p...)
		given = queuedBuf{b, q.bufs}
	}
	q.ch <- given
	return len(p), nil
}

func (q *queuedSpool) Size() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// finish stops taking writes and waits for the queue to drain.
func (q *queuedSpool) finish() error {
	q.mu.Lock()
	already := q.closed
	q.closed = true
	q.mu.Unlock()
	if !already {
		close(q.ch)
	}
	<-q.done
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

func (q *queuedSpool) Save(ctx context.Context) (string, error) {
	if err := q.finish(); err != nil {
		q.sp.Discard()
		return "", err
	}
	return q.sp.Save(ctx)
}

func (q *queuedSpool) Discard() {
	q.finish()
	q.sp.Discard()
}
