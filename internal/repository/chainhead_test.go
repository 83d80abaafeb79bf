package repository_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

var quickKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

// commitOne commits a snapshot of one file holding content.
func commitOne(t *testing.T, repo *repository.Repository, content string) *repository.Snapshot {
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
	tb, err := tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := s.SaveBlob(ctx, blob.Tree, tb)
	if err != nil {
		t.Fatal(err)
	}
	refs := []snapshot.Ref{{Type: blob.Data, ID: id}, {Type: blob.Tree, ID: root}}
	// A host label the key is bound to (R25): a writer's roster name.
	meta := snapshot.MetaHeader{HostLabel: repo.HostLabel("test-host")}
	snap, err := s.Commit(ctx, repository.CommitInput{Root: root, Refs: refs, Meta: meta, Time: repo.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// wantChained fails unless next is the statement after prev.
func wantChained(t *testing.T, who string, next, prev *repository.Snapshot) {
	t.Helper()
	n, p := next.File.Statement, prev.File.Statement
	if n.Seq != p.Seq+1 || n.Prev != p.Hash() {
		t.Fatalf("%s: new statement seq %d prev %x, want seq %d prev %x (the forgotten statement)", who, n.Seq, n.Prev[:6], p.Seq+1, p.Hash())
	}
}

// TestCommitChainsToForgotten, in direct mode on a local repository: when
// the owner forgets a key's newest snapshot, that key's next commit chains
// to the forgotten statement (its tombstone), so the chain has no fork and
// check finds nothing wrong. For the owner's own key and for a writer key,
// which reads no metadata; the writer also after losing its cache, and
// again after a second forget (tombstones it read before come from its
// cache).
func TestCommitChainsToForgotten(t *testing.T) {
	ctx := context.Background()
	be, err := local.Create(ctx, filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	owner, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &quickKDF, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	commitOne(t, owner, "owner 1")
	o2 := commitOne(t, owner, "owner 2")
	if err := owner.ForgetSnapshot(ctx, o2, "test"); err != nil {
		t.Fatal(err)
	}
	wantChained(t, "owner", commitOne(t, owner, "owner 3"), o2)

	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddWriter(ctx, wm, "laptop"); err != nil {
		t.Fatal(err)
	}
	wkeys, err := wm.Parse()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	openWriter := func(cache string) *repository.Repository {
		t.Helper()
		w, err := repository.OpenWithKeys(ctx, be, wkeys, "", cfg, repository.Options{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	cache := t.TempDir()
	w := openWriter(cache)
	commitOne(t, w, "writer 1")
	w2 := commitOne(t, w, "writer 2")
	if err := owner.ForgetSnapshot(ctx, w2, "test"); err != nil {
		t.Fatal(err)
	}
	w3 := commitOne(t, w, "writer 3")
	wantChained(t, "writer", w3, w2)
	if err := owner.ForgetSnapshot(ctx, w3, "test"); err != nil {
		t.Fatal(err)
	}
	w4 := commitOne(t, openWriter(t.TempDir()), "writer 4")
	wantChained(t, "writer with a new cache", w4, w3)
	if err := owner.ForgetSnapshot(ctx, w4, "test"); err != nil {
		t.Fatal(err)
	}
	w5 := commitOne(t, w, "writer 5") // its cache has read the first tombstones
	if w5.File.Statement.Seq != 5 {
		t.Fatalf("writer's fifth statement has seq %d", w5.File.Statement.Seq)
	}

	rep, err := checker.Check(ctx, owner, checker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("check: %s", p)
	}
}
