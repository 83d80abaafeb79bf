package forget_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

var quickKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

// commitAt commits a one-file snapshot of host "h" claiming time at.
func commitAt(t *testing.T, repo *repository.Repository, content string, at time.Time) {
	t.Helper()
	commitHost(t, repo, "h", content, at)
}

// commitHost commits a one-file snapshot of host claiming time at.
func commitHost(t *testing.T, repo *repository.Repository, host, content string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, _, err := s.SaveBlob(ctx, blob.Data, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	tree := &snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, Mode: 0o600, Size: uint64(len(content)), Content: []blob.ID{id}}}}
	tb, _ := tree.Encode()
	root, _, err := s.SaveBlob(ctx, blob.Tree, tb)
	if err != nil {
		t.Fatal(err)
	}
	refs := []snapshot.Ref{{Type: blob.Data, ID: id}, {Type: blob.Tree, ID: root}}
	if _, err := s.Commit(ctx, repository.CommitInput{Root: root, Refs: refs, Meta: snapshot.MetaHeader{HostLabel: host}, Time: at}); err != nil {
		t.Fatal(err)
	}
}

// ownerRepo makes a local repository holding seven daily owner snapshots
// (claimed times a day apart), whose files all carry one old mtime, as a
// copy of the repository would. It returns the repository opened afresh
// (no index loaded, as `cairn forget` opens it).
func ownerRepo(t *testing.T) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &quickKDF, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := repo.Now()
	for i := range 7 {
		commitAt(t, repo, "day "+string(rune('a'+i)), now.Add(-time.Duration(6-i)*24*time.Hour))
	}
	copied := now.Add(-40 * 24 * time.Hour)
	ents, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(dir, "snapshots", e.Name()), copied, copied); err != nil {
			t.Fatal(err)
		}
	}
	be2, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := repository.Open(ctx, be2, []byte("pw"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return again
}

// TestOwnerSnapshotsAgedByClaimedTime: the owner's snapshots are aged by
// the time they claim, not by their files' times, so --keep-daily 7 keeps
// seven daily snapshots of a copied repository.
func TestOwnerSnapshotsAgedByClaimedTime(t *testing.T) {
	ctx := context.Background()
	repo := ownerRepo(t)
	l, err := forget.Load(ctx, repo, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := forget.Decide(ctx, repo, l, forget.Policy{Keep: retention.Policy{Daily: 7}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if !d.Keep {
			t.Errorf("snapshot of %s removed by --keep-daily 7: %v", d.Snapshot.Time.Format(time.DateOnly), d.Reasons)
		}
	}
}

// TestSpacePolicyReadsManifests: a space-driven policy reads manifests,
// which needs the index; it loads it itself.
func TestSpacePolicyReadsManifests(t *testing.T) {
	ctx := context.Background()
	repo := ownerRepo(t)
	l, err := forget.Load(ctx, repo, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	size, err := forget.RepoSize(ctx, repo.Backend())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []forget.Policy{{MaxSize: size * 4}, {MinFree: 1, Free: func() (uint64, error) { return 1 << 40, nil }}} {
		ds, err := forget.Decide(ctx, repo, l, p)
		if err != nil {
			t.Fatalf("policy %+v: %v", p, err)
		}
		if len(ds) != 7 {
			t.Fatalf("policy %+v decided %d snapshots, want 7", p, len(ds))
		}
	}
}
