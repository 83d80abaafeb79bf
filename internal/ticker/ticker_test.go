package ticker

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEveryCallsUntilStopped(t *testing.T) {
	var n atomic.Int64
	stop := Every(time.Millisecond, func() { n.Add(1) })
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("fn was not called")
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	after := n.Load()
	time.Sleep(10 * time.Millisecond)
	if n.Load() != after {
		t.Fatal("fn called after stop returned")
	}
	Every(time.Millisecond, nil)() // a nil fn starts nothing and stops at once
}

func TestCounterReportsUntilStopped(t *testing.T) {
	var nilCounter *Counter
	nilCounter.Add(1, 1) // a nil Counter counts nothing and does not panic
	nilCounter.AddTotal(1, 1)
	nilCounter.Stop()
	if Start(nil) != nil {
		t.Fatal("Start(nil) made a Counter")
	}
	got := make(chan Counts, 100)
	c := Start(func(n Counts) {
		select {
		case got <- n:
		default:
		}
	})
	c.AddTotal(3, 300)
	c.Add(2, 200)
	n := <-got
	if n.Items != 2 || n.TotalItems != 3 || n.Bytes != 200 || n.TotalBytes != 300 {
		t.Fatalf("reported %+v", n)
	}
	c.Add(0, 50)
	c.Stop()
	c.Stop()
	// Stop reports the final counts once more.
	var last Counts
	for len(got) > 0 {
		last = <-got
	}
	if last.Bytes != 250 || !last.Final {
		t.Fatalf("last report %+v, want the final counts marked Final", last)
	}
	c.Add(1, 1)
	if n := c.Counts(); n.Items != 3 {
		t.Fatalf("Counts after Stop: %+v", n)
	}
}
