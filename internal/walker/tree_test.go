package walker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

var walkTestKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

// slowBackend delays each pack load (honouring ctx) and counts them.
type slowBackend struct {
	backend.Backend
	delay time.Duration

	mu                       sync.Mutex
	started, active, maxLive int
	loaded                   func(h backend.Handle, offset int64) // after each pack load
}

func (b *slowBackend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if h.Type != backend.Data {
		return b.Backend.Load(ctx, h, length, offset, fn)
	}
	b.mu.Lock()
	b.started++
	b.active++
	b.maxLive = max(b.maxLive, b.active)
	loaded := b.loaded
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.active--
		b.mu.Unlock()
		if loaded != nil {
			loaded(h, offset)
		}
	}()
	if b.delay > 0 {
		select {
		case <-time.After(b.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.Backend.Load(ctx, h, length, offset, fn)
}

func (b *slowBackend) reset() {
	b.mu.Lock()
	b.started, b.maxLive = 0, 0
	b.mu.Unlock()
}

func (b *slowBackend) counts() (started, maxLive int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started, b.maxLive
}

type walkFixture struct {
	mem  *mem.Backend
	be   *slowBackend
	repo *repository.Repository // over be
	src  blob.ID                // the backed-up directory: ~350 trees at depths 0-4
	dup  blob.ID                // a/, b/inner/, c/: src three times
}

// newWalkFixture backs up a tree with a few hundred directories at four
// levels (with empty directories, which share one tree ID), then stores
// a root whose subtrees repeat the whole backed-up tree.
func newWalkFixture(t *testing.T) *walkFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for a := range 6 {
		for b := range 8 {
			for c := range 5 {
				write(fmt.Sprintf("d%d/s%d/l%d/f.txt", a, b, c), fmt.Sprintf("leaf %d %d %d", a, b, c))
			}
			write(fmt.Sprintf("d%d/s%d/g.txt", a, b), "same content")
			if err := os.Mkdir(filepath.Join(dir, fmt.Sprintf("d%d/s%d/empty", a, b)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		write(fmt.Sprintf("d%d/z.txt", a), "z")
	}
	write("d1/skipme/inner/deep/x.txt", "under a damaged tree")
	write("d1/skipme/y.txt", "y")
	write("top.txt", "top")
	if err := os.Symlink("top.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	mbe := mem.New()
	repo, err := repository.Init(ctx, mbe, []byte("pw"), repository.Options{CacheDir: t.TempDir(), KDF: &walkTestKDF})
	if err != nil {
		t.Fatal(err)
	}
	res, err := archiver.Backup(ctx, repo, []string{dir}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := FindNode(ctx, repo, res.Snapshot.File.Statement.Root, dir[1:])
	if err != nil {
		t.Fatal(err)
	}
	f := &walkFixture{mem: mbe, src: *n.Subtree}
	if err := repo.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	save := func(nodes ...snapshot.Node) blob.ID {
		tb, err := (&snapshot.Tree{Nodes: nodes}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := s.SaveBlob(ctx, blob.Tree, tb)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	dirNode := func(name string, id blob.ID) snapshot.Node {
		return snapshot.Node{Name: name, Type: snapshot.TypeDir, Mode: 0o755, Subtree: &id}
	}
	inner := save(dirNode("inner", f.src))
	f.dup = save(dirNode("a", f.src), dirNode("b", inner), dirNode("c", f.src),
		snapshot.Node{Name: "d.txt", Type: snapshot.TypeFile, Mode: 0o644})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f.reopen(t, 0)
	return f
}

// reopen opens the repository afresh over a slowBackend with delay.
func (f *walkFixture) reopen(t *testing.T, delay time.Duration) {
	t.Helper()
	ctx := context.Background()
	f.be = &slowBackend{Backend: f.mem, delay: delay}
	repo, err := repository.Open(ctx, f.be, []byte("pw"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	f.repo = repo
	f.be.reset()
}

// walkWith is Walk with workers loaders and look-ahead ahead. After a
// walk that ran to the end, every tree loaded ahead must have been taken
// by the visitor or dropped, and nothing left to load.
func walkWith(t *testing.T, ctx context.Context, repo *repository.Repository, root blob.ID, workers, ahead int, fn func(string, *snapshot.Node) error) error {
	t.Helper()
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	p := newPrefetch(repo, workers, ahead)
	err := p.run(ctx, root, fn)
	if err == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.held != 0 {
			t.Errorf("%d trees loaded ahead and never taken or dropped", p.held)
		}
		for _, r := range p.queue {
			if r.state == pending {
				t.Errorf("tree %s still to load after the walk", r.id.Short())
			}
		}
	}
	return err
}

// refWalk is Walk as it was: one tree load at a time, on one goroutine.
func refWalk(ctx context.Context, repo *repository.Repository, id blob.ID, prefix string, depth int, fn func(string, *snapshot.Node) error) error {
	if depth > MaxDepth {
		return fmt.Errorf("tree %s: deeper than %d levels", id.Short(), MaxDepth)
	}
	t, err := LoadTree(ctx, repo, id)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := n.Name
		if prefix != "" {
			p = prefix + "/" + n.Name
		}
		err := fn(p, n)
		if errors.Is(err, ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == snapshot.TypeDir && n.Subtree != nil {
			if err := refWalk(ctx, repo, *n.Subtree, p, depth+1, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// record returns a visitor that logs (path, name, type) and skips the
// directories in skip, and the log.
func record(skip ...string) (func(string, *snapshot.Node) error, *[]string) {
	var got []string
	return func(p string, n *snapshot.Node) error {
		got = append(got, fmt.Sprintf("%s|%s|%s", p, n.Name, n.Type))
		if slices.Contains(skip, p) {
			return ErrSkipDir
		}
		return nil
	}, &got
}

// noLeak fails if more goroutines run than before, after a short grace.
func noLeak(t *testing.T, before int) {
	t.Helper()
	for i := 0; ; i++ {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if i == 100 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Walk, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWalkMatchesSequential: with any number of loaders and any
// look-ahead, Walk visits what the sequential walk does, in its order,
// including every occurrence of a tree that occurs several times; it
// loads at most workers+1 trees at once and keeps at most ahead trees
// loaded ahead of the visitor.
func TestWalkMatchesSequential(t *testing.T) {
	ctx := context.Background()
	f := newWalkFixture(t)
	wantFn, want := record()
	if err := refWalk(ctx, f.repo, f.dup, "", 0, wantFn); err != nil {
		t.Fatal(err)
	}
	occurs := map[blob.ID]int{}
	var dirs int
	if err := refWalk(ctx, f.repo, f.dup, "", 0, func(_ string, n *snapshot.Node) error {
		if n.Subtree != nil {
			occurs[*n.Subtree]++
			dirs++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if occurs[f.src] != 3 || dirs < 900 {
		t.Fatalf("fixture: src occurs %d times, %d directories", occurs[f.src], dirs)
	}
	if !slices.Contains(slices.Collect(maps.Values(occurs)), 3*6*8) {
		t.Fatalf("fixture: the empty directories do not share one tree")
	}

	for _, c := range []struct {
		workers, ahead int
		delay          time.Duration
	}{
		{walkWorkers, walkAhead, 0},
		{walkWorkers, walkAhead, 100 * time.Microsecond},
		{1, 1, 50 * time.Microsecond},
		{3, 2, 50 * time.Microsecond},
		{4, 16, 0},
		{2, 0, 0}, // loaders never start: the visitor loads everything
	} {
		t.Run(fmt.Sprintf("workers=%d,ahead=%d,delay=%v", c.workers, c.ahead, c.delay), func(t *testing.T) {
			f.reopen(t, c.delay)
			before := runtime.NumGoroutine()
			var got []string
			entered := 1 // trees the visitor has reached: the root, and each directory fn saw
			err := walkWith(t, ctx, f.repo, f.dup, c.workers, c.ahead, func(p string, n *snapshot.Node) error {
				got = append(got, fmt.Sprintf("%s|%s|%s", p, n.Name, n.Type))
				if started, _ := f.be.counts(); started > entered+c.ahead {
					return fmt.Errorf("at %s: %d trees loaded, %d reached, ahead %d", p, started, entered, c.ahead)
				}
				if n.Subtree != nil {
					entered++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			noLeak(t, before)
			if !slices.Equal(got, *want) {
				t.Fatalf("got %d nodes, want %d; first difference at %d", len(got), len(*want), firstDiff(got, *want))
			}
			started, maxLive := f.be.counts()
			if started != dirs+1 {
				t.Errorf("%d tree loads for %d trees", started, dirs+1)
			}
			if maxLive > c.workers+1 {
				t.Errorf("%d concurrent loads with %d loaders", maxLive, c.workers)
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestWalkSkipDir: ErrSkipDir for a directory skips exactly its subtree
// (in one occurrence of a repeated tree, not the others), and the trees
// loaded ahead below it are dropped, not kept.
func TestWalkSkipDir(t *testing.T) {
	ctx := context.Background()
	f := newWalkFixture(t)
	skip := []string{"a/d1", "b/inner/d3/s2", "c/d0/s0/empty", "c/d5/s7/l4", "c/top.txt", "b/inner"}
	for _, skip := range [][]string{skip, skip[:5], {"a"}} {
		wantFn, want := record(skip...)
		if err := refWalk(ctx, f.repo, f.dup, "", 0, wantFn); err != nil {
			t.Fatal(err)
		}
		for _, ahead := range []int{walkAhead, 3} {
			f.reopen(t, 20*time.Microsecond)
			before := runtime.NumGoroutine()
			gotFn, got := record(skip...)
			if err := walkWith(t, ctx, f.repo, f.dup, walkWorkers, ahead, gotFn); err != nil {
				t.Fatal(err)
			}
			noLeak(t, before)
			if !slices.Equal(*got, *want) {
				t.Fatalf("skip %v, ahead %d: got %d nodes, want %d; first difference at %d", skip, ahead, len(*got), len(*want), firstDiff(*got, *want))
			}
			for _, s := range skip {
				for _, g := range *got {
					if strings.HasPrefix(g, s+"/") {
						t.Fatalf("skip %v: visited %s", skip, g)
					}
				}
			}
		}
	}
}

// TestWalkDamagedTree: a tree that does not load fails the walk when the
// walk reaches it, as the sequential walk fails, but not when fn skips it
// or a directory above it, even though a loader loaded it (and got the
// error) before fn skipped it.
func TestWalkDamagedTree(t *testing.T) {
	ctx := context.Background()
	f := newWalkFixture(t)
	n, err := FindNode(ctx, f.repo, f.src, "d1/skipme/inner")
	if err != nil {
		t.Fatal(err)
	}
	e, ok := f.repo.Lookup(blob.Tree, *n.Subtree)
	if !ok {
		t.Fatal("damaged tree not in the index")
	}
	h := backend.Handle{Type: backend.Data, Name: e.Pack.String()}
	if err := f.mem.Corrupt(h, func(b []byte) []byte {
		b[e.Offset+e.Length/2] ^= 1
		return b
	}); err != nil {
		t.Fatal(err)
	}

	for _, skip := range []string{"d1/skipme", "d1/skipme/inner", "d1"} {
		wantFn, want := record(skip)
		if err := refWalk(ctx, f.repo, f.src, "", 0, wantFn); err != nil {
			t.Fatal(err)
		}
		f.reopen(t, 0)
		damagedLoaded := make(chan struct{})
		var once sync.Once
		f.be.loaded = func(lh backend.Handle, off int64) {
			if lh == h && off == int64(e.Offset) {
				once.Do(func() { close(damagedLoaded) })
			}
		}
		before := runtime.NumGoroutine()
		gotFn, got := record(skip)
		first := true
		err := walkWith(t, ctx, f.repo, f.src, walkWorkers, 1000, func(p string, n *snapshot.Node) error {
			if first { // let the loaders reach the damaged tree
				first = false
				select {
				case <-damagedLoaded:
					time.Sleep(20 * time.Millisecond)
				case <-time.After(10 * time.Second):
					return errors.New("the loaders never loaded the damaged tree")
				}
			}
			return gotFn(p, n)
		})
		if err != nil {
			t.Fatalf("skip %s: %v", skip, err)
		}
		noLeak(t, before)
		if !slices.Equal(*got, *want) {
			t.Fatalf("skip %s: got %d nodes, want %d; first difference at %d", skip, len(*got), len(*want), firstDiff(*got, *want))
		}
	}

	// Reached, it fails the walk with the sequential walk's error, after
	// the same visits.
	wantFn, want := record()
	wantErr := refWalk(ctx, f.repo, f.src, "", 0, wantFn)
	if wantErr == nil {
		t.Fatal("the sequential walk read the damaged tree")
	}
	for _, ahead := range []int{walkAhead, 0} {
		f.reopen(t, 0)
		before := runtime.NumGoroutine()
		gotFn, got := record()
		err := walkWith(t, ctx, f.repo, f.src, walkWorkers, ahead, gotFn)
		noLeak(t, before)
		if err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("ahead %d: got %v, want %v", ahead, err, wantErr)
		}
		if !slices.Equal(*got, *want) {
			t.Fatalf("ahead %d: got %d nodes, want %d; first difference at %d", ahead, len(*got), len(*want), firstDiff(*got, *want))
		}
	}
}

// TestWalkStops: fn's error and ctx's cancellation stop the walk at once
// and are returned, also while loads are slow, with no loader left.
func TestWalkStops(t *testing.T) {
	f := newWalkFixture(t)
	errBoom := errors.New("boom")
	for _, delay := range []time.Duration{0, 2 * time.Millisecond} {
		f.reopen(t, delay)
		before := runtime.NumGoroutine()
		calls := 0
		err := Walk(context.Background(), f.repo, f.dup, func(p string, n *snapshot.Node) error {
			if calls++; calls == 50 {
				return fmt.Errorf("at %s: %w", p, errBoom)
			}
			return nil
		})
		if !errors.Is(err, errBoom) || calls != 50 {
			t.Fatalf("delay %v: got %v after %d calls, want boom after 50", delay, err, calls)
		}
		noLeak(t, before)

		// Cancelled from fn: the walk stops before the next tree, at the
		// latest once the current tree's nodes are visited.
		ctx, cancel := context.WithCancel(context.Background())
		calls = 0
		err = Walk(ctx, f.repo, f.dup, func(p string, n *snapshot.Node) error {
			if calls++; calls == 30 {
				cancel()
			}
			return nil
		})
		if calls > 30+12 {
			t.Errorf("delay %v: %d calls after cancel", delay, calls-30)
		}
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("delay %v: cancelled walk returned %v", delay, err)
		}
		noLeak(t, before)
	}

	// Cancelled from outside while the visitor waits on a slow load.
	f.reopen(t, time.Hour)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := Walk(ctx, f.repo, f.dup, func(string, *snapshot.Node) error { return nil })
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled during a load: %v after %v", err, time.Since(start))
	}
	noLeak(t, before)
}

// TestWalkMaxDepth: a chain of trees deeper than MaxDepth fails the walk
// as before, and the loaders do not load past the limit.
func TestWalkMaxDepth(t *testing.T) {
	ctx := context.Background()
	f := newWalkFixture(t)
	s, err := f.repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := f.src
	for range MaxDepth + 10 {
		tb, err := (&snapshot.Tree{Nodes: []snapshot.Node{{Name: "d", Type: snapshot.TypeDir, Mode: 0o755, Subtree: &id}}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		if id, _, err = s.SaveBlob(ctx, blob.Tree, tb); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f.reopen(t, 0)
	wantFn, want := record()
	wantErr := refWalk(ctx, f.repo, id, "", 0, wantFn)
	if wantErr == nil || !strings.Contains(wantErr.Error(), "deeper than") {
		t.Fatalf("sequential walk: %v", wantErr)
	}
	f.reopen(t, 0)
	before := runtime.NumGoroutine()
	gotFn, got := record()
	err = Walk(ctx, f.repo, id, gotFn)
	noLeak(t, before)
	if err == nil || err.Error() != wantErr.Error() || !slices.Equal(*got, *want) {
		t.Fatalf("got %v after %d nodes, want %v after %d", err, len(*got), wantErr, len(*want))
	}
	if started, _ := f.be.counts(); started > MaxDepth+1 {
		t.Errorf("%d trees loaded, the walk reaches %d", started, MaxDepth+1)
	}
}

// TestWalkLostGoesOn: WalkLost visits everything a walk can reach past a
// damaged tree, in the walk's order, and tells lost of the directory once,
// with its path and tree ID; lost's error stops the walk with it.
func TestWalkLostGoesOn(t *testing.T) {
	ctx := context.Background()
	f := newWalkFixture(t)
	n, err := FindNode(ctx, f.repo, f.src, "d1/skipme/inner")
	if err != nil {
		t.Fatal(err)
	}
	e, ok := f.repo.Lookup(blob.Tree, *n.Subtree)
	if !ok {
		t.Fatal("damaged tree not in the index")
	}
	if err := f.mem.Corrupt(backend.Handle{Type: backend.Data, Name: e.Pack.String()}, func(b []byte) []byte {
		b[e.Offset+e.Length/2] ^= 1
		return b
	}); err != nil {
		t.Fatal(err)
	}
	// What a walk can reach: everything but what is below the damaged tree.
	wantFn, want := record("d1/skipme/inner")
	if err := refWalk(ctx, f.repo, f.src, "", 0, wantFn); err != nil {
		t.Fatal(err)
	}
	for _, ahead := range []int{walkAhead, 0} {
		f.reopen(t, 0)
		gotFn, got := record()
		var lost []string
		p := newPrefetch(f.repo, walkWorkers, ahead)
		p.lost = func(path string, id blob.ID, err error) error {
			if !errors.Is(err, ErrTreeUnavailable) || id != *n.Subtree {
				t.Errorf("lost %s: tree %s, %v", path, id.Short(), err)
			}
			lost = append(lost, path)
			return nil
		}
		if err := p.run(ctx, f.src, gotFn); err != nil {
			t.Fatalf("ahead %d: %v", ahead, err)
		}
		if !slices.Equal(*got, *want) {
			t.Fatalf("ahead %d: got %d nodes, want %d; first difference at %d", ahead, len(*got), len(*want), firstDiff(*got, *want))
		}
		if !slices.Equal(lost, []string{"d1/skipme/inner"}) {
			t.Fatalf("ahead %d: lost %q", ahead, lost)
		}
	}
	stop := errors.New("stop")
	err = WalkLost(ctx, f.repo, f.src, func(string, *snapshot.Node) error { return nil },
		func(string, blob.ID, error) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("lost's error: walk returned %v", err)
	}
	// The root itself lost: lost is told of "" and nothing is visited.
	var visited int
	err = WalkLost(ctx, f.repo, *n.Subtree, func(string, *snapshot.Node) error { visited++; return nil },
		func(path string, _ blob.ID, _ error) error {
			if path != "" {
				t.Errorf("lost root as %q", path)
			}
			return nil
		})
	if err != nil || visited != 0 {
		t.Fatalf("lost root: %v, %d visited", err, visited)
	}
}

// TestFindNodeBelowLostTree: a path below a directory whose tree is lost
// names that directory.
func TestFindNodeBelowLostTree(t *testing.T) {
	ctx := context.Background()
	f := newWalkFixture(t)
	n, err := FindNode(ctx, f.repo, f.src, "d1/skipme")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.repo.Lookup(blob.Tree, *n.Subtree)
	if err := f.mem.Corrupt(backend.Handle{Type: backend.Data, Name: e.Pack.String()}, func(b []byte) []byte {
		b[e.Offset+e.Length/2] ^= 1
		return b
	}); err != nil {
		t.Fatal(err)
	}
	f.reopen(t, 0)
	_, err = FindNode(ctx, f.repo, f.src, "d1/skipme/y.txt")
	if !errors.Is(err, ErrTreeUnavailable) || !strings.HasPrefix(err.Error(), "/d1/skipme: directory lost") {
		t.Fatalf("got %v", err)
	}
}
