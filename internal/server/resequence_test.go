package server

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestConcurrentCommitsResequence: two clients commit with one key through
// the server at once. The server refuses the one that lost the race with
// 409 bad-sequence; that client re-reads the chain and signs the next seq
// instead of retrying the same statement, so every commit is stored, each
// with its own seq.
func TestConcurrentCommitsResequence(t *testing.T) {
	ts := startTest(t, Options{MaxUpload: 64 << 20})
	ctx := context.Background()
	// Overlapping backups are what this test is about: no minimum
	// interval between snapshots.
	if err := ts.data.State.SetMinInterval(ctx, "bob", 0); err != nil {
		t.Fatal(err)
	}
	owner, be := ts.cairnClient("rs")
	cfg, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ts.url + "/bob/rs/")
	u.User = url.UserPassword("bob", pwBob)
	rb, err := rest.Open(ctx, rest.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	other, err := repository.OpenWithKeys(ctx, location.Decorate(rb, location.Options{}), owner.Keys(), "", cfg, repository.Options{CacheDir: t.TempDir(), Now: ts.nowFn})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 6
	var wg sync.WaitGroup
	seqs := make(chan uint64, 2*rounds)
	for i, r := range []*repository.Repository{owner, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range rounds {
				snap, err := commitErr(r, fmt.Sprintf("client %d round %d", i, j))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- snap.File.Statement.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Fatalf("seq %d committed twice", q)
		}
		seen[q] = true
	}
	if len(seen) != 2*rounds {
		t.Fatalf("%d distinct seqs, want %d", len(seen), 2*rounds)
	}
}
