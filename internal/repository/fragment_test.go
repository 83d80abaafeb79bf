package repository

import (
	"context"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
)

// TestFragmentBatches: a session's index fragments stay within the byte
// bound a server accepts (issue 17: one fragment of a 3 M blob session was
// 130 MiB, refused with 413), keep every pack once and in order, and a
// header larger than the bound goes alone.
func TestFragmentBatches(t *testing.T) {
	var packs []pack.IndexPack
	for i, size := range []int{40, 40, 40, 200, 10, 10, 10, 10, 10, 10} {
		packs = append(packs, pack.IndexPack{Pack: blob.ID{byte(i)}, Header: make([]byte, size)})
	}
	const max = 36*3 + 130
	batches := fragmentBatches(packs, max)
	var got []pack.IndexPack
	for i, b := range batches {
		size := 0
		for _, p := range b {
			size += 36 + len(p.Header)
		}
		if len(b) == 0 || (size > max && len(b) > 1) {
			t.Fatalf("batch %d: %d packs, %d bytes (bound %d)", i, len(b), size, max)
		}
		got = append(got, b...)
	}
	if len(got) != len(packs) {
		t.Fatalf("%d packs in the batches, want %d", len(got), len(packs))
	}
	for i := range got {
		if got[i].Pack != packs[i].Pack {
			t.Fatalf("pack %d out of order", i)
		}
	}
	if len(batches) != 4 || len(batches[1]) != 1 || len(batches[1][0].Header) != 200 {
		t.Fatalf("batches %v, want [3 packs] [the 200-byte header alone] [...]", batches)
	}
	if n := len(fragmentBatches(make([]pack.IndexPack, pack.MaxIndexPacks/16+1), 1<<30)); n != 2 {
		t.Fatalf("%d fragments for one pack over the pack bound, want 2", n)
	}
}

// TestRepackerFragments: a repack's index fragments are split as a
// session's are (one code path, fragmentBatches): with the bound below
// one header, each new pack gets a fragment of its own, every fragment
// loads and lists exactly the packs Finish says it does.
func TestRepackerFragments(t *testing.T) {
	ctx := context.Background()
	_, r, _ := newTestRepo(t, 2)
	r.fragmentBytes = 1
	rp := r.NewRepacker()
	rp.target = 1 // a pack per blob
	var entries []index.Entry
	r.Index().Each(func(e index.Entry) bool {
		if e.Type == blob.Data {
			entries = append(entries, e)
		}
		return true
	})
	for _, e := range entries {
		sealed, err := r.LoadSealed(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if err := rp.Add(ctx, e, sealed); err != nil {
			t.Fatal(err)
		}
	}
	packs, fragments, err := rp.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != len(entries) || len(fragments) != len(packs) {
		t.Fatalf("%d blobs repacked into %d packs listed in %d fragment names", len(entries), len(packs), len(fragments))
	}
	seen := map[string]bool{}
	for i, name := range fragments {
		if seen[name] {
			t.Fatalf("fragment %s lists more than one pack, over the bound", name)
		}
		seen[name] = true
		f, err := r.LoadIndexFile(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Packs) != 1 || f.Packs[0].Pack != packs[i] {
			t.Fatalf("fragment %s does not list exactly pack %s", name, packs[i].Short())
		}
	}
}
