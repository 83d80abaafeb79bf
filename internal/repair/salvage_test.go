package repair_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
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
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
)

// salvageFixture is a snapshot of 8 directories of 40 small files each.
type salvageFixture struct {
	be   *mem.Backend
	src  string
	snap *repository.Snapshot
	opts repository.Options
}

func newSalvageFixture(t *testing.T) *salvageFixture { return newSalvageFixtureBy(t, false) }

// newSalvageFixtureBy makes the fixture's snapshot with the owner key or,
// with writer, with a writer key the owner enrolled (its packs are of the
// writer's domain).
func newSalvageFixtureBy(t *testing.T, writer bool) *salvageFixture {
	ctx := context.Background()
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for d := range 8 {
		dir := filepath.Join(src, fmt.Sprintf("d%d", d))
		must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
		for f := range 40 {
			buf := make([]byte, 1000+rng.IntN(7000))
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", f)), buf, 0o644))
		}
		must(t, os.WriteFile(filepath.Join(dir, "sub", "x"), []byte(dir), 0o644))
	}
	f := &salvageFixture{be: mem.New(), src: src, opts: repository.Options{KDF: &cheapKDF}}
	repo, err := repository.Init(ctx, f.be, []byte("pw"), f.opts)
	must(t, err)
	if writer {
		wm, err := repo.NewKeyMaterial(crypto.RoleWriter)
		must(t, err)
		must(t, repo.AddWriter(ctx, wm, "laptop"))
		keys, err := wm.Parse()
		must(t, err)
		cfg, err := backend.LoadAll(ctx, f.be, backend.Handle{Type: backend.Config, Name: "config"})
		must(t, err)
		repo, err = repository.OpenWithKeys(ctx, f.be, keys, "", cfg, repository.Options{CacheDir: t.TempDir()})
		must(t, err)
	}
	res, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{})
	must(t, err)
	f.snap = res.Snapshot
	return f
}

func (f *salvageFixture) open(t *testing.T) *repository.Repository {
	r, err := repository.Open(context.Background(), f.be, []byte("pw"), f.opts)
	must(t, err)
	must(t, r.LoadIndex(context.Background()))
	return r
}

// corrupt flips 4 bytes in the middle of the stored copy of blob (t, id)
// and returns that copy.
func (f *salvageFixture) corrupt(t *testing.T, typ blob.Type, id blob.ID) index.Entry {
	e, ok := f.open(t).Lookup(typ, id)
	if !ok {
		t.Fatalf("%s %s not indexed", typ, id.Short())
	}
	must(t, f.be.Corrupt(backend.Handle{Type: backend.Data, Name: e.Pack.String()}, func(b []byte) []byte {
		for i := range 4 {
			b[int(e.Offset+e.Length/2)+i] ^= 0x5a
		}
		return b
	}))
	return e
}

func (f *salvageFixture) node(t *testing.T, rel string) *snapshot.Node {
	r := f.open(t)
	n, err := walker.FindNode(context.Background(), r, f.snap.File.Statement.Root, strings.TrimPrefix(filepath.Join(f.src, rel), "/"))
	must(t, err)
	return n
}

