package index

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/cairnbackup/cairn/internal/blob"
)

func id(b ...byte) blob.ID {
	var x blob.ID
	copy(x[:], b)
	return x
}

func randID(r *rand.Rand) blob.ID {
	var x blob.ID
	for i := 0; i < 32; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			x[i+j] = byte(v >> (8 * j))
		}
	}
	return x
}

func cmpEntry(a, b Entry) int {
	return cmp.Or(bytes.Compare(a.ID[:], b.ID[:]), cmp.Compare(a.Type, b.Type),
		bytes.Compare(a.Pack[:], b.Pack[:]), cmp.Compare(a.Offset, b.Offset),
		cmp.Compare(a.Length, b.Length), cmp.Compare(a.Slot, b.Slot))
}

func TestEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(entry{}); s != 48 {
		t.Fatalf("entry is %d bytes, want 48", s)
	}
}

func TestBasics(t *testing.T) {
	p1, p2, p3 := id(0xf1), id(0xf2), id(0xf3)
	a := Entry{ID: id(1), Type: blob.Data, Pack: p1, Offset: 10, Length: 20, Slot: 1}
	aPage := Entry{ID: id(1), Type: blob.ManifestPage, Pack: p2, Offset: 0, Length: 5}
	aDup := Entry{ID: id(1), Type: blob.Data, Pack: p2, Offset: 30, Length: 20, Slot: 1}
	b := Entry{ID: id(2), Type: blob.ManifestPage, Pack: p3, Offset: 7, Length: 8, Slot: 2}

	for _, compact := range []bool{false, true} {
		x := New()
		if _, ok := x.Lookup(a.ID, a.Type); ok || x.Len() != 0 || len(x.Packs()) != 0 {
			t.Fatal("empty index is not empty")
		}
		for _, e := range []Entry{b, aDup, a, aPage} {
			x.Add(e)
		}
		if compact {
			x.Compact()
		}
		tests := []struct {
			name string
			id   blob.ID
			t    blob.Type
			want []Entry
		}{
			{"duplicate", a.ID, blob.Data, []Entry{a, aDup}},
			{"other type", a.ID, blob.ManifestPage, []Entry{aPage}},
			{"absent type", b.ID, blob.Data, nil},
			{"manifest", b.ID, blob.ManifestPage, []Entry{b}},
			{"absent id", id(3), blob.Data, nil},
			{"zero id", blob.ID{}, blob.Data, nil},
		}
		for _, tc := range tests {
			got, ok := x.Lookup(tc.id, tc.t)
			if ok != (tc.want != nil) || ok != x.Has(tc.id, tc.t) {
				t.Fatalf("compact=%v %s: Lookup ok=%v Has=%v", compact, tc.name, ok, x.Has(tc.id, tc.t))
			}
			if ok && !slices.Contains(tc.want, got) {
				t.Fatalf("compact=%v %s: Lookup = %+v", compact, tc.name, got)
			}
			all := x.LookupAll(tc.id, tc.t)
			slices.SortFunc(all, cmpEntry)
			if !slices.Equal(all, tc.want) {
				t.Fatalf("compact=%v %s: LookupAll = %+v, want %+v", compact, tc.name, all, tc.want)
			}
		}
		if x.Len() != 4 {
			t.Fatalf("Len = %d", x.Len())
		}
		var seq []Entry
		x.Each(func(e Entry) bool { seq = append(seq, e); return true })
		if want := []Entry{a, aDup, aPage, b}; !slices.Equal(seq, want) {
			t.Fatalf("Each = %+v, want %+v", seq, want)
		}
		if got := x.Packs(); !slices.Equal(got, []blob.ID{p1, p2, p3}) {
			t.Fatalf("Packs = %v", got)
		}

		x.RemovePacks(map[blob.ID]struct{}{p2: {}, id(0xee): {}})
		if got := x.LookupAll(a.ID, blob.Data); !slices.Equal(got, []Entry{a}) {
			t.Fatalf("after RemovePacks: %+v", got)
		}
		if x.Has(a.ID, blob.ManifestPage) || x.Len() != 2 {
			t.Fatalf("after RemovePacks: page still there or Len %d", x.Len())
		}
		if got := x.Packs(); !slices.Equal(got, []blob.ID{p1, p3}) {
			t.Fatalf("Packs after remove = %v", got)
		}
		// A removed pack can come back.
		x.Add(aDup)
		if got := x.LookupAll(a.ID, blob.Data); len(got) != 2 {
			t.Fatalf("re-added: %+v", got)
		}

		y := New()
		y.Add(aPage)
		y.Add(Entry{ID: id(9), Type: blob.Data, Pack: p1})
		x.Merge(y)
		x.Merge(x)
		if x.Len() != 10 || len(x.LookupAll(a.ID, blob.Data)) != 4 || len(x.LookupAll(id(9), blob.Data)) != 2 {
			t.Fatalf("after Merge: Len %d", x.Len())
		}
		if y.Len() != 2 {
			t.Fatal("Merge changed its argument")
		}
	}
}

