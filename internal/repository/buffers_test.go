package repository_test

import (
	"testing"

	"github.com/cairnbackup/cairn/internal/repository"
)

// TestBufferList: a buffer given back is the next one got, with what was
// written to it; the list keeps at most its bound and makes new buffers of
// its size when empty.
func TestBufferList(t *testing.T) {
	l := repository.NewBufferList(16, 2)
	a, b, c := l.Get(), l.Get(), l.Get()
	for _, p := range []*[]byte{a, b, c} {
		if len(*p) != 16 {
			t.Fatalf("new buffer of length %d, want 16", len(*p))
		}
	}
	(*a)[0] = 'a'
	*b = append((*b)[:0], "grown beyond its size"...)
	l.Put(a)
	l.Put(b)
	l.Put(c) // beyond the bound: dropped
	got := map[*[]byte]bool{l.Get(): true, l.Get(): true}
	if !got[a] || !got[b] {
		t.Fatalf("the two buffers given back were not the two got")
	}
	if (*a)[0] != 'a' || string(*b) != "grown beyond its size" {
		t.Errorf("kept buffers lost their content: %q, %q", (*a)[:1], *b)
	}
	if d := l.Get(); d == a || d == b || d == c || len(*d) != 16 {
		t.Errorf("with the list empty Get returned a kept or wrong-sized buffer")
	}
}