// repairAndCheck checks with ReadData, repairs (dry, then for real) and
// returns the report and the check after.
func (f *salvageFixture) repairAndCheck(t *testing.T, damaged index.Entry) (*repair.Report, *checker.Report) {
	ctx := context.Background()
	chk, err := checker.Check(ctx, f.open(t), checker.Options{ReadData: true})
	must(t, err)
	if !slices.Equal(chk.BadPacks, []string{damaged.Pack.String()}) {
		t.Fatalf("bad packs %v, want %s", chk.BadPacks, damaged.Pack)
	}
	dry, err := repair.Run(ctx, f.open(t), chk.BadPacks, repair.Options{DryRun: true})
	must(t, err)
	if len(dry.NewPacks) != 0 || dry.Repacked == 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	rep, err := repair.Run(ctx, f.open(t), chk.BadPacks, repair.Options{})
	must(t, err)
	if rep.Repacked != dry.Repacked || rep.LostBlobs != dry.LostBlobs || fmt.Sprint(rep.Snapshots) != fmt.Sprint(dry.Snapshots) {
		t.Errorf("dry run %+v differs from the repair %+v", dry, rep)
	}
	if len(rep.Packs) != 1 || rep.Packs[0].Lost != 1 || rep.Packs[0].Salvaged != rep.Packs[0].Blobs-1 || rep.LostBlobs != 1 {
		t.Fatalf("4 damaged bytes should lose exactly one blob: %+v", rep.Packs)
	}
	// The salvaged blobs are in new packs of the damaged pack's domain,
	// and the damaged pack is indexed no more.
	r := f.open(t)
	moved := 0
	r.Index().Each(func(e index.Entry) bool {
		if e.Pack == damaged.Pack {
			t.Errorf("damaged pack still indexed: %+v", e)
		}
		if slices.Contains(rep.NewPacks, e.Pack.String()) {
			moved++
			if e.Domain != damaged.Domain {
				t.Errorf("salvaged %s %s repacked into domain %s, its pack's is %s", e.Type, e.ID.Short(), e.Domain.Short(), damaged.Domain.Short())
			}
		}
		return true
	})
	if moved != rep.Repacked {
		t.Errorf("%d blobs in the new packs, %d repacked", moved, rep.Repacked)
	}
	after, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	must(t, err)
	if len(after.BadPacks) != 0 {
		t.Errorf("bad packs after repair: %v", after.BadPacks)
	}
	return rep, after
}

// restoreAll restores the snapshot and returns its warnings and the
// relative paths of the files restored identical to the source.
func (f *salvageFixture) restoreAll(t *testing.T) ([]string, map[string]bool) {
	target := t.TempDir()
	r := f.open(t)
	res, err := restorer.Restore(context.Background(), r, f.snap, "", restorer.Options{Target: target})
	must(t, err)
	same := map[string]bool{}
	must(t, filepath.WalkDir(f.src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(target, p))
		if err == nil && bytes.Equal(got, want) {
			rel, _ := filepath.Rel(f.src, p)
			same[rel] = true
		}
		return nil
	}))
	return res.Warnings, same
}

// TestSalvageDataBlob: 4 bytes damaged in one file's content lose that
// file only; the rest of its pack is salvaged.
func TestSalvageDataBlob(t *testing.T) {
	f := newSalvageFixture(t)
	victim := f.node(t, "d3/f17")
	damaged := f.corrupt(t, blob.Data, victim.Content[0])
	rep, after := f.repairAndCheck(t, damaged)
	if len(rep.Snapshots) != 1 || len(rep.Snapshots[0].Files) != 1 {
		t.Fatalf("affected: %+v", rep.Snapshots)
	}
	lf := rep.Snapshots[0].Files[0]
	if lf.Path != filepath.Join(f.src, "d3/f17") || lf.Dir || lf.LostBlobs != 1 || lf.Blobs != 1 {
		t.Fatalf("lost file %+v", lf)
	}
	for _, p := range after.Problems {
		if !strings.Contains(p.String(), victim.Content[0].Short()) {
			t.Errorf("check after repair reports what was not lost: %v", p)
		}
	}
	if len(after.Problems) != 1 || !strings.Contains(after.Problems[0].String(), "d3/f17") {
		t.Errorf("check after repair: %v, want one problem naming the lost file", after.Problems)
	}
	warnings, same := f.restoreAll(t)
	if len(same) != 8*41-1 || same["d3/f17"] {
		t.Errorf("%d files restored identical, want all but d3/f17", len(same))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "d3/f17") {
		t.Errorf("restore warnings %q", warnings)
	}
}