// model is the reference: a plain list of entries.
type model []Entry

type key struct {
	id blob.ID
	t  blob.Type
}

func (m model) byKey() map[key][]Entry {
	out := map[key][]Entry{}
	for _, e := range m {
		k := key{e.ID, e.Type}
		out[k] = append(out[k], e)
	}
	return out
}

func TestRandomAgainstReference(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	r := rand.New(rand.NewPCG(1, 2))
	x := New()
	var ref model
	var packs []blob.ID
	newEntry := func() Entry {
		if len(packs) == 0 || r.IntN(300) == 0 {
			packs = append(packs, randID(r))
		}
		e := Entry{
			Type:   blob.Type(1 + 2*r.IntN(2)), // stored types: Data, ManifestPage
			Pack:   packs[len(packs)-1-min(len(packs)-1, r.IntN(3))],
			Offset: r.Uint32(), Length: r.Uint32(), Slot: uint32(r.IntN(4)),
		}
		switch k := r.IntN(20); {
		case k == 0 && len(ref) > 0: // same blob again, elsewhere
			e.ID = ref[r.IntN(len(ref))].ID
		case k == 1 && len(ref) > 0: // exact duplicate
			return ref[r.IntN(len(ref))]
		case k < 4: // shared 8-byte prefix: same dir bucket
			e.ID = randID(r)
			copy(e.ID[:8], "prefix!!")
		default:
			e.ID = randID(r)
		}
		return e
	}
	check := func(when string) {
		t.Helper()
		if x.Len() != len(ref) {
			t.Fatalf("%s: Len %d, want %d", when, x.Len(), len(ref))
		}
		keyed := ref.byKey()
		for range 2000 {
			var q blob.ID
			tq := blob.Type(1 + 2*r.IntN(2))
			if r.IntN(2) == 0 && len(ref) > 0 {
				q = ref[r.IntN(len(ref))].ID
			} else {
				q = randID(r)
			}
			want := slices.Clone(keyed[key{q, tq}])
			got, ok := x.Lookup(q, tq)
			if ok != (len(want) > 0) || (ok && !slices.Contains(want, got)) {
				t.Fatalf("%s: Lookup(%s, %v) = %+v, %v; want one of %+v", when, q.Short(), tq, got, ok, want)
			}
			all := x.LookupAll(q, tq)
			slices.SortFunc(all, cmpEntry)
			slices.SortFunc(want, cmpEntry)
			if !slices.Equal(all, want) {
				t.Fatalf("%s: LookupAll(%s) = %d entries, want %d", when, q.Short(), len(all), len(want))
			}
		}
	}
	checkEach := func(when string) {
		t.Helper()
		var seq []Entry
		x.Each(func(e Entry) bool { seq = append(seq, e); return true })
		want := slices.Clone(ref)
		slices.SortFunc(want, cmpEntry)
		if !slices.Equal(seq, want) {
			t.Fatalf("%s: Each differs from the sorted reference", when)
		}
		distinct := map[blob.ID]bool{}
		for _, e := range ref {
			distinct[e.Pack] = true
		}
		if got := x.Packs(); len(got) != len(distinct) {
			t.Fatalf("%s: %d packs, want %d", when, len(got), len(distinct))
		}
	}
	for len(ref) < n {
		e := newEntry()
		x.Add(e)
		ref = append(ref, e)
		switch {
		case len(ref)%25_000 == 0:
			checkEach("periodic")
			// Remove a few packs.
			set := map[blob.ID]struct{}{}
			for range 5 {
				set[ref[r.IntN(len(ref))].Pack] = struct{}{}
			}
			x.RemovePacks(set)
			ref = slices.DeleteFunc(ref, func(e Entry) bool { _, ok := set[e.Pack]; return ok })
			check("after RemovePacks")
			// Merge in a second index with some overlap.
			y := New()
			for range 3000 {
				e := newEntry()
				y.Add(e)
				ref = append(ref, e)
			}
			x.Merge(y)
			check("after Merge")
		case len(ref)%7_001 == 0:
			check("periodic")
			x.Grow(r.IntN(20_000))
		case len(ref)%33_333 == 0:
			x.Compact()
			check("after Compact")
		}
	}
	check("end")
	checkEach("end")
}

