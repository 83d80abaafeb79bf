package checker

import (
	"slices"
	"testing"
)

// TestSnapSets: a blob's set names every snapshot that referenced it, once
// and in order, and blobs with the same pattern share one set number.
func TestSnapSets(t *testing.T) {
	s := newSnapSets()
	a, b, c := s.newSnap("aaaa"), s.newSnap("bbbb"), s.newSnap("aaaa") // c: a short ID equal to a's
	x := s.addSnap(0, a)
	y := s.addSnap(0, a)
	if x != y {
		t.Fatalf("same pattern, different sets %d and %d", x, y)
	}
	x = s.addSnap(x, b)
	x = s.addSnap(x, b) // listed twice by b
	z := s.addSnap(0, b)
	x = s.addSnap(x, c)
	if got := s.sets[x]; !slices.Equal(got, []string{"aaaa", "bbbb", "aaaa"}) {
		t.Fatalf("set of the blob in a, b and c = %v", got)
	}
	if got := s.sets[z]; !slices.Equal(got, []string{"bbbb"}) {
		t.Fatalf("set of the blob in b = %v", got)
	}
	if s.sets[0] != nil {
		t.Fatalf("empty set = %v", s.sets[0])
	}
	if n := len(s.sets); n != 5 { // {}, {a}, {a,b}, {b}, {a,b,c}
		t.Fatalf("%d sets, want 5", n)
	}
}
