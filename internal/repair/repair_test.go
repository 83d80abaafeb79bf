package repair_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/repair"
	"github.com/cairnbackup/cairn/internal/repository"
)

var cheapKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRepairMissingPack(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	big := make([]byte, 20<<20) // more than a pack: one pack holds data only
	rand.Read(big)
	must(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "d", "big"), big, 0o644))
	must(t, os.WriteFile(filepath.Join(src, "small"), []byte("hello"), 0o644))
	be := mem.New()
	opts := repository.Options{KDF: &cheapKDF}
	repo, err := repository.Init(ctx, be, []byte("pw"), opts)
	must(t, err)
	res, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{})
	must(t, err)
	open := func() *repository.Repository {
		r, err := repository.Open(ctx, be, []byte("pw"), opts)
		must(t, err)
		return r
	}

	// A pack of data blobs only: a part of the big file's content.
	r0 := open()
	must(t, r0.LoadIndex(ctx))
	hasTree, size := map[blob.ID]bool{}, map[blob.ID]int{}
	r0.Index().Each(func(e index.Entry) bool {
		hasTree[e.Pack] = hasTree[e.Pack] || e.Type != blob.Data
		size[e.Pack] += int(e.Length)
		return true
	})
	var pick blob.ID
	for id, n := range size {
		if !hasTree[id] && n > size[pick] {
			pick = id
		}
	}
	if size[pick] == 0 {
		t.Fatal("no pack of data blobs only")
	}
	biggest := backend.FileInfo{Handle: backend.Handle{Type: backend.Data, Name: pick.String()}}
	must(t, be.Remove(ctx, biggest.Handle))

	chk, err := checker.Check(ctx, open(), checker.Options{})
	must(t, err)
	if len(chk.BadPacks) != 1 || chk.BadPacks[0] != biggest.Name {
		t.Fatalf("check found bad packs %v, want %s", chk.BadPacks, biggest.Name)
	}
	indexBefore := names(t, be, backend.Index)

	dry, err := repair.Run(ctx, open(), chk.BadPacks, repair.Options{DryRun: true})
	must(t, err)
	if got := names(t, be, backend.Index); strings.Join(got, ",") != strings.Join(indexBefore, ",") {
		t.Fatal("dry run changed the index")
	}
	for _, rep := range []*repair.Report{dry, nil} {
		if rep == nil {
			rep, err = repair.Run(ctx, open(), chk.BadPacks, repair.Options{})
			must(t, err)
			if rep.IndexWritten == 0 || rep.IndexRemoved == 0 {
				t.Errorf("index not rewritten: %+v", rep)
			}
		}
		if len(rep.Snapshots) != 1 || !strings.HasPrefix(res.Snapshot.ID.String(), rep.Snapshots[0].Snapshot) {
			t.Fatalf("affected snapshots %+v, want %s", rep.Snapshots, res.Snapshot.ID.Short())
		}
		files := rep.Snapshots[0].Files
		bigLost := false
		for _, f := range files {
			bigLost = bigLost || strings.HasSuffix(f.Path, "/d/big") && f.LostBlobs > 0 && f.LostBlobs <= f.Blobs
			if f.Dir {
				t.Errorf("a directory is reported lost, but only data was: %+v", f)
			}
		}
		if !bigLost {
			t.Fatalf("lost files %+v do not name …/d/big", files)
		}
	}

	after, err := checker.Check(ctx, open(), checker.Options{})
	must(t, err)
	for _, p := range after.Problems {
		if p.File == "data/"+biggest.Name {
			t.Errorf("check still reports the dropped pack: %v", p)
		}
	}
	if len(after.BadPacks) != 0 {
		t.Errorf("bad packs after repair: %v", after.BadPacks)
	}
	lostContent := false
	for _, p := range after.Problems {
		lostContent = lostContent || strings.Contains(p.String(), "big")
	}
	if !lostContent {
		t.Errorf("check after repair does not name the file that lost content: %v", after.Problems)
	}
}

// names lists typ's files, sorted: a backend lists in no particular order.
func names(t *testing.T, be backend.Backend, typ backend.FileType) []string {
	var out []string
	must(t, be.List(context.Background(), typ, func(fi backend.FileInfo) error {
		out = append(out, fi.Name)
		return nil
	}))
	slices.Sort(out)
	return out
}
