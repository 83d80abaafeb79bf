package repository_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestConcurrentCommitsNeverFork: several processes' worth of repository
// handles, sharing one cache directory or not, commit with one key at
// once. Every commit succeeds, the seqs are 1…n without a repeat, and
// check finds no fork.
func TestConcurrentCommitsNeverFork(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	owner, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &quickKDF, CacheDir: shared})
	if err != nil {
		t.Fatal(err)
	}
	const handles, rounds = 4, 4
	var wg sync.WaitGroup
	seqs := make(chan uint64, handles*rounds)
	for h := range handles {
		cache := shared
		if h%2 == 1 {
			cache = t.TempDir()
		}
		// Each handle opens its own backend, as another process would.
		hbe, err := local.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		r, err := repository.Open(ctx, slowSnapshots{hbe}, []byte("pw"), repository.Options{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				s := commitOne(t, r, fmt.Sprintf("handle %d round %d", h, i))
				seqs <- s.File.Statement.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Errorf("seq %d committed twice", q)
		}
		seen[q] = true
	}
	for q := uint64(1); q <= handles*rounds; q++ {
		if !seen[q] {
			t.Errorf("seq %d missing", q)
		}
	}
	rep, err := checker.Check(ctx, owner, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("check: %s", p)
	}
}

// slowSnapshots widens the window between reading a chain's head and
// storing the snapshot that follows it, where two commits race.
type slowSnapshots struct{ backend.Backend }

func (b slowSnapshots) Save(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
	if h.Type == backend.Snapshots {
		time.Sleep(20 * time.Millisecond)
	}
	return b.Backend.Save(ctx, h, rd)
}

func (b slowSnapshots) Unwrap() backend.Backend { return b.Backend }

// TestAbandonedClaimTakenOver: a commit that claimed a seq and died
// before storing its snapshot holds the next commit up only until the
// claim is stale; a fresh claim makes the commit fail, saying why.
func TestAbandonedClaimTakenOver(t *testing.T) {
	ctx := context.Background()
	be, err := local.Create(ctx, filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &quickKDF, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	commitOne(t, r, "one")
	if err := r.ClaimSeq(2); err != nil { // a commit that died after its claim
		t.Fatal(err)
	}
	restore := repository.SetClaimTimes(200*time.Millisecond, time.Hour)
	s, err := r.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Commit(ctx, repository.CommitInput{Time: r.Now()})
	s.Abort()
	restore()
	if err == nil || !errors.Is(err, context.Canceled) && !containsAll(err.Error(), "seq 2", "claimed") {
		t.Fatalf("commit behind a fresh claim: got %v, want a refusal naming the claim", err)
	}
	defer repository.SetClaimTimes(200*time.Millisecond, 0)()
	if got := commitOne(t, r, "two").File.Statement.Seq; got != 2 {
		t.Fatalf("commit after the claim went stale has seq %d, want 2", got)
	}
	n := 0
	be.List(ctx, backend.Claims, func(backend.FileInfo) error { n++; return nil })
	if n != 2 {
		t.Fatalf("%d claims stored, want 2", n)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
