package agent

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// stuckClock's sleeps never end by themselves: no scheduled slot comes.
type stuckClock struct{ t time.Time }

func (c stuckClock) Now() time.Time { return c.t }
func (c stuckClock) Sleep(ctx context.Context, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

// syncBuffer is a log the poller and the runner write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeRunsWhenAsked: a daemon whose slot never comes runs once when
// the server asks, and not again once its report cleared the request.
func TestServeRunsWhenAsked(t *testing.T) {
	c := testConfig(t, "")
	clock := stuckClock{time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a bound if it never runs
	defer cancel()
	var pending atomic.Bool
	pending.Store(true)
	var afterReport atomic.Int32
	fb := &fakeBackuper{clock: clock}
	var log syncBuffer
	r := &Runner{Config: c, Backuper: fb, Clock: clock, Log: &log, PollEvery: 5 * time.Millisecond,
		Poll: func(context.Context) (bool, error) {
			if !pending.Load() && afterReport.Add(1) == 5 {
				cancel() // five polls after the report, no second run
			}
			return pending.Load(), nil
		},
		Report: func(context.Context, restapi.AgentReport) error { pending.Store(false); return nil },
	}
	if err := r.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	if len(fb.calls) != 1 {
		t.Fatalf("%d runs, want 1\n%s", len(fb.calls), log.String())
	}
	if !strings.Contains(log.String(), "the server asks for a run now") {
		t.Errorf("log:\n%s", log.String())
	}
}
