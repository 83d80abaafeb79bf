package repohttp

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// CodeSlowBody is the X-Cairn-Error code of a body that arrived too
// slowly.
const CodeSlowBody = restapi.CodeSlowBody

// ErrSlowBody is a body read that missed its deadline.
var ErrSlowBody = errors.New("the upload body arrived too slowly")

// BodyLimit wraps a request body: before each read it sets the
// connection's read deadline so that the body as a whole must arrive at
// minRate bytes per second after a grace period, and no single read may
// wait longer than idle. At EOF it clears the deadline, so the rest of the
// request (validation, storing) runs without one.
type BodyLimit struct {
	rd    io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	idle  time.Duration
	rate  int64

	mu   sync.Mutex
	n    int64
	done bool // EOF or error: deadlines no longer set
}

func NewBodyLimit(w http.ResponseWriter, r *http.Request, grace, idle time.Duration, rate int64) *BodyLimit {
	b := &BodyLimit{rd: r.Body, rc: http.NewResponseController(w), start: time.Now(), grace: grace, idle: idle, rate: rate}
	// Until the handler reads, the whole grace period: it bounds also the
	// server's own discarding of an unread body after a refusal.
	b.rc.SetReadDeadline(b.start.Add(grace))
	return b
}

// deadline is when a read asking for more bytes must have ended.
func (b *BodyLimit) deadline(now time.Time, more int) time.Time {
	d := b.start.Add(b.grace + time.Duration(float64(b.n+int64(more))/float64(b.rate)*float64(time.Second)))
	if idle := now.Add(b.idle); idle.Before(d) {
		d = idle
	}
	return d
}

func (b *BodyLimit) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.done {
		b.rc.SetReadDeadline(b.deadline(time.Now(), len(p)))
	}
	b.mu.Unlock()
	n, err := b.rd.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if !b.done {
			b.done = true
			b.rc.SetReadDeadline(time.Time{})
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.done = true
		err = ErrSlowBody
	default:
		b.done = true
	}
	return n, err
}

func (b *BodyLimit) Close() error { return b.rd.Close() }

// Abandon ends the body's reads at once: the server is answering without
// reading (the rest of) it, and the connection closes rather than wait
// for bytes nobody needs.
func (b *BodyLimit) Abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Now())
	}
}

// Finished reports whether the body was read to its end.
func (b *BodyLimit) Finished() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}
