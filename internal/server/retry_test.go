package server

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// TestConcurrentIdenticalCommits (R22): two uploads of the same snapshot
// (a commit retried while the first attempt was still in flight) that
// both find no file before waiting for the repository's locks both get
// 200, and one snapshot file is stored. Without an interval the second
// would fail the sequence check (409), with one the interval check (429).
func TestConcurrentIdenticalCommits(t *testing.T) {
	ts := startTest(t, Options{MaxUpload: 1 << 20})
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"nointerval", 0}, {"interval", time.Hour}} {
		name, interval := tc.name, tc.interval
		if err := ts.data.State.SetMinInterval(ctx, "bob", interval); err != nil {
			t.Fatal(err)
		}
		ts.advance(2 * time.Hour)
		repo, be := ts.cairnClient(name)
		blind, pb := blindClient(t, repo)
		commit(t, blind, "content of "+name)
		before := strings.Count(ts.logs.String(), "identical upload meanwhile")

		// Hold the repository's coordination, as a commit in progress
		// does, so both uploads pass the first existence check and then
		// queue for the locks.
		_, release, err := ts.srv.Coordinate(ctx, "bob/"+name)
		if err != nil {
			t.Fatal(err)
		}
		defer release() // if the test fails before it lets the uploads go
		var wg sync.WaitGroup
		var status [2]int
		var msg [2]string
		for i := range status {
			wg.Go(func() {
				var code string
				status[i], code, msg[i] = ts.put(name, backend.Snapshots, pb.snap)
				msg[i] = code + " " + msg[i]
			})
		}
		waitFor(t, "two uploads waiting for the repository's coordination", func() bool { return waitingToCoordinate() >= 2 })
		release()
		wg.Wait()
		for i := range status {
			if status[i] != 200 {
				t.Fatalf("interval %v: upload %d: %d %s", interval, i, status[i], msg[i])
			}
		}
		if n := count(t, be, backend.Snapshots); n != 1 {
			t.Fatalf("interval %v: %d snapshot files, want 1", interval, n)
		}
		if n := strings.Count(ts.logs.String(), "identical upload meanwhile") - before; n != 1 {
			t.Fatalf("interval %v: the second upload was answered by the re-check %d times, want 1 (did both requests reach the lock?)", interval, n)
		}
	}
}

// waitingToCoordinate counts the goroutines of this process waiting in
// Coordinate: requests queued for a repository's coordination.
func waitingToCoordinate() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "coord.(*Coordinator).CoordinateWithin(")
		}
		buf = make([]byte, 2*len(buf))
	}
}
