package repository

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeSpool records what reaches it; a write after failAfter bytes fails,
// and block, while open, holds every write.
type fakeSpool struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	failAfter int
	block     chan struct{}
	saved     bool
	discarded bool
}

func (f *fakeSpool) Write(p []byte) (int, error) {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAfter > 0 && f.buf.Len()+len(p) > f.failAfter {
		return 0, errors.New("disk full")
	}
	return f.buf.Write(p)
}
func (f *fakeSpool) Size() int64 { f.mu.Lock(); defer f.mu.Unlock(); return int64(f.buf.Len()) }
func (f *fakeSpool) Save(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saved = true
	return "name", nil
}
func (f *fakeSpool) Discard() { f.mu.Lock(); defer f.mu.Unlock(); f.discarded = true }

// TestQueuedSpoolOrder: what is written arrives whole and in order before
// Save, and the writer's buffers may be reused as soon as Write returns.
func TestQueuedSpoolOrder(t *testing.T) {
	f := &fakeSpool{}
	q := newQueuedSpool(f, NewBufferList(0, spoolQueue+1))
	var want bytes.Buffer
	p := make([]byte, 1000)
	for i := range 500 {
		for j := range p {
			p[j] = byte(i + j)
		}
		want.Write(p)
		if _, err := q.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if q.Size() != int64(want.Len()) {
		t.Fatalf("size %d, wrote %d", q.Size(), want.Len())
	}
	if _, err := q.Save(context.Background()); err != nil || !f.saved {
		t.Fatalf("save: %v (saved %v)", err, f.saved)
	}
	if !bytes.Equal(f.buf.Bytes(), want.Bytes()) {
		t.Fatal("the spool got other bytes than were written")
	}
	if _, err := q.Write(p); err == nil {
		t.Fatal("write after Save succeeded")
	}
}

// TestQueuedSpoolError: a failed write comes back from a later Write or
// from Save, and the spool is discarded, not saved.
func TestQueuedSpoolError(t *testing.T) {
	f := &fakeSpool{failAfter: 2500}
	q := newQueuedSpool(f, NewBufferList(0, spoolQueue+1))
	for range 3 {
		q.Write(make([]byte, 1000)) // the third fails in the background
	}
	if _, err := q.Save(context.Background()); err == nil || f.saved || !f.discarded {
		t.Fatalf("save after a failed write: %v (saved %v, discarded %v)", err, f.saved, f.discarded)
	}
}

// TestQueuedSpoolDecouples: while the file blocks, a writer can still queue
// a few blobs and go on; Discard drains and discards.
func TestQueuedSpoolDecouples(t *testing.T) {
	f := &fakeSpool{block: make(chan struct{})}
	q := newQueuedSpool(f, NewBufferList(0, spoolQueue+1))
	done := make(chan struct{})
	go func() {
		for range spoolQueue {
			q.Write([]byte("blob"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("writes blocked behind a blocked file")
	}
	close(f.block)
	q.Discard()
	if !f.discarded || f.saved {
		t.Fatalf("discard: discarded %v, saved %v", f.discarded, f.saved)
	}
}

// TestQueuedSpoolGive: a buffer given for the next write is queued as it
// is, not copied, and goes back to its own list once written; a write of
// other bytes is copied and leaves the given buffer with its giver, and so
// does a write the spool refuses.
func TestQueuedSpoolGive(t *testing.T) {
	f := &fakeSpool{block: make(chan struct{})}
	home := NewBufferList(0, 4)
	q := newQueuedSpool(f, NewBufferList(0, spoolQueue+1))
	b := []byte("sealed blob")
	bp := &b
	q.give(bp, home)
	if _, err := q.Write(b); err != nil || !q.taken() {
		t.Fatalf("the given buffer was not taken: %v", err)
	}
	other := []byte("other bytes")
	q.give(&other, home)
	if _, err := q.Write([]byte("a header")); err != nil || q.taken() {
		t.Fatalf("a write of other bytes took the given buffer: %v", err)
	}
	close(f.block)
	if _, err := q.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.buf.String(); got != "sealed bloba header" {
		t.Fatalf("spool got %q", got)
	}
	if back := home.Get(); back != bp || len(*back) != 0 {
		t.Fatalf("the given buffer did not come back to its list emptied: %p %q, want %p", back, *back, bp)
	}
	q.give(&other, home)
	if _, err := q.Write(other); err == nil || q.taken() {
		t.Fatalf("a finished spool took the given buffer: %v", err)
	}
}