func TestEachStops(t *testing.T) {
	x := New()
	for i := range 10 {
		x.Add(Entry{ID: id(byte(i)), Type: blob.Data})
	}
	n := 0
	x.Each(func(Entry) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("Each called fn %d times after it returned false", n)
	}
}

func TestConcurrent(t *testing.T) {
	c := NewConcurrent()
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]blob.ID, 20_000)
	for i := range ids {
		ids[i] = randID(r)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, x := range ids {
			c.Add(Entry{ID: x, Type: blob.Data, Pack: id(byte(i / 300)), Offset: uint32(i)})
		}
	})
	for range 3 {
		wg.Go(func() {
			for i := len(ids) - 1; i >= 0; i-- {
				if e, ok := c.Lookup(ids[i], blob.Data); ok && e.Offset != uint32(i) {
					t.Errorf("Lookup(%d) = offset %d", i, e.Offset)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, x := range ids {
		if !c.Has(x, blob.Data) {
			t.Fatalf("entry %d missing", i)
		}
	}
	if c.Len() != len(ids) || len(c.Packs()) != len(ids)/300+1 {
		t.Fatalf("Len %d, %d packs", c.Len(), len(c.Packs()))
	}
}

// A copy counts for a domain only if its pack is of that domain, and the
// same pack listed under two domains keeps both rows apart (R23).
func TestDomains(t *testing.T) {
	x := New()
	owner, writer := blob.Domain{1}, blob.Domain{2}
	id := blob.ID{9, 9}
	x.Add(Entry{ID: id, Type: blob.Data, Pack: blob.ID{0xa}, Offset: 0, Length: 5, Domain: writer})
	if x.HasIn(id, blob.Data, owner) {
		t.Fatal("a writer's copy stands for the owner's blob")
	}
	if e, ok := x.LookupIn(id, blob.Data, writer); !ok || e.Domain != writer || e.Pack != (blob.ID{0xa}) {
		t.Fatalf("writer's copy: %+v %v", e, ok)
	}
	x.Add(Entry{ID: id, Type: blob.Data, Pack: blob.ID{0xb}, Offset: 0, Length: 5, Domain: owner})
	x.Add(Entry{ID: id, Type: blob.Data, Pack: blob.ID{0xa}, Offset: 10, Length: 5, Domain: owner}) // same pack, other domain
	x.Compact()
	if e, ok := x.LookupIn(id, blob.Data, owner); !ok || e.Domain != owner {
		t.Fatalf("owner's copy: %+v %v", e, ok)
	}
	all := x.LookupAll(id, blob.Data)
	if len(all) != 3 {
		t.Fatalf("%d copies, want 3", len(all))
	}
	if got := x.Packs(); len(got) != 2 {
		t.Fatalf("Packs = %v, want the two distinct packs", got)
	}
	x.RemovePacks(map[blob.ID]struct{}{{0xb}: {}})
	if e, ok := x.LookupIn(id, blob.Data, owner); !ok || e.Pack != (blob.ID{0xa}) || e.Offset != 10 {
		t.Fatalf("after removing pack b, owner's copy: %+v %v", e, ok)
	}
	if e, ok := x.LookupIn(id, blob.Data, writer); !ok || e.Offset != 0 {
		t.Fatalf("after removing pack b, writer's copy: %+v %v", e, ok)
	}
	y := New()
	y.Merge(x)
	if !y.HasIn(id, blob.Data, writer) || !y.HasIn(id, blob.Data, owner) || y.HasIn(id, blob.Data, blob.Domain{3}) {
		t.Fatal("merge lost or invented a domain")
	}
}

// TestTreeIsContent: a tree is indexed under its stored type, content
// (docs/format.md §10), so it is one entry with data blobs' type, and a
// lookup asking for a tree or for data finds it in every query.
func TestTreeIsContent(t *testing.T) {
	dom := blob.Domain{7}
	tree := Entry{ID: id(5), Type: blob.Tree, Pack: id(0xa1), Offset: 3, Length: 9, Domain: dom}
	for _, compact := range []bool{false, true} {
		x := New()
		x.Add(tree)
		if compact {
			x.Compact()
		}
		want := tree
		want.Type = blob.Data
		for _, q := range []blob.Type{blob.Tree, blob.Data} {
			if got, ok := x.Lookup(tree.ID, q); !ok || got != want {
				t.Fatalf("compact=%v Lookup(%s) = %+v, %v; want %+v", compact, q, got, ok, want)
			}
			if got, ok := x.LookupIn(tree.ID, q, dom); !ok || got != want || !x.Has(tree.ID, q) || !x.HasIn(tree.ID, q, dom) {
				t.Fatalf("compact=%v LookupIn/Has(%s) = %+v, %v", compact, q, got, ok)
			}
			if all := x.LookupAll(tree.ID, q); len(all) != 1 || all[0] != want {
				t.Fatalf("compact=%v LookupAll(%s) = %+v", compact, q, all)
			}
		}
		if x.Has(tree.ID, blob.ManifestPage) {
			t.Fatal("a tree answers a manifest page lookup")
		}
		x.Each(func(e Entry) bool {
			if e.Type != blob.Data {
				t.Fatalf("Each gives type %s", e.Type)
			}
			return true
		})
	}
}

// TestCompactGivesBackSlack: after Compact no shard keeps spare capacity
// or a tail table, every entry is still found, and Adds after it work.
func TestCompactGivesBackSlack(t *testing.T) {
	x := New()
	r := rand.New(rand.NewPCG(17, 0))
	var added []Entry
	var pack blob.ID
	for i := range 5000 {
		if i%100 == 0 {
			pack = randID(r)
		}
		e := Entry{ID: randID(r), Type: blob.Data, Pack: pack, Offset: uint32(i), Length: 10, Slot: uint32(i % 3)}
		x.Add(e)
		added = append(added, e)
	}
	x.Compact()
	for i := range x.shards {
		s := &x.shards[i]
		if cap(s.es) != len(s.es) || s.tab != nil || s.sorted != len(s.es) {
			t.Fatalf("shard %d after Compact: len %d cap %d sorted %d tab %d", i, len(s.es), cap(s.es), s.sorted, len(s.tab))
		}
	}
	more := Entry{ID: randID(r), Type: blob.Data, Pack: id(7), Offset: 1, Length: 2, Slot: 1}
	x.Add(more)
	for _, e := range append(added, more) {
		if got, ok := x.Lookup(e.ID, e.Type); !ok || got.Pack != e.Pack || got.Offset != e.Offset || got.Slot != e.Slot {
			t.Fatalf("Lookup(%x) = %+v, %v; want %+v", e.ID[:4], got, ok, e)
		}
	}
	if x.Len() != len(added)+1 {
		t.Fatalf("Len %d, want %d", x.Len(), len(added)+1)
	}
}
