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
// a queue of at most spoolQueue buffers; errors are sticky and come back
// from a later Write, or from Save.
type queuedSpool struct {
	sp   backend.Spool
	ch   chan *[]byte
	done chan struct{}
	bufs *BufferList

	mu     sync.Mutex
	err    error // the first write error
	n      int64
	closed bool
}

// spoolQueue bounds the blobs waiting to be written per open pack: with
// chunks of at most 4 MiB that is at most 32 MiB, and mostly far less.
const spoolQueue = 8

func newQueuedSpool(sp backend.Spool, bufs *BufferList) *queuedSpool {
	q := &queuedSpool{sp: sp, ch: make(chan *[]byte, spoolQueue), done: make(chan struct{}), bufs: bufs}
	go q.run()
	return q
}

func (q *queuedSpool) run() {
	defer close(q.done)
	for b := range q.ch {
		q.mu.Lock()
		failed := q.err != nil
		q.mu.Unlock()
		if !failed {
			if _, err := q.sp.Write(*b); err != nil {
				q.mu.Lock()
				q.err = err
				q.mu.Unlock()
			}
		}
		*b = (*b)[:0]
		q.bufs.Put(b)
	}
}

func (q *queuedSpool) Write(p []byte) (int, error) {
	q.mu.Lock()
	err, closed := q.err, q.closed
	q.n += int64(len(p))
	q.mu.Unlock()
	if closed {
		return 0, errors.New("write to a finished spool")
	}
	if err != nil {
		return 0, err
	}
	b := q.bufs.Get()
	*b = append((*b)[:0], p...)
	q.ch <- b
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
