package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
)

// This file is an internal test: FuzzDecodePage re-encodes with encodePage.

func randomRefs(r *rand.Rand, n int) []Ref {
	refs := make([]Ref, n)
	for i := range refs {
		for j := range refs[i].ID {
			refs[i].ID[j] = byte(r.Uint32())
		}
		refs[i].Type = blob.Data // stored type: trees too
	}
	return SortRefs(refs)
}

func isCut(r Ref) bool { return binary.LittleEndian.Uint32(r.ID[28:])%PageMod == 0 }

func TestSortRefs(t *testing.T) {
	a, b := Ref{blob.Data, blob.ID{1}}, Ref{blob.Tree, blob.ID{1}}
	c := Ref{blob.Data, blob.ID{2}}
	got := SortRefs([]Ref{c, b, a, c, a})
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("SortRefs = %v", got)
	}
}

// TestPagesCutRule: pages concatenate to the refs; a page ends exactly at a
// cut ref, at MaxPageRefs refs, or at the end.
func TestPagesCutRule(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	refs := randomRefs(r, 20000)
	pages := Pages(refs)
	var all []Ref
	for i, p := range pages {
		got, err := DecodePage(p)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		for j, ref := range got[:len(got)-1] {
			if isCut(ref) {
				t.Fatalf("page %d: ref %d is a cut point inside the page", i, j)
			}
		}
		if last := got[len(got)-1]; i < len(pages)-1 && !isCut(last) && len(got) != MaxPageRefs {
			t.Fatalf("page %d ends at a ref that is not a cut point", i)
		}
		all = append(all, got...)
	}
	if len(all) != len(refs) {
		t.Fatalf("pages hold %d refs, want %d", len(all), len(refs))
	}
	for i := range all {
		if all[i] != refs[i] {
			t.Fatalf("ref %d differs", i)
		}
	}
	if mean := float64(len(refs)) / float64(len(pages)); mean < 100 || mean > 160 {
		t.Errorf("mean page size %.1f refs, want about %d", mean, PageMod)
	}
	if Pages(nil) != nil {
		t.Error("Pages(nil) is not empty")
	}
	one := Pages(refs[:1])
	if len(one) != 1 || len(one[0]) != 8+32 {
		t.Error("a single ref does not make one page")
	}
}

func TestPagesForcedCut(t *testing.T) {
	refs := make([]Ref, 2500)
	for i := range refs {
		binary.BigEndian.PutUint32(refs[i].ID[:], uint32(i))
		refs[i].ID[28] = 1 // never 0 mod 128
		refs[i].Type = blob.Data
	}
	pages := Pages(refs)
	if len(pages) != 3 {
		t.Fatalf("%d pages", len(pages))
	}
	for i, want := range []int{MaxPageRefs, MaxPageRefs, 2500 - 2*MaxPageRefs} {
		if got, err := DecodePage(pages[i]); err != nil || len(got) != want {
			t.Fatalf("page %d: %d refs, %v; want %d", i, len(got), err, want)
		}
	}
}

func pageSet(pages [][]byte) map[blob.ID]bool {
	s := map[blob.ID]bool{}
	for _, p := range pages {
		s[PageID(p)] = true
	}
	return s
}

// TestPagesStable: adding or removing one ref of a large sorted set changes
// at most two pages, so unchanged stretches dedupe.
func TestPagesStable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	refs := randomRefs(r, 50000)
	base := pageSet(Pages(refs))
	for trial := range 50 {
		extra := randomRefs(r, 1)[0]
		if trial%5 == 0 { // make some insertions cut points themselves
			binary.LittleEndian.PutUint32(extra.ID[28:], uint32(trial)*PageMod)
		}
		more := SortRefs(append(append([]Ref(nil), refs...), extra))
		changed := 0
		for id := range pageSet(Pages(more)) {
			if !base[id] {
				changed++
			}
		}
		if changed > 2 {
			t.Fatalf("trial %d: adding one ref changed %d pages", trial, changed)
		}
		// Removing one ref.
		i := r.IntN(len(refs))
		fewer := append(append([]Ref(nil), refs[:i]...), refs[i+1:]...)
		changed = 0
		for id := range pageSet(Pages(fewer)) {
			if !base[id] {
				changed++
			}
		}
		if changed > 1 {
			t.Fatalf("trial %d: removing one ref changed %d pages", trial, changed)
		}
	}
}