// TestSalvageTreeBlob: 4 bytes damaged in a directory's tree lose that
// directory's listing (and so everything below it); the data blobs of its
// files, in the same or other packs, are kept, and every other path
// restores.
func TestSalvageTreeBlob(t *testing.T) {
	f := newSalvageFixture(t)
	dir := f.node(t, "d5")
	damaged := f.corrupt(t, blob.Tree, *dir.Subtree)
	rep, after := f.repairAndCheck(t, damaged)
	if len(after.Problems) != 1 || !strings.Contains(after.Problems[0].String(), "/d5: ") {
		t.Errorf("check after repair: %v, want one problem naming the lost directory", after.Problems)
	}
	if len(rep.Snapshots) != 1 || len(rep.Snapshots[0].Files) != 1 {
		t.Fatalf("affected: %+v", rep.Snapshots)
	}
	if lf := rep.Snapshots[0].Files[0]; lf.Path != filepath.Join(f.src, "d5") || !lf.Dir {
		t.Fatalf("lost %+v, want the directory d5", lf)
	}
	warnings, same := f.restoreAll(t)
	for rel := range same {
		if strings.HasPrefix(rel, "d5/") {
			t.Errorf("%s restored from a lost directory", rel)
		}
	}
	if len(same) != 7*41 {
		t.Errorf("%d files restored identical, want the %d outside d5", len(same), 7*41)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "d5: directory lost") {
		t.Errorf("restore warnings %q", warnings)
	}
}

// TestSalvageWriterDomain: the salvaged blobs of a writer's pack go into
// a new pack of the writer's domain (not the owner's, which would make
// them stand for everyone's snapshots), signed by the owner as
// coordinator; the writer's snapshot restores from them.
func TestSalvageWriterDomain(t *testing.T) {
	f := newSalvageFixtureBy(t, true)
	victim := f.node(t, "d2/f05")
	damaged := f.corrupt(t, blob.Data, victim.Content[0])
	if damaged.Domain == f.open(t).OwnerDomain() || damaged.Domain != f.snap.Signer() {
		t.Fatalf("the damaged pack is of domain %s, want the writer's %s", damaged.Domain.Short(), f.snap.Signer().Short())
	}
	rep, after := f.repairAndCheck(t, damaged) // checks the new packs' domain
	if len(after.Problems) != 1 || len(rep.Snapshots) != 1 || len(rep.Snapshots[0].Files) != 1 {
		t.Fatalf("check after repair: %v; affected %+v", after.Problems, rep.Snapshots)
	}
	warnings, same := f.restoreAll(t)
	if len(same) != 8*41-1 || len(warnings) != 1 {
		t.Errorf("%d files restored identical, warnings %q", len(same), warnings)
	}
}

// TestSalvageTruncatedPack: a pack cut in half keeps the blobs in the
// half that is left. The trees were stored last, so the root is among
// the lost: the whole snapshot is reported lost, as "/".
func TestSalvageTruncatedPack(t *testing.T) {
	ctx := context.Background()
	f := newSalvageFixture(t)
	e := f.corrupt(t, blob.Tree, f.snap.File.Statement.Root)
	must(t, f.be.Corrupt(backend.Handle{Type: backend.Data, Name: e.Pack.String()}, func(b []byte) []byte { return b[:len(b)/2] }))
	chk, err := checker.Check(ctx, f.open(t), checker.Options{})
	must(t, err)
	rep, err := repair.Run(ctx, f.open(t), chk.BadPacks, repair.Options{})
	must(t, err)
	if len(rep.Packs) != 1 || rep.Packs[0].Salvaged == 0 || rep.Packs[0].Lost == 0 || rep.Packs[0].Salvaged+rep.Packs[0].Lost != rep.Packs[0].Blobs {
		t.Fatalf("packs %+v", rep.Packs)
	}
	if len(rep.Snapshots) != 1 || fmt.Sprint(rep.Snapshots[0].Files) != fmt.Sprint([]repair.LostFile{{Path: "/", Dir: true}}) {
		t.Fatalf("affected %+v", rep.Snapshots)
	}
	warnings, same := f.restoreAll(t)
	if len(same) != 0 || len(warnings) != 1 || !strings.HasPrefix(warnings[0], ".: directory lost") {
		t.Fatalf("restore of a snapshot whose root is lost: %d files, warnings %q", len(same), warnings)
	}
}

