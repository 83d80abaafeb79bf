package walker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestDiff: additions (with everything below an added directory),
// removals, content, metadata and type changes are reported in path order
// with their sizes; identical snapshots differ in nothing.
func TestDiff(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("same.txt", "same")
	write("gone.txt", "12345")
	write("edit.txt", "short")
	write("mode.txt", "mode")
	write("kind", "a file, then a directory")
	repo, err := repository.Init(ctx, mem.New(), []byte("pw"), repository.Options{CacheDir: t.TempDir(), KDF: &walkTestKDF})
	if err != nil {
		t.Fatal(err)
	}
	backup := func() *repository.Snapshot {
		t.Helper()
		res, err := archiver.Backup(ctx, repo, []string{dir}, archiver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Snapshot
	}
	a := backup()
	if err := os.Remove(filepath.Join(dir, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	write("edit.txt", "much longer now")
	if err := os.Chmod(filepath.Join(dir, "mode.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "kind")); err != nil {
		t.Fatal(err)
	}
	write("kind/inside.txt", "in")
	write("new/deep/n.txt", "123")
	b := backup()

	var got []string
	sum, err := Diff(ctx, repo, a, b, func(c Change) {
		rel := strings.TrimPrefix(c.Path, dir)
		if rel == c.Path {
			return // the parents of dir, unchanged but for times
		}
		got = append(got, strings.TrimSpace(c.Kind+" "+rel+" "+c.What))
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"M /edit.txt content",
		"- /gone.txt",
		"- /kind",
		"+ /kind",
		"+ /kind/inside.txt",
		"M /mode.txt metadata",
		"+ /new",
		"+ /new/deep",
		"+ /new/deep/n.txt",
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if sum.Added != 5 || sum.Removed != 2 || sum.Modified < 2 {
		t.Errorf("summary %+v: want 5 added, 2 removed, 2 or more modified", sum)
	}
	// Sizes: the removed file (5) and the file that became a directory
	// (24) went, edit.txt grew by 10, two files of 2 and 3 bytes came.
	if sum.BytesRemoved != 5+24 || sum.BytesAdded < 10+2+3 {
		t.Errorf("bytes %+v", sum)
	}

	n := 0
	if sum, err := Diff(ctx, repo, b, b, func(Change) { n++ }, nil); err != nil || n != 0 || sum != (DiffSummary{}) {
		t.Errorf("a snapshot against itself: %d changes, %+v, %v", n, sum, err)
	}
}

// TestDiffRefusesBomb: a snapshot whose trees expand beyond the bound is
// refused before anything is compared.
func TestDiffRefusesBomb(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, mem.New(), []byte("pw"), repository.Options{CacheDir: t.TempDir(), KDF: &walkTestKDF})
	if err != nil {
		t.Fatal(err)
	}
	res, err := archiver.Backup(ctx, repo, []string{dir}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The signed summary declares the files and directories the backup
	// saw; a summary declaring fewer is what a hostile writer's would be.
	s := *res.Snapshot
	o := *s.Owner
	o.Summary.FilesNew, o.Summary.FilesChanged, o.Summary.FilesUnchanged = 0, 0, 0
	o.Summary.DirsNew, o.Summary.DirsChanged, o.Summary.DirsUnchanged = 1, 0, 0
	s.Owner = &o
	called := false
	_, err = Diff(ctx, repo, res.Snapshot, &s, func(Change) { called = true }, nil)
	if !errors.Is(err, ErrTooLarge) || called {
		t.Fatalf("diff against a snapshot whose trees hold more than it declares: %v (changes emitted: %v)", err, called)
	}
}

// TestDiffLostTree: a directory whose tree is unavailable in one snapshot
// is reported lost and not compared; everything else is, and nothing
// below it is reported changed. Without a lost callback the diff fails.
func TestDiffLostTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lost/a.txt", "a")
	write("other/b.txt", "b")
	be := mem.New()
	opts := repository.Options{CacheDir: t.TempDir(), KDF: &walkTestKDF}
	repo, err := repository.Init(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	backup := func() *repository.Snapshot {
		t.Helper()
		res, err := archiver.Backup(ctx, repo, []string{dir}, archiver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Snapshot
	}
	a := backup()
	write("lost/new.txt", "new")
	write("other/new.txt", "new")
	b := backup()

	n, err := FindNode(ctx, repo, a.File.Statement.Root, strings.TrimPrefix(dir, "/")+"/lost")
	if err != nil {
		t.Fatal(err)
	}
	e, ok := repo.Lookup(blob.Tree, *n.Subtree)
	if !ok {
		t.Fatal("tree not in the index")
	}
	if err := be.Corrupt(backend.Handle{Type: backend.Data, Name: e.Pack.String()}, func(p []byte) []byte {
		p[e.Offset+e.Length/2] ^= 1
		return p
	}); err != nil {
		t.Fatal(err)
	}
	if repo, err = repository.Open(ctx, be, []byte("pw"), opts); err != nil {
		t.Fatal(err)
	}

	var got []string
	var lost []LostTree
	_, err = Diff(ctx, repo, a, b, func(c Change) {
		if rel, ok := strings.CutPrefix(c.Path, dir); ok {
			got = append(got, c.Kind+" "+rel)
		}
	}, func(l LostTree) { lost = append(lost, l) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"+ /other/new.txt"}) {
		t.Errorf("changes %q: want /other/new.txt added and nothing below /lost", got)
	}
	if len(lost) != 1 || lost[0].Path != dir+"/lost" || lost[0].Snapshot != a || lost[0].Tree != *n.Subtree || !errors.Is(lost[0].Err, ErrTreeUnavailable) {
		t.Fatalf("lost %+v, want %s/lost of the first snapshot", lost, dir)
	}
	if _, err := Diff(ctx, repo, a, b, func(Change) {}, nil); !errors.Is(err, ErrTreeUnavailable) {
		t.Fatalf("without a lost callback: %v, want ErrTreeUnavailable", err)
	}
}
