package repository

import (
	"bytes"
	"context"
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
