package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSleep: a sleep lasts its duration; a done context ends it at once
// with the context's error, also one that ends mid-sleep; a sleep of
// nothing returns at once.
func TestSleep(t *testing.T) {
	start := time.Now()
	if err := Sleep(context.Background(), 20*time.Millisecond); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("Sleep 20ms: %v after %v", err, time.Since(start))
	}

	done, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	if err := Sleep(done, time.Hour); !errors.Is(err, context.Canceled) || time.Since(start) > time.Minute {
		t.Fatalf("Sleep on a done context: %v after %v", err, time.Since(start))
	}
	if err := Sleep(done, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep 0 on a done context: %v", err)
	}
	if err := Sleep(context.Background(), -time.Second); err != nil {
		t.Fatalf("Sleep of a negative duration: %v", err)
	}

	mid, cancelMid := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Sleep(mid, time.Hour) }()
	cancelMid()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep whose context ends: %v", err)
	}
}
