package closure

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/replicate"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func commit(t *testing.T, r *repository.Repository, contents ...string) string {
	t.Helper()
	ctx := context.Background()
	s, err := r.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var refs []snapshot.Ref
	var root blob.ID
	for _, c := range contents {
		id, _, err := s.SaveBlob(ctx, blob.Data, []byte(c))
		if err != nil {
			t.Fatal(err)
		}
		refs, root = append(refs, snapshot.Ref{Type: blob.Data, ID: id}), id
	}
	sn, err := s.Commit(ctx, repository.CommitInput{Root: root, Refs: snapshot.SortRefs(refs), Time: r.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return sn.ID.String()
}

func names(t *testing.T, be backend.Backend, typ backend.FileType) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if err := be.List(context.Background(), typ, func(fi backend.FileInfo) error {
		out[fi.Name] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClosureKeepsWhatTheReplicaKeeps: a snapshot the replica forgot is
// not copied again while the primary still has it; a later snapshot that
// needs a pack the replica pruned brings that pack back, and its blob
// loads from the replica.
func TestClosureKeepsWhatTheReplicaKeeps(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	opts := repository.Options{KDF: &crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}, CacheDir: t.TempDir()}
	primBe, repBe := mem.New(), mem.New()
	prim, err := repository.Init(ctx, primBe, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	sync := func() replicate.Stats {
		t.Helper()
		var rep *repository.Repository
		if _, err := repBe.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"}); err == nil {
			if rep, err = repository.Open(ctx, repBe, []byte("pw"), repository.Options{CacheDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
		}
		want, err := Want(ctx, log, prim, primBe, rep, repBe, prim.ManifestRefs)
		if err != nil {
			t.Fatal(err)
		}
		st, err := replicate.Sync(ctx, primBe, repBe, replicate.Options{SpoolDir: t.TempDir(), Want: want})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	s1 := commit(t, prim, "only in the first")
	sync()
	s2 := commit(t, prim, "in the second")
	if st := sync(); st.Snapshots != 1 {
		t.Fatalf("second pass copied %d snapshots", st.Snapshots)
	}

	// The replica's own retention forgets the first and prunes its pack.
	rep, err := repository.Open(ctx, repBe, []byte("pw"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	snaps, _, _ := rep.Snapshots(ctx)
	for _, s := range snaps {
		if s.ID.String() == s1 {
			if err := rep.ForgetSnapshot(ctx, s, "replica retention"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := prune.Run(ctx, rep, prune.Options{Grace: 0}); err != nil {
		t.Fatal(err)
	}
	packsAfterPrune := len(names(t, repBe, backend.Data))
	if rep, err = repository.Open(ctx, repBe, []byte("pw"), repository.Options{CacheDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := rep.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rep.LoadBlob(ctx, blob.Data, rep.BlobID(blob.Data, []byte("only in the first"))); err == nil {
		t.Fatal("the replica's prune kept the first snapshot's blob")
	}

	// Reconciliation: the first snapshot stays forgotten; nothing comes back.
	if st := sync(); st.Copied != 0 || st.Missing != 0 {
		t.Fatalf("reconciliation after the replica's prune: %+v", st)
	}
	if got := names(t, repBe, backend.Snapshots); len(got) != 1 || !got[s2] {
		t.Fatalf("replica snapshots %v, want only the second", got)
	}

	// A third snapshot reuses the first one's blob: its pack comes back.
	s3 := commit(t, prim, "only in the first", "in the third")
	sync()
	if got := names(t, repBe, backend.Snapshots); len(got) != 2 || !got[s2] || !got[s3] || got[s1] {
		t.Fatalf("replica snapshots %v, want the second and third", got)
	}
	if n := len(names(t, repBe, backend.Data)); n <= packsAfterPrune {
		t.Fatalf("%d packs on the replica after the third snapshot, %d before: the pruned pack did not come back", n, packsAfterPrune)
	}
	rep, err = repository.Open(ctx, repBe, []byte("pw"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	id := rep.BlobID(blob.Data, []byte("only in the first"))
	if b, err := rep.LoadBlob(ctx, blob.Data, id); err != nil || string(b) != "only in the first" {
		t.Fatalf("the reused blob from the replica: %q, %v", b, err)
	}
}

// TestClosureCachesManifests: a second pass over a primary whose
// snapshots did not change reads no manifest; a new snapshot's is read
// once; the cache stays within its bound, dropping the least recently
// used snapshot.
func TestClosureCachesManifests(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	opts := repository.Options{KDF: &crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}, CacheDir: t.TempDir()}
	primBe, repBe := mem.New(), mem.New()
	prim, err := repository.Init(ctx, primBe, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	cache := NewCache(MaxCachedRefs)
	var reads atomic.Int64
	pass := func() {
		t.Helper()
		var rep *repository.Repository
		if _, err := repBe.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"}); err == nil {
			if rep, err = repository.Open(ctx, repBe, []byte("pw"), repository.Options{CacheDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
		}
		read := func(ctx context.Context, s *repository.Snapshot) ([]snapshot.Ref, error) {
			reads.Add(1)
			return prim.ManifestRefs(ctx, s)
		}
		want, err := Want(ctx, log, prim, primBe, rep, repBe, cache.Refs("bob/laptop", read))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := replicate.Sync(ctx, primBe, repBe, replicate.Options{SpoolDir: t.TempDir(), Want: want}); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, prim, "a", "b")
	commit(t, prim, "c")
	pass()
	if n := reads.Load(); n != 2 {
		t.Fatalf("first pass read %d manifests, want 2", n)
	}
	reads.Store(0)
	pass()
	if n := reads.Load(); n != 0 {
		t.Fatalf("second pass over unchanged snapshots read %d manifests", n)
	}
	commit(t, prim, "d")
	pass()
	if n := reads.Load(); n != 1 {
		t.Fatalf("a pass after one new snapshot read %d manifests, want 1", n)
	}
	if got := names(t, repBe, backend.Snapshots); len(got) != 3 {
		t.Fatalf("replica holds %d snapshots, want 3", len(got))
	}

	// The bound: room for two refs; a third evicts the least recently used.
	small := NewCache(2)
	small.put(manifestKey{"r", "1"}, []snapshot.Ref{{ID: blob.ID{1}}})
	small.put(manifestKey{"r", "2"}, []snapshot.Ref{{ID: blob.ID{2}}})
	small.get(manifestKey{"r", "1"})
	small.put(manifestKey{"r", "3"}, []snapshot.Ref{{ID: blob.ID{3}}})
	if _, ok := small.get(manifestKey{"r", "2"}); ok || small.len() != 2 {
		t.Fatalf("after a third entry: %d cached, the least recently used kept: %v", small.len(), ok)
	}
	if _, ok := small.get(manifestKey{"r", "1"}); !ok {
		t.Fatal("the recently used entry was evicted")
	}
}

// TestManifestCacheReadsOnceForConcurrentPasses: workers that want the
// same manifest at once (several destinations after one commit) wait for
// one read; a failed read is not cached.
func TestManifestCacheReadsOnceForConcurrentPasses(t *testing.T) {
	c := NewCache(MaxCachedRefs)
	var reads atomic.Int64
	release := make(chan struct{})
	load := func(ctx context.Context, s *repository.Snapshot) ([]snapshot.Ref, error) {
		reads.Add(1)
		<-release
		return []snapshot.Ref{{ID: blob.ID{2}}, {ID: blob.ID{1}}}, nil
	}
	snap := &repository.Snapshot{ID: blob.ID{9}}
	var wg sync.WaitGroup
	got := make([][]snapshot.Ref, 3)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refs, err := c.Refs("bob/laptop", load)(context.Background(), snap)
			if err != nil {
				t.Error(err)
			}
			got[i] = refs
		}()
	}
	// The first read blocks until released; the others find it in flight
	// or, if they come later, in the cache: one read either way.
	for reads.Load() == 0 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := reads.Load(); n != 1 || c.len() != 1 {
		t.Fatalf("%d reads for three concurrent passes", n)
	}
	for _, refs := range got {
		if len(refs) != 2 || refs[0].ID != (blob.ID{1}) {
			t.Fatalf("refs %v, want two, sorted", refs)
		}
	}
	failing := func(context.Context, *repository.Snapshot) ([]snapshot.Ref, error) {
		return nil, errors.New("unreadable")
	}
	other := &repository.Snapshot{ID: blob.ID{8}}
	if _, err := c.Refs("bob/laptop", failing)(context.Background(), other); err == nil {
		t.Fatal("a failed read succeeded")
	}
	if _, ok := c.get(manifestKey{"bob/laptop", other.ID.String()}); ok {
		t.Fatal("a failed read was cached")
	}
}
