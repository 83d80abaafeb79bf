package tenant

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestUsageMeasuresWithoutBlockingOthers: while one client's storage is
// being measured, another client's reservations go on; the first
// client's callers share its measurement, and a Remeasure during it makes
// them measure again.
func TestUsageMeasuresWithoutBlockingOthers(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var slowWalks atomic.Int32
	u := NewUsage(func(ctx context.Context, client string) (int64, error) {
		if client != "slow" {
			return 10, nil
		}
		if slowWalks.Add(1) == 1 {
			close(entered)
			<-release
			return 100, nil // measured before the Remeasure below: not kept
		}
		return 200, nil
	})
	got := make(chan int64, 2)
	for range 2 {
		go func() {
			n, err := u.Get("slow")
			if err != nil {
				t.Error(err)
			}
			got <- n
		}()
	}
	<-entered
	done := make(chan struct{})
	go func() {
		defer close(done)
		if cur, ok, err := u.Reserve("fast", 5, 100); err != nil || !ok || cur != 10 {
			t.Errorf("Reserve(fast) = %d, %v, %v; want 10, true, nil", cur, ok, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("another client's reservation waited for a measurement of slow")
	}
	u.Remeasure("slow")
	close(release)
	for range 2 {
		if n := <-got; n != 200 {
			t.Errorf("Get(slow) = %d, want 200 (the measurement after Remeasure)", n)
		}
	}
	if n := slowWalks.Load(); n != 2 {
		t.Errorf("slow measured %d times, want 2 (once before Remeasure, shared after)", n)
	}
	if cur, ok, _ := u.Reserve("fast", 90, 100); ok || cur != 15 {
		t.Errorf("Reserve over quota = %d, %v; want 15, false", cur, ok)
	}
}