// TestSalvageDamagedRange: 64 KiB of a pack's data damaged lose a run of
// files. Every file of the snapshot is then either restored identical or
// named lost by the repair, never both and never neither.
func TestSalvageDamagedRange(t *testing.T) {
	ctx := context.Background()
	f := newSalvageFixture(t)
	e := f.corrupt(t, blob.Data, f.node(t, "d2/f10").Content[0])
	must(t, f.be.Corrupt(backend.Handle{Type: backend.Data, Name: e.Pack.String()}, func(b []byte) []byte {
		clear(b[e.Offset : e.Offset+64<<10])
		return b
	}))
	chk, err := checker.Check(ctx, f.open(t), checker.Options{ReadData: true})
	must(t, err)
	rep, err := repair.Run(ctx, f.open(t), chk.BadPacks, repair.Options{})
	must(t, err)
	if len(rep.Packs) != 1 || rep.Packs[0].Lost < 5 || rep.Packs[0].Salvaged+rep.Packs[0].Lost != rep.Packs[0].Blobs || len(rep.Snapshots) != 1 {
		t.Fatalf("packs %+v, affected %+v", rep.Packs, rep.Snapshots)
	}
	lost := func(rel string) bool {
		p := filepath.Join(f.src, rel)
		for _, lf := range rep.Snapshots[0].Files {
			if lf.Path == p || lf.Dir && strings.HasPrefix(p, lf.Path+"/") {
				return true
			}
		}
		return false
	}
	_, same := f.restoreAll(t)
	n := 0
	must(t, filepath.WalkDir(f.src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(f.src, p)
		n++
		if same[rel] == lost(rel) {
			t.Errorf("%s: restored identical %v, reported lost %v", rel, same[rel], lost(rel))
		}
		return nil
	}))
	if n != 8*41 || len(same) == n {
		t.Fatalf("%d of %d files restored", len(same), n)
	}
}

// TestSalvageServerKey: the server key cannot open data and tree blobs,
// so it cannot tell a damaged pack's good content from its damaged
// content: it leaves the pack in the index (Kept) and changes nothing.
func TestSalvageServerKey(t *testing.T) {
	ctx := context.Background()
	f := newSalvageFixture(t)
	damaged := f.corrupt(t, blob.Data, f.node(t, "d3/f17").Content[0])
	owner := f.open(t)
	sm, err := owner.NewKeyMaterial(crypto.RoleServer)
	must(t, err)
	_, err = owner.AddKey(ctx, sm, []byte("server"), cheapKDF, "server")
	must(t, err)
	server, err := repository.Open(ctx, f.be, []byte("server"), f.opts)
	must(t, err)
	if server.CanReadContent() {
		t.Fatal("the server key opens content")
	}
	chk, err := checker.Check(ctx, server, checker.Options{ReadData: true})
	must(t, err)
	if !slices.Equal(chk.BadPacks, []string{damaged.Pack.String()}) {
		t.Fatalf("server-key check: bad packs %v", chk.BadPacks)
	}
	indexBefore := names(t, f.be, backend.Index)
	dataBefore := names(t, f.be, backend.Data)
	rep, err := repair.Run(ctx, server, chk.BadPacks, repair.Options{})
	must(t, err)
	if !slices.Equal(rep.Kept, chk.BadPacks) || len(rep.Dropped) != 0 || rep.Repacked != 0 || rep.LostBlobs != 0 || !rep.Packs[0].Kept {
		t.Fatalf("server-key repair: %+v", rep)
	}
	if !slices.Equal(indexBefore, names(t, f.be, backend.Index)) || !slices.Equal(dataBefore, names(t, f.be, backend.Data)) {
		t.Fatal("the server-key repair wrote or removed files")
	}
}
