package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// packOf returns the pack the owner's index puts a blob in.
func packOf(t *testing.T, repo *repository.Repository, id blob.ID) string {
	t.Helper()
	e, ok := repo.Lookup(blob.Data, id)
	if !ok {
		t.Fatalf("blob %s not indexed", id.Short())
	}
	return e.Pack.String()
}

func exists(t *testing.T, be backend.Backend, h backend.Handle) bool {
	t.Helper()
	_, err := be.Stat(context.Background(), h)
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// commitFile commits a snapshot of one file whose content is the given
// blobs; it uploads only the blobs in upload (and the tree), so the others
// must already be stored.
func commitFile(ctx context.Context, repo *repository.Repository, content [][]byte, upload map[int]bool) (*repository.Snapshot, error) {
	sess, err := repo.NewSession(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	var ids []blob.ID
	var refs []snapshot.Ref
	size := 0
	for i, c := range content {
		id := repo.BlobID(blob.Data, c)
		if upload[i] {
			if id, _, err = sess.SaveBlob(ctx, blob.Data, c); err != nil {
				return nil, err
			}
		}
		ids = append(ids, id)
		refs = append(refs, snapshot.Ref{Type: blob.Data, ID: id})
		size += len(c)
	}
	tree := &snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, Mode: 0o600, Size: uint64(size)}}}
	tree.Nodes[0].SetContent(ids, sha256.Sum256(bytes.Join(content, nil)))
	tb, err := tree.Encode()
	if err != nil {
		return nil, err
	}
	root, _, err := sess.SaveBlob(ctx, blob.Tree, tb)
	if err != nil {
		return nil, err
	}
	refs = append(refs, snapshot.Ref{Type: blob.Tree, ID: root})
	return sess.Commit(ctx, repository.CommitInput{Root: root, Refs: refs, Time: repo.Now()})
}

// planBlind is a client's view of storage without condemnation plans,
// which keeps the snapshot file it would upload for the test to send: a
// client that raced a prune, or ignores plans (over REST a client cannot
// age a plan anyway: listings carry no storage time, so the cairn client
// refuses such commits itself). Only the server's check stands between it
// and a lost blob.
type planBlind struct {
	backend.Backend
	snap []byte
}

func (b *planBlind) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.Plans {
		return nil
	}
	return b.Backend.List(ctx, t, fn)
}

