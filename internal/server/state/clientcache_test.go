package state

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Client answers from memory while nothing changed, and sees at once a
// change made through another handle on the same database (another
// process: `cairn server client disable` beside a running server) and
// through its own.
func TestClientCacheSeesEveryChange(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	srv, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddClient(ctx, Client{Name: "laptop", Hash: "h1", Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Client(ctx, "laptop")
	if err != nil || c.Hash != "h1" || c.Disabled {
		t.Fatalf("client %+v %v", c, err)
	}
	v, ok := srv.clients.current(ctx, srv.db)
	if !ok {
		t.Fatal("the cache has no data version")
	}
	if got, hit := srv.clients.get(v, "laptop"); !hit || got.Hash != "h1" {
		t.Fatalf("not cached after a read: %+v %v", got, hit)
	}

	cli, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.SetDisabled(ctx, "laptop", true); err != nil {
		t.Fatal(err)
	}
	if c, err := srv.Client(ctx, "laptop"); err != nil || !c.Disabled {
		t.Fatalf("disabled by another handle, read %+v %v", c, err)
	}
	if err := cli.SetHash(ctx, "laptop", "h2"); err != nil {
		t.Fatal(err)
	}
	if c, err := srv.Client(ctx, "laptop"); err != nil || c.Hash != "h2" {
		t.Fatalf("new password by another handle, read %+v %v", c, err)
	}
	if err := srv.SetDisabled(ctx, "laptop", false); err != nil {
		t.Fatal(err)
	}
	if c, err := srv.Client(ctx, "laptop"); err != nil || c.Disabled {
		t.Fatalf("enabled by the same handle, read %+v %v", c, err)
	}
	if err := cli.RemoveClient(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client(ctx, "laptop"); !errors.Is(err, ErrNoClient) {
		t.Fatalf("removed by another handle: %v", err)
	}
}

// A client read while the data version moved on is not kept under the
// old version.
func TestClientCacheDropsAReadOvertakenByAChange(t *testing.T) {
	var cc clientCache
	cc.version, cc.clients = 7, map[string]Client{}
	cc.put(6, Client{Name: "laptop"})
	if _, hit := cc.get(7, "laptop"); hit {
		t.Fatal("a read at an older version was kept")
	}
	cc.put(7, Client{Name: "laptop"})
	if _, hit := cc.get(7, "laptop"); !hit {
		t.Fatal("a read at the current version was not kept")
	}
	if _, hit := cc.get(8, "laptop"); hit {
		t.Fatal("answered for another version")
	}
}

// Under concurrent reads (which share version checks), a read that
// begins after a change committed sees it, whichever handle made it.
func TestClientCacheConcurrentReadsSeeChanges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	srv, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := srv.AddClient(ctx, Client{Name: "laptop", Hash: "h", Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	for range 4 { // readers all along, so checks are shared and queued
		bg.Add(1)
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := srv.Client(ctx, "laptop"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 100 {
		disabled := i%2 == 0
		if err := cli.SetDisabled(ctx, "laptop", disabled); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c, err := srv.Client(ctx, "laptop"); err != nil || c.Disabled != disabled {
					t.Errorf("round %d: read %+v %v after the change committed, want disabled %v", i, c, err, disabled)
				}
			}()
		}
		wg.Wait()
	}
	close(stop)
	bg.Wait()
}
