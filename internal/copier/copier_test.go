package copier_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/copier"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/walker"
)

var fastKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

func newRepo(t *testing.T) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	be, err := local.Create(ctx, filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{CacheDir: t.TempDir(), KDF: &fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func snapshots(t *testing.T, repo *repository.Repository) []*repository.Snapshot {
	t.Helper()
	snaps, errs, err := repo.Snapshots(context.Background())
	if err != nil || len(errs) > 0 {
		t.Fatal(err, errs)
	}
	return snaps
}

// dump reads one file of a snapshot.
func dump(t *testing.T, repo *repository.Repository, s *repository.Snapshot, path string) []byte {
	t.Helper()
	ctx := repository.ReadFor(context.Background(), s.Signer())
	n, err := walker.FindNode(ctx, repo, s.File.Statement.Root, path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := restorer.Dump(ctx, repo, n, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	big := make([]byte, 5<<20)
	rand.Read(big)
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "big"), big, 0o644)
	os.WriteFile(filepath.Join(src, "small"), []byte("small"), 0o600)
	a, b := newRepo(t), newRepo(t)
	if _, err := archiver.Backup(ctx, a, []string{src}, archiver.Options{Tags: []string{"orig"}}); err != nil {
		t.Fatal(err)
	}
	orig := snapshots(t, a)[0]
	bigPath := strings.TrimPrefix(filepath.Join(src, "d", "big"), "/")

	// Into another repository: new IDs, same content, the origin named.
	res, err := copier.Copy(ctx, a, orig, b, copier.Options{Tags: orig.Meta.Tags, Time: orig.Time()})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsNew == 0 || res.Snapshot.File.Statement.Root == orig.File.Statement.Root {
		t.Errorf("copy stored %d blobs, root %s (source %s)", res.BlobsNew, res.Snapshot.File.Statement.Root.Short(), orig.File.Statement.Root.Short())
	}
	copied := snapshots(t, b)
	if len(copied) != 1 || !bytes.Equal(dump(t, b, copied[0], bigPath), big) {
		t.Fatal("the copy does not hold the source's content")
	}
	want := copier.OriginOf(a.Keys().RepoID, orig)
	if copied[0].Owner.Origin == nil || *copied[0].Owner.Origin != want || copier.Find(b.Keys().RepoID, copied, want) == nil {
		t.Errorf("origin %+v, want %+v", copied[0].Owner.Origin, want)
	}
	if !copied[0].Time().Equal(orig.Time()) || copied[0].Meta.Tags[0] != "orig" || copied[0].Owner.Summary != orig.Owner.Summary {
		t.Errorf("copied snapshot %+v %+v", copied[0].Meta, copied[0].Owner)
	}

	// Exists stops the commit: nothing new in the destination.
	root := copied[0].File.Statement.Root
	res, err = copier.Copy(ctx, a, orig, b, copier.Options{Time: orig.Time(), Exists: func(r blob.ID) *repository.Snapshot {
		if r == root {
			return copied[0]
		}
		return nil
	}})
	if err != nil || res.Existing != copied[0] || res.BlobsNew != 0 || len(snapshots(t, b)) != 1 {
		t.Fatalf("second copy: %+v %v", res, err)
	}

	// Within a repository (tag): same trees, nothing uploaded, and the
	// origin stays the first snapshot's.
	var packsBefore int
	a.Backend().List(ctx, backend.Data, func(backend.FileInfo) error { packsBefore++; return nil })
	res, err = copier.Copy(ctx, a, orig, a, copier.Options{Tags: []string{"new"}, Time: orig.Time()})
	if err != nil {
		t.Fatal(err)
	}
	var packsAfter int
	a.Backend().List(ctx, backend.Data, func(backend.FileInfo) error { packsAfter++; return nil })
	if res.BlobsNew != 0 || packsAfter != packsBefore || res.Snapshot.File.Statement.Root != orig.File.Statement.Root {
		t.Errorf("re-signing in place stored %d blobs (%d → %d packs), root %s", res.BlobsNew, packsBefore, packsAfter, res.Snapshot.File.Statement.Root.Short())
	}
	if *res.Snapshot.Owner.Origin != want {
		t.Errorf("re-tag origin %+v, want %+v", res.Snapshot.Owner.Origin, want)
	}

	// The walk is bounded like every other.
	exp := walker.NewExpander(a)
	exp.Max = 2
	if _, err := copier.Copy(ctx, a, orig, b, copier.Options{Time: orig.Time(), Expander: exp}); !errors.Is(err, walker.ErrTooLarge) {
		t.Errorf("copy over the expansion bound: %v", err)
	}
}