func (b *planBlind) Save(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
	if h.Type != backend.Snapshots {
		return b.Backend.Save(ctx, h, rd)
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(rd)
	b.snap = buf.Bytes()
	return err
}

// blindClient opens repo's repository again through a planBlind view.
func blindClient(t *testing.T, repo *repository.Repository) (*repository.Repository, *planBlind) {
	t.Helper()
	ctx := context.Background()
	cfg, err := backend.LoadAll(ctx, repo.Backend(), backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	pb := &planBlind{Backend: repo.Backend()}
	r, err := repository.OpenWithKeys(ctx, pb, repo.Keys(), "", cfg, repository.Options{CacheDir: t.TempDir(), Now: repo.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r, pb
}

// TestCommitResurrectsCondemned, end to end through a server on loopback
// (R11, R12): a commit that names blobs in a pack a prune condemned (plan
// written, grace not over) is accepted, and the next sweep keeps that pack
// because its fresh reachability pass sees the new snapshot, which then
// restores byte-identically. A commit that names a blob whose pack was
// swept is refused with 409 missing-objects naming it, and nothing is
// stored.
func TestCommitResurrectsCondemned(t *testing.T) {
	const grace = 3 * time.Second
	ticks := make(chan time.Time)
	ts := startTest(t, Options{MaintainTicks: ticks})
	ctx := context.Background()
	repo, be := ts.cairnClient("rz")
	old, other, fresh := []byte("old content, condemned then resurrected"), []byte("other content, swept"), []byte("fresh content")
	if _, err := commitFile(ctx, repo, [][]byte{old}, map[int]bool{0: true}); err != nil {
		t.Fatal(err)
	}
	ts.advance(2 * time.Hour)
	if _, err := commitFile(ctx, repo, [][]byte{other}, map[int]bool{0: true}); err != nil {
		t.Fatal(err)
	}
	oldPack := backend.Handle{Type: backend.Data, Name: packOf(t, repo, repo.BlobID(blob.Data, old))}
	otherPack := backend.Handle{Type: backend.Data, Name: packOf(t, repo, repo.BlobID(blob.Data, other))}

	// Maintenance keeps the last snapshot: the first is forgotten and its
	// pack condemned.
	if err := ts.data.State.SetPolicy(ctx, "bob", policy.Policy{Keep: retention.Policy{Last: 1}, GroupBy: policy.DefaultGroupBy, Every: time.Hour, Grace: grace}); err != nil {
		t.Fatal(err)
	}
	ts.advance(2 * time.Hour)
	ticks <- ts.nowFn()
	if j := waitJobs(t, ts, "bob", 1)[0]; j.Error != "" || j.SnapshotsRemoved != 1 || j.PacksDeleted != 0 {
		t.Fatalf("job 1: %+v", j)
	}
	var plans []string
	be.List(ctx, backend.Plans, func(fi backend.FileInfo) error { plans = append(plans, fi.Name); return nil })
	if len(plans) != 1 || !exists(t, be, oldPack) {
		t.Fatalf("after job 1: plans %v, old pack stored: %v", plans, exists(t, be, oldPack))
	}

	// A commit naming the condemned blob without uploading it again.
	ts.advance(2 * time.Hour)
	blind, pb := blindClient(t, repo)
	if _, err := commitFile(ctx, blind, [][]byte{old, fresh}, map[int]bool{1: true}); err != nil {
		t.Fatal(err)
	}
	if status, code, msg := ts.put("rz", backend.Snapshots, pb.snap); status != 200 {
		t.Fatalf("commit naming a condemned blob: %d %s %s", status, code, msg)
	}
	snapID, _ := blob.ParseID(backend.NameOf(pb.snap))

	// Past the grace period the sweep keeps the pack; the second
	// snapshot is forgotten now and its pack condemned.
	agePlans(t, ts, "bob/rz", grace+time.Second)
	ts.advance(2 * time.Hour)
	ticks <- ts.nowFn()
	if j := waitJobs(t, ts, "bob", 2)[0]; j.Error != "" || j.SnapshotsRemoved != 1 {
		t.Fatalf("job 2: %+v", j)
	}
	if !exists(t, be, oldPack) {
		t.Fatal("the sweep deleted a pack the new snapshot needs")
	}
	if exists(t, be, backend.Handle{Type: backend.Plans, Name: plans[0]}) {
		t.Fatal("the first plan was not swept")
	}
	restoreAndCompare(t, repo, snapID, append(append([]byte(nil), old...), fresh...))

	// Past the grace again the other pack is swept; a commit that still
	// names its blob is refused and stores nothing.
	agePlans(t, ts, "bob/rz", grace+time.Second)
	ts.advance(2 * time.Hour)
	ticks <- ts.nowFn()
	if j := waitJobs(t, ts, "bob", 3)[0]; j.Error != "" || j.PacksDeleted == 0 {
		t.Fatalf("job 3: %+v", j)
	}
	if exists(t, be, otherPack) {
		t.Fatal("the other pack was not swept")
	}
	before := count(t, be, backend.Snapshots)
	ts.advance(2 * time.Hour)
	ghost := repo.BlobID(blob.Data, other)
	blind, pb = blindClient(t, repo)
	if _, err := commitFile(ctx, blind, [][]byte{other, fresh}, map[int]bool{1: true}); err != nil {
		t.Fatal(err)
	}
	status, code, msg := ts.put("rz", backend.Snapshots, pb.snap)
	if status != 409 || code != codeMissing || !strings.Contains(msg, "data:"+ghost.String()[:12]) {
		t.Fatalf("commit naming a swept blob: %d %s %s", status, code, msg)
	}
	if n := count(t, be, backend.Snapshots); n != before {
		t.Fatalf("%d snapshots after a refused commit, want %d", n, before)
	}
	if !strings.Contains(ts.logs.String(), codeMissing) {
		t.Fatal("refusal not logged")
	}
}

// agePlans moves the storage time of every plan of repo back by d: a
// plan's grace runs from its storage time (R12), so this passes the grace
// without waiting for it.
func agePlans(t *testing.T, ts *testServer, repo string, d time.Duration) {
	t.Helper()
	dir := filepath.Join(ts.data.Dir, datadir.ReposDir, filepath.FromSlash(repo), string(backend.Plans))
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		return os.Chtimes(p, fi.ModTime().Add(-d), fi.ModTime().Add(-d))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// restoreAndCompare restores a snapshot's file "f" with a freshly opened
// owner repository and compares it with want.
func restoreAndCompare(t *testing.T, repo *repository.Repository, id blob.ID, want []byte) {
	t.Helper()
	dir := t.TempDir()
	restoreAll(t, repo, id, dir)
	got, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("restored %q (%v), want %q", got, err, want)
	}
}

// restoreAll restores a whole snapshot into dir with a freshly opened
// repository of owner's keys.
func restoreAll(t *testing.T, repo *repository.Repository, id blob.ID, dir string) {
	t.Helper()
	ctx := context.Background()
	be := repo.Backend()
	cfg, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := repository.OpenWithKeys(ctx, be, repo.Keys(), "", cfg, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snaps, errs, err := owner.Snapshots(ctx)
	if err != nil || len(errs) > 0 {
		t.Fatal(err, errs)
	}
	var snap *repository.Snapshot
	for _, s := range snaps {
		if s.ID == id {
			snap = s
		}
	}
	if snap == nil {
		t.Fatalf("snapshot %s not stored", id.Short())
	}
	if _, err := restorer.Restore(ctx, owner, snap, "", restorer.Options{Target: dir}); err != nil {
		t.Fatal(err)
	}
}
