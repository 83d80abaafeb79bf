package server

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/datadir"
)

// enrolWriter makes a writer key and lists it in the roster as name.
func enrolWriter(t *testing.T, owner *repository.Repository, name string) *crypto.Keys {
	t.Helper()
	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddWriter(context.Background(), wm, name); err != nil {
		t.Fatal(err)
	}
	keys, err := wm.Parse()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestCommitAfterOwnerForget: the owner forgets a key's newest snapshot
// directly on storage (`cairn forget` without the server); that key's
// next commit through the server chains to the forgotten statement, and
// the server accepts it. For the owner's own key and for a writer's.
func TestCommitAfterOwnerForget(t *testing.T) {
	ts := startTest(t, Options{MaxUpload: 1 << 20})
	ctx := context.Background()
	owner, _ := ts.cairnClient("of")

	// The owner's key on the repository's files, as `cairn forget` opens it.
	direct, err := local.Open(filepath.Join(ts.data.Dir, datadir.ReposDir, "bob", "of"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := backend.LoadAll(ctx, direct, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	forget := func(s *repository.Snapshot) {
		t.Helper()
		r, err := repository.OpenWithKeys(ctx, direct, owner.Keys(), "", cfg, repository.Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ForgetSnapshot(ctx, s, "test"); err != nil {
			t.Fatal(err)
		}
	}
	chained := func(who string, next, prev *repository.Snapshot) {
		t.Helper()
		n, p := next.File.Statement, prev.File.Statement
		if n.Seq != p.Seq+1 || n.Prev != p.Hash() {
			t.Fatalf("%s: seq %d after the forgotten seq %d, or another prev", who, n.Seq, p.Seq)
		}
	}

	commit(t, owner, "owner 1")
	ts.advance(2 * time.Hour)
	o2 := commit(t, owner, "owner 2")
	forget(o2)
	ts.advance(2 * time.Hour)
	chained("owner", commit(t, owner, "owner 3"), o2)

	wkeys := enrolWriter(t, owner, "laptop")
	u, _ := url.Parse(ts.url + "/bob/of/")
	u.User = url.UserPassword("bob", pwBob)
	wbe, err := rest.Open(ctx, rest.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := repository.OpenWithKeys(ctx, wbe, wkeys, "", cfg, repository.Options{CacheDir: t.TempDir(), Now: ts.nowFn})
	if err != nil {
		t.Fatal(err)
	}
	ts.advance(2 * time.Hour)
	commit(t, writer, "writer 1")
	ts.advance(2 * time.Hour)
	w2 := commit(t, writer, "writer 2")
	forget(w2)
	ts.advance(2 * time.Hour)
	chained("writer", commit(t, writer, "writer 3"), w2)
}
