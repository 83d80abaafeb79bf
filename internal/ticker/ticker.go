// Package ticker runs a function at a fixed interval in its own goroutine
// until stopped: the progress reports of long work (backup, restore). A
// Counter is the counters such work updates and the report of them.
package ticker

import "time"

// Every calls fn every d until the returned stop function is called; stop
// waits until fn is no longer running. A nil fn starts nothing.
func Every(d time.Duration, fn func()) (stop func()) {
	if fn == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return func() { close(quit); <-done }
}
