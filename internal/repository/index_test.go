package repository

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/pack"
)

// rewritingLister runs rewrite right after each listing of index/ (up to
// times), as a prune that rewrites the index between a reader's listing
// and its loads.
type rewritingLister struct {
	backend.Backend
	rewrite func()

	mu    sync.Mutex
	times int // rewrites left
	lists int // listings of index/
}

func (b *rewritingLister) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	err := b.Backend.List(ctx, t, fn)
	if t != backend.Index {
		return err
	}
	b.mu.Lock()
	b.lists++
	run := b.times > 0
	b.times--
	b.mu.Unlock()
	if run {
		b.rewrite()
	}
	return err
}

// rewriteIndex does what a prune does to the index: it stores one
// fragment listing every pack of the current fragments, then removes them.
func rewriteIndex(t *testing.T, r *Repository) {
	t.Helper()
	ctx := context.Background()
	var names []string
	if err := r.Backend().List(ctx, backend.Index, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Error(err)
		return
	}
	var packs []pack.IndexPack
	for _, n := range names {
		f, err := r.LoadIndexFile(ctx, n)
		if err != nil {
			t.Error(err)
			return
		}
		for _, p := range f.Packs {
			packs = append(packs, p.IndexPack)
		}
	}
	if _, err := r.WriteIndexFragments(ctx, packs); err != nil {
		t.Error(err)
		return
	}
	for _, n := range names {
		if err := r.Backend().Remove(ctx, backend.Handle{Type: backend.Index, Name: n}); err != nil {
			t.Error(err)
		}
	}
}

// TestLoadIndexDuringRewrite: a reader whose listed fragments are replaced
// before it loads them still loads the whole index, from the replacement.
func TestLoadIndexDuringRewrite(t *testing.T) {
	ctx := context.Background()
	be, owner, plains := newTestRepo(t, 3)
	rl := &rewritingLister{Backend: be, times: 1}
	rl.rewrite = func() { rewriteIndex(t, owner) }
	r, err := OpenWithKeys(ctx, rl, owner.Keys(), "", configBytes(t, be), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatalf("load index during a rewrite: %v", err)
	}
	if rl.times >= 0 {
		t.Fatal("the index was not rewritten during the load")
	}
	for id, want := range plains {
		typ := blob.Data
		if _, ok := r.Lookup(typ, id); !ok {
			typ = blob.Tree
		}
		got, err := r.LoadBlob(ctx, typ, id)
		if err != nil {
			t.Fatalf("blob %s after the rewrite: %v", id.Short(), err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("blob %s: wrong plaintext", id.Short())
		}
	}
}

// TestLoadIndexNeverSettles: an index rewritten after every listing makes
// LoadIndex give up after a bounded number of listings, with an error that
// says why.
func TestLoadIndexNeverSettles(t *testing.T) {
	ctx := context.Background()
	be, owner, _ := newTestRepo(t, 2)
	rl := &rewritingLister{Backend: be, times: 1 << 30}
	rl.rewrite = func() { rewriteIndex(t, owner) }
	r, err := OpenWithKeys(ctx, rl, owner.Keys(), "", configBytes(t, be), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	err = r.LoadIndex(ctx)
	if err == nil || !strings.Contains(err.Error(), "still changed") {
		t.Fatalf("index rewritten after every listing: err %v", err)
	}
	if rl.lists != maxIndexRounds {
		t.Fatalf("%d listings, want %d", rl.lists, maxIndexRounds)
	}
	// Once the rewrites stop, the same repository loads it.
	rl.mu.Lock()
	rl.times = 0
	rl.mu.Unlock()
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
}

// fragmentsOnStorage reads every index fragment on be (the second reading
// IndexFragments saves maintenance) into name → packs.
func fragmentsOnStorage(t *testing.T, r *Repository) map[string][]blob.ID {
	t.Helper()
	ctx := context.Background()
	out := map[string][]blob.ID{}
	if err := r.Backend().List(ctx, backend.Index, func(fi backend.FileInfo) error {
		f, err := r.LoadIndexFile(ctx, fi.Name)
		if err != nil {
			return err
		}
		for _, p := range f.Packs {
			out[fi.Name] = append(out[fi.Name], p.Pack)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFragments(a, b map[string][]blob.ID) bool {
	if len(a) != len(b) {
		return false
	}
	for n, ps := range a {
		if qs, ok := b[n]; !ok || !slices.Equal(ps, qs) {
			return false
		}
	}
	return true
}

// TestIndexFragments: after LoadIndex, IndexFragments names every
// fragment on storage with the packs it lists, in its order, having read
// each once; fragments the repository writes or removes afterwards are
// added and dropped; a fragment that is not valid is not listed, and its
// error is returned (ErrInvalidFragment).
func TestIndexFragments(t *testing.T) {
	ctx := context.Background()
	be, owner, _ := newTestRepo(t, 3)
	var loads int
	cb := &countingBackend{Backend: be, loads: &loads}
	r, err := OpenWithKeys(ctx, cb, owner.Keys(), "", configBytes(t, be), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	want := fragmentsOnStorage(t, owner)
	if len(want) == 0 {
		t.Fatal("no index fragments")
	}
	if loads != len(want) {
		t.Errorf("LoadIndex read %d index files, want each of %d once", loads, len(want))
	}
	got, invalid := r.IndexFragments()
	if !sameFragments(got, want) || len(invalid) != 0 {
		t.Fatalf("after LoadIndex: %v (invalid %v), want %v", got, invalid, want)
	}

	// Rewritten into one fragment by this repository: the new one in, the
	// old ones out.
	var all []pack.IndexPack
	var old []string
	for n := range want {
		f, err := r.LoadIndexFile(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Packs {
			all = append(all, p.IndexPack)
		}
		old = append(old, n)
	}
	if _, err := r.WriteIndexFragments(ctx, all); err != nil {
		t.Fatal(err)
	}
	for _, n := range old {
		if err := r.RemoveFile(ctx, backend.Handle{Type: backend.Index, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = r.IndexFragments()
	if want := fragmentsOnStorage(t, owner); len(want) != 1 || !sameFragments(got, want) {
		t.Fatalf("after a rewrite: %v, want %v", got, want)
	}

	// A fragment that does not open.
	junk := []byte("not an index fragment")
	name := backend.NameOf(junk)
	if err := be.Save(ctx, backend.Handle{Type: backend.Index, Name: name}, backend.NewByteReader(junk)); err != nil {
		t.Fatal(err)
	}
	r2, err := OpenWithKeys(ctx, be, owner.Keys(), "", configBytes(t, be), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	got2, invalid := r2.IndexFragments()
	if !sameFragments(got2, got) {
		t.Errorf("with an invalid fragment: %v, want %v", got2, got)
	}
	if len(invalid) != 1 || !errors.Is(invalid[name], ErrInvalidFragment) || !strings.Contains(invalid[name].Error(), name) {
		t.Fatalf("invalid fragments %v, want the junk one (%s)", invalid, name)
	}
}

// countingBackend counts the loads of index files.
type countingBackend struct {
	backend.Backend
	mu    sync.Mutex
	loads *int
}

func (b *countingBackend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if h.Type == backend.Index {
		b.mu.Lock()
		*b.loads++
		b.mu.Unlock()
	}
	return b.Backend.Load(ctx, h, length, offset, fn)
}