func TestPageIDAndRoot(t *testing.T) {
	page := encodePage([]Ref{{blob.Data, blob.ID{1}}, {blob.Data, blob.ID{2}}})
	want := sha256.Sum256(append([]byte("cairn manifest page v1\x00"), page...))
	if PageID(page) != blob.ID(want) {
		t.Fatal("PageID is not SHA-256(label ‖ page)")
	}
	if got := hex.EncodeToString(want[:]); got != pageIDVector {
		t.Errorf("PageID vector = %s", got)
	}
	ids := []blob.ID{{1}, {2}}
	r := sha256.Sum256(append(ids[0][:], ids[1][:]...))
	if ManifestRoot(ids) != r {
		t.Fatal("ManifestRoot is not SHA-256 over the page IDs in order")
	}
	if ManifestRoot([]blob.ID{{2}, {1}}) == r {
		t.Fatal("ManifestRoot ignores page order")
	}
}

// pageIDVector is in docs/format.md: PageID of the page holding the refs
// 01 00…00 and 02 00…00, cross-checked with Python hashlib.
const pageIDVector = "94e5bfecefd796dd0de679ef526bb7bf94ab27a6a99fb001985a201a3f050e48"

// TestPageEncoding: the page of TestPageIDAndRoot byte for byte, and the
// front coding of a ref that shares two bytes with the one before.
func TestPageEncoding(t *testing.T) {
	want := append([]byte("CRM2\x02\x00\x00\x00\x01"), make([]byte, 31)...)
	want = append(append(want, 0, 2), make([]byte, 31)...)
	if got := encodePage([]Ref{{blob.Data, blob.ID{1}}, {blob.Data, blob.ID{2}}}); !bytes.Equal(got, want) {
		t.Fatalf("page % x, want % x", got, want)
	}
	a, b := Ref{blob.Data, blob.ID{7, 8, 9, 1}}, Ref{blob.Data, blob.ID{7, 8, 9, 2}}
	p := encodePage([]Ref{a, b})
	if len(p) != 8+32+1+29 || p[40] != 3 {
		t.Fatalf("second ref of % x not front-coded with 3 shared bytes", p)
	}
	if got, err := DecodePage(p); err != nil || got[0] != a || got[1] != b {
		t.Fatalf("DecodePage = %v, %v", got, err)
	}
}

func TestDecodePageRefuses(t *testing.T) {
	a, b := Ref{blob.Data, blob.ID{1}}, Ref{blob.Data, blob.ID{2}}
	good := encodePage([]Ref{a, b})
	if refs, err := DecodePage(good); err != nil || len(refs) != 2 || refs[0] != a || refs[1] != b {
		t.Fatalf("DecodePage = %v, %v", refs, err)
	}
	for name, p := range map[string][]byte{
		"empty page": encodePage(nil),
		"unsorted":   encodePage([]Ref{b, a}),
		"duplicate":  encodePage([]Ref{a, a}),
		"shared too short": func() []byte {
			p := encodePage([]Ref{{blob.Data, blob.ID{5, 1}}, {blob.Data, blob.ID{5, 2}}})
			// Claim 0 shared bytes and spell the ID out: same refs, not canonical.
			return append(append(p[:40:40], 0, 5), p[41:]...)
		}(),
		"shared 32":       append(bytes.Clone(good[:40]), 32),
		"shared 31 short": append(bytes.Clone(good[:40]), 31),
		"too many":        encodePage(make([]Ref, MaxPageRefs+1)),
		"count lies":      append(bytes.Clone(good), 0),
		"truncated":       good[:len(good)-1],
		"bad magic":       append([]byte("CRX2"), good[4:]...),
		"nothing":         nil,
		"magic only":      []byte("CRM2"),
		"huge count":      binary.LittleEndian.AppendUint32([]byte("CRM2"), 0xffffffff),
		"format 1 page":   append([]byte("CRM1"), good[4:]...),
		"same ID, types":  encodePage([]Ref{{blob.Tree, blob.ID{1}}, {blob.Data, blob.ID{1}}}),
	} {
		if _, err := DecodePage(p); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

// FuzzDecodePage: never panics; an accepted page is strictly sorted and
// re-encodes to its bytes.
func FuzzDecodePage(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range Pages(randomRefs(r, 300))[:2] {
		f.Add(p)
	}
	f.Add(encodePage([]Ref{{blob.Data, blob.ID{1}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		refs, err := DecodePage(b)
		if err != nil {
			return
		}
		if len(refs) == 0 || len(refs) > MaxPageRefs {
			t.Fatalf("accepted page of %d refs", len(refs))
		}
		if !bytes.Equal(encodePage(refs), b) {
			t.Fatal("accepted page does not re-encode to its bytes")
		}
	})
}
