package walker

import (
	"context"
	"errors"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// TestExpanderMatchesWalk: the expansion counts what Walk visits, shared
// subtrees once per occurrence, while loading each distinct tree once.
func TestExpanderMatchesWalk(t *testing.T) {
	ctx := context.Background()
	f := newWalkFixture(t)
	var want Expansion
	want.Dirs = 1
	err := Walk(ctx, f.repo, f.dup, func(_ string, n *snapshot.Node) error {
		want.Nodes++
		switch {
		case n.Type == snapshot.TypeDir && n.Subtree != nil:
			want.Dirs++
		case n.Type == snapshot.TypeFile && n.HardLinkTo == "":
			want.Files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.reopen(t, 0)
	if err := f.repo.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	f.be.reset()
	e := NewExpander(f.repo)
	got, err := e.Tree(ctx, f.dup)
	if err != nil || got != want {
		t.Fatalf("expansion %+v (%v), want %+v", got, err, want)
	}
	distinct, _ := f.be.counts()
	if again, err := e.Tree(ctx, f.dup); err != nil || again != want {
		t.Fatalf("memoised expansion %+v (%v)", again, err)
	}
	if more, _ := f.be.counts(); more != distinct {
		t.Errorf("the memoised expansion loaded %d more trees", more-distinct)
	}
	if want.Nodes < 3 {
		t.Fatal("fixture too small")
	}
	small := NewExpander(f.repo)
	small.Max = want.Nodes - 1
	if _, err := small.Tree(ctx, f.dup); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("expansion over a bound of %d: %v", small.Max, err)
	}
}

// TestExpanderRefusesBomb: 41 trees, each with two entries naming the
// one below, expand to 2^41 nodes; the expander stops after loading the
// 41 distinct trees.
func TestExpanderRefusesBomb(t *testing.T) {
	ctx := context.Background()
	f := newWalkFixture(t)
	s, err := f.repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := (&snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, Mode: 0o644}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := s.SaveBlob(ctx, blob.Tree, leaf)
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		sub := id
		tb, err := (&snapshot.Tree{Nodes: []snapshot.Node{
			{Name: "a", Type: snapshot.TypeDir, Mode: 0o755, Subtree: &sub},
			{Name: "b", Type: snapshot.TypeDir, Mode: 0o755, Subtree: &sub},
		}}).Encode()
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
	s.Close()
	f.reopen(t, 0)
	if err := f.repo.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	f.be.reset()
	if _, err := NewExpander(f.repo).Tree(ctx, id); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a DAG bomb: %v, want ErrTooLarge", err)
	}
	if started, _ := f.be.counts(); started > 41 {
		t.Errorf("%d tree loads for 41 distinct trees", started)
	}
}
