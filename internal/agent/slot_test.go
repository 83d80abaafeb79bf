package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// fakeLeaser queues its first open twice, then grants "s1".
type fakeLeaser struct {
	mu    sync.Mutex
	beats chan string
	ended []string
}

func (f *fakeLeaser) OpenLease(ctx context.Context) (backend.Lease, error) {
	watch := backend.QueueWatcherFrom(ctx)
	watch(backend.QueueWait{Position: 2, Running: 1, Limit: 1})
	watch(backend.QueueWait{Position: 1, Running: 1, Limit: 1})
	return backend.Lease{ID: "s1", TTL: 300 * time.Millisecond}, nil
}

func (f *fakeLeaser) HeartbeatLease(ctx context.Context, id string) (backend.Lease, error) {
	select {
	case f.beats <- id:
	default:
	}
	return backend.Lease{ID: id, TTL: 300 * time.Millisecond}, nil
}

func (f *fakeLeaser) EndLease(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = append(f.ended, id)
	return nil
}

// TestHoldSession: the run's slot is opened through the queue (each new
// place logged), kept alive with heartbeats while held, and ended on release.
func TestHoldSession(t *testing.T) {
	f := &fakeLeaser{beats: make(chan string, 1)}
	var log []string
	id, release, err := HoldSession(context.Background(), f, func(format string, args ...any) { log = append(log, fmt.Sprintf(format, args...)) })
	if err != nil || id != "s1" {
		t.Fatalf("HoldSession: %q, %v", id, err)
	}
	if got := <-f.beats; got != "s1" {
		t.Fatalf("heartbeat of %q", got)
	}
	release()
	if len(f.ended) != 1 || f.ended[0] != "s1" {
		t.Fatalf("ended %v", f.ended)
	}
	text := strings.Join(log, "\n")
	for _, want := range []string{"place 2 in the queue", "place 1 in the queue", "got a backup slot"} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
}

// TestExecBackuperSession: a backup under a run's held session runs
// `cairn backup --session ID`.
func TestExecBackuperSession(t *testing.T) {
	e := &ExecBackuper{}
	args, _, err := e.Args(&Config{Repository: "/r"}, Backup{Paths: []string{"/x"}, Session: "0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(args, " "), "backup --session 0123456789abcdef0123456789abcdef") {
		t.Errorf("args %q", args)
	}
}
