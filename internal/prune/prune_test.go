package prune

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
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
