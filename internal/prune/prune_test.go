package prune

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func testRepo(t *testing.T) (*mem.Backend, *repository.Repository) {
	t.Helper()
	clk := &clocks{coord: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)}
	be := mem.NewWithClock(clk.storage)
	repo, err := repository.Init(context.Background(), be, []byte("pw"), repository.Options{KDF: &crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}, CacheDir: t.TempDir(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return be, repo
}

// commitBlobs stores live and dead blobs in one session's pack and
// commits a snapshot that reaches the live ones only.
func commitBlobs(t *testing.T, repo *repository.Repository, live, dead []string) {
	t.Helper()
	ctx := context.Background()
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var refs []snapshot.Ref
	for _, c := range live {
		id, _, err := s.SaveBlob(ctx, blob.Data, []byte(c))
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, snapshot.Ref{Type: blob.Data, ID: id})
	}
	for _, c := range dead {
		if _, _, err := s.SaveBlob(ctx, blob.Data, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Commit(ctx, repository.CommitInput{Root: refs[0].ID, Refs: snapshot.SortRefs(refs), Time: repo.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// forgetSeq forgets the snapshot with statement sequence number seq.
func forgetSeq(t *testing.T, repo *repository.Repository, seq uint64) {
	t.Helper()
	ctx := context.Background()
	snaps, _, err := repo.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if s.File.Statement.Seq == seq {
			if err := repo.ForgetSnapshot(ctx, s, "test"); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no snapshot %d", seq)
}

// TestPackStatsAsBefore: the pack statistics, counted in one walk of the
// index beside the live set, are what a binary search of the live set per
// index entry counted: packs wholly live, partly live, dead.
func TestPackStatsAsBefore(t *testing.T) {
	ctx := context.Background()
	_, repo := testRepo(t)
	commitBlobs(t, repo, []string{"a1", "a2", "a3"}, nil)
	commitBlobs(t, repo, []string{"b1"}, []string{"b2", "b3", "b4"})
	commitBlobs(t, repo, []string{"c1", "a1"}, []string{"c2"})
	commitBlobs(t, repo, []string{"d1", "d2"}, nil)
	forgetSeq(t, repo, 4)
	p := &pruner{repo: repo, be: repo.Backend(), rep: &Report{}, fragments: map[blob.ID][]string{}, stored: map[blob.ID]int64{}}
	if err := p.load(ctx); err != nil {
		t.Fatal(err)
	}
	snaps, _, err := repo.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.live, err = Mark(ctx, repo, snaps); err != nil {
		t.Fatal(err)
	}
	p.packStats()
	want := map[blob.ID]packStat{}
	repo.Index().Each(func(e index.Entry) bool {
		st := want[e.Pack]
		st.total += uint64(e.Length)
		st.entries++
		if servesBefore(p.live, e) {
			st.live += uint64(e.Length)
			st.liveEntries++
		}
		want[e.Pack] = st
		return true
	})
	got := map[blob.ID]packStat{}
	for id, st := range p.stats {
		got[id] = *st
	}
	if !maps.Equal(got, want) {
		t.Fatalf("pack statistics %v, want %v", got, want)
	}
	var dead, partly, whole int
	for _, st := range got {
		switch {
		case st.liveEntries == 0:
			dead++
		case st.liveEntries < st.entries:
			partly++
		default:
			whole++
		}
	}
	if dead == 0 || partly == 0 || whole == 0 || p.rep.Packs != len(want) {
		t.Fatalf("%d dead, %d partly live, %d live packs (report: %d packs); the test needs each kind", dead, partly, whole, p.rep.Packs)
	}
}

// storedIndex reads every valid index fragment on storage (name →
// packs) and lists the stored packs.
func storedIndex(t *testing.T, repo *repository.Repository) (frags map[string][]blob.ID, packs map[blob.ID]bool) {
	t.Helper()
	ctx := context.Background()
	frags, packs = map[string][]blob.ID{}, map[blob.ID]bool{}
	be := repo.Backend()
	if err := be.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		f, err := repo.LoadIndexFile(ctx, fi.Name)
		if errors.Is(err, repository.ErrInvalidFragment) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range f.Packs {
			frags[fi.Name] = append(frags[fi.Name], p.Pack)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		id, _ := blob.ParseID(fi.Name)
		packs[id] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return frags, packs
}

// consistentIndex fails unless the fragments on storage list exactly the
// stored packs, and the repository's account of its fragments is what
// storage holds.
func consistentIndex(t *testing.T, repo *repository.Repository) map[string][]blob.ID {
	t.Helper()
	frags, packs := storedIndex(t, repo)
	listed := map[blob.ID]bool{}
	for _, ps := range frags {
		for _, p := range ps {
			listed[p] = true
		}
	}
	if !maps.Equal(listed, packs) {
		t.Fatalf("the index fragments list %d packs, %d are stored: %v against %v", len(listed), len(packs), listed, packs)
	}
	known, _ := repo.IndexFragments()
	if !maps.EqualFunc(known, frags, slices.Equal) {
		t.Fatalf("the repository knows the fragments %v, storage holds %v", known, frags)
	}
	return frags
}

// combineFragments rewrites every index fragment on storage into one,
// through repo.
func combineFragments(t *testing.T, repo *repository.Repository) {
	t.Helper()
	ctx := context.Background()
	frags, _ := storedIndex(t, repo)
	var all []pack.IndexPack
	for n := range frags {
		f, err := repo.LoadIndexFile(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Packs {
			all = append(all, p.IndexPack)
		}
	}
	if _, err := repo.WriteIndexFragments(ctx, all); err != nil {
		t.Fatal(err)
	}
	for n := range frags {
		if err := repo.RemoveFile(ctx, backend.Handle{Type: backend.Index, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPruneSeesOthersFragments: fragments stored and removed by another
// process after this one loaded the index are seen by its prune: a
// fragment gone is not counted as listing its packs, one new is read
// (the rewrite of a sweep and a plan name it).
func TestPruneSeesOthersFragments(t *testing.T) {
	ctx := context.Background()
	be, other := testRepo(t)
	commitBlobs(t, other, []string{"a"}, nil)
	commitBlobs(t, other, []string{"b"}, nil)
	open := func() *repository.Repository {
		r, err := repository.Open(ctx, be, []byte("pw"), repository.Options{CacheDir: t.TempDir(), Now: other.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.LoadIndex(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Rewritten by the other process: the fragments this one loaded are
	// gone, the one listing their packs now is new to it.
	r := open()
	combineFragments(t, other)
	forgetSeq(t, other, 1)
	rep, err := Run(ctx, r, Options{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 1 || rep.IndexWritten != 1 || rep.IndexRemoved != 1 {
		t.Fatalf("%+v, want one pack deleted and the other process's fragment rewritten", rep)
	}
	frags, packs := storedIndex(t, r)
	if len(frags) != 1 || len(packs) != 1 {
		t.Fatalf("fragments %v for packs %v, want one listing the kept pack", frags, packs)
	}
	for _, ps := range frags {
		if len(ps) != 1 || !packs[ps[0]] {
			t.Fatalf("fragments %v for packs %v, want one listing the kept pack", frags, packs)
		}
	}

	// A backup running in the other process, flushed after the load: its
	// pack is not in the loaded index (unindexed, condemned with a grace
	// period), and the plan names the fragment that lists it.
	r = open()
	s, err := other.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SaveBlob(ctx, blob.Data, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, _ := storedIndex(t, other)
	rep, err = Run(ctx, r, Options{Grace: DefaultGrace})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unindexed != 1 || len(rep.Condemned) != 1 || rep.PlansPending != 1 {
		t.Fatalf("%+v, want the new pack unindexed and condemned", rep)
	}
	plans, _, err := r.Plans(ctx)
	if err != nil || len(plans) != 1 {
		t.Fatalf("%d plans, %v", len(plans), err)
	}
	condemned, _ := blob.ParseID(rep.Condemned[0])
	var named string
	for n, ps := range before {
		if slices.Contains(ps, condemned) {
			named = n
		}
	}
	if named == "" || !slices.Equal(plans[0].Indexes, []string{named}) {
		t.Fatalf("the plan names the fragments %v, want the new one (%s)", plans[0].Indexes, named)
	}
}

// TestSweepRewritesFragments: a sweep rewrites the index fragment that
// lists a deleted pack beside live ones (the fragment-to-pack
// bookkeeping comes from the index's one load), and a second prune by the
// same repository finds the fragments the first one and a backup wrote
// since, and rewrites them in turn. Storage's index then lists exactly the
// stored packs, and a fresh reader loads it whole.
func TestSweepRewritesFragments(t *testing.T) {
	ctx := context.Background()
	_, repo := testRepo(t)
	commitBlobs(t, repo, []string{"a"}, nil)
	commitBlobs(t, repo, []string{"b"}, nil)
	commitBlobs(t, repo, []string{"c"}, nil)
	if err := repo.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	combineFragments(t, repo) // one fragment listing the three sessions' packs
	if frags := consistentIndex(t, repo); len(frags) != 1 {
		t.Fatalf("%d fragments, want the one", len(frags))
	}

	forgetSeq(t, repo, 1)
	rep, err := Run(ctx, repo, Options{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 1 || rep.IndexWritten != 1 || rep.IndexRemoved != 1 {
		t.Fatalf("first prune: %+v, want one pack deleted and its fragment rewritten", rep)
	}
	if frags := consistentIndex(t, repo); len(frags) != 1 {
		t.Fatalf("after the first prune: fragments %v, want one listing the kept packs", frags)
	}

	commitBlobs(t, repo, []string{"d"}, nil)
	forgetSeq(t, repo, 2)
	rep, err = Run(ctx, repo, Options{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 1 || rep.IndexWritten != 1 || rep.IndexRemoved != 1 {
		t.Fatalf("second prune: %+v, want one pack deleted and the first prune's fragment rewritten", rep)
	}
	if frags := consistentIndex(t, repo); len(frags) != 2 {
		t.Fatalf("after the second prune: fragments %v, want the rewritten one and the backup's", frags)
	}

	// A fresh reader: the whole index loads, every kept snapshot's blobs
	// in it, nothing left to prune.
	fresh, err := repository.Open(ctx, repo.Backend(), []byte("pw"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Run(ctx, fresh, Options{Grace: 0, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Condemned) != 0 || rep.Unindexed != 0 || len(rep.Notes) != 0 || rep.Snapshots != 2 {
		t.Fatalf("a fresh prune after two sweeps: %+v", rep)
	}
	for _, c := range []string{"c", "d"} {
		id := fresh.BlobID(blob.Data, []byte(c))
		if _, ok := fresh.Index().Lookup(id, blob.Data); !ok {
			t.Fatalf("blob %q of a kept snapshot is not in the index", c)
		}
	}
}

// TestPruneCorruptFragment: a fragment that does not verify is skipped
// and noted; its pack counts as unindexed (dead space, condemned) and the
// fragment itself is left alone. If it lists what a kept snapshot needs,
// prune refuses.
func TestPruneCorruptFragment(t *testing.T) {
	ctx := context.Background()
	be, repo := testRepo(t)
	commitBlobs(t, repo, []string{"a"}, nil)
	commitBlobs(t, repo, []string{"b"}, nil)
	if err := repo.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	frags, _ := storedIndex(t, repo)
	fragmentOf := func(content string) string {
		e, ok := repo.Index().Lookup(repo.BlobID(blob.Data, []byte(content)), blob.Data)
		if !ok {
			t.Fatalf("blob %q not indexed", content)
		}
		for n, ps := range frags {
			if slices.Contains(ps, e.Pack) {
				return n
			}
		}
		t.Fatalf("no fragment lists blob %q", content)
		return ""
	}
	corrupt := func(name string) backend.Handle {
		h := backend.Handle{Type: backend.Index, Name: name}
		if err := be.Corrupt(h, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }); err != nil {
			t.Fatal(err)
		}
		return h
	}
	open := func() *repository.Repository {
		r, err := repository.Open(ctx, be, []byte("pw"), repository.Options{CacheDir: t.TempDir(), Now: repo.Now})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// The forgotten snapshot's fragment.
	forgetSeq(t, repo, 1)
	bad := fragmentOf("a")
	h := corrupt(bad)
	rep, err := Run(ctx, open(), Options{Grace: DefaultGrace})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Notes) != 1 || !strings.HasPrefix(rep.Notes[0], "ignored ") || !strings.Contains(rep.Notes[0], repository.ErrInvalidFragment.Error()) || !strings.Contains(rep.Notes[0], bad) {
		t.Fatalf("notes %q, want the corrupt fragment %s ignored", rep.Notes, bad)
	}
	if rep.Unindexed != len(frags[bad]) || len(rep.Condemned) != len(frags[bad]) || !slices.Contains(rep.Condemned, frags[bad][0].String()) {
		t.Fatalf("%+v, want the corrupt fragment's pack unindexed and condemned", rep)
	}
	if len(rep.Deleted) != 0 || rep.IndexRemoved != 0 || rep.IndexWritten != 0 || rep.PlansPending != 1 {
		t.Fatalf("%+v, want nothing deleted or rewritten before the grace period", rep)
	}
	if _, err := be.Stat(ctx, h); err != nil {
		t.Fatalf("the corrupt fragment: %v, want it left alone", err)
	}

	// The kept snapshot's: what it reaches cannot be known.
	corrupt(fragmentOf("b"))
	_, stored := storedIndex(t, repo)
	if _, err := Run(ctx, open(), Options{Grace: 0}); err == nil || !strings.Contains(err.Error(), "is not in the index") {
		t.Fatalf("prune with a kept snapshot's fragment corrupt: %v, want a refusal", err)
	}
	if _, after := storedIndex(t, repo); !maps.Equal(after, stored) {
		t.Fatal("packs deleted by a refused prune")
	}
}
