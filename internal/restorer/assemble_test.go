package restorer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/walker"
)

// loadLog is a backend that records the ranges of data packs loaded, and
// can stop a load (before) to cancel a restore at a known point.
type loadLog struct {
	backend.Backend
	mu     sync.Mutex
	loads  []packLoad
	before func(h backend.Handle) error
}

type packLoad struct {
	pack     string
	off, end int64
}

func (b *loadLog) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if h.Type == backend.Data {
		end := int64(math.MaxInt64)
		if length > 0 {
			end = offset + int64(length)
		}
		b.mu.Lock()
		b.loads = append(b.loads, packLoad{h.Name, offset, end})
		before := b.before
		b.mu.Unlock()
		if before != nil {
			if err := before(h); err != nil {
				return err
			}
		}
	}
	return b.Backend.Load(ctx, h, length, offset, fn)
}

// of returns the loads of the given packs.
func (b *loadLog) of(packs map[string]bool) []packLoad {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []packLoad
	for _, l := range b.loads {
		if packs[l.pack] {
			out = append(out, l)
		}
	}
	return out
}

// overlapping reports two loads of the same bytes of a pack, if any.
func overlapping(loads []packLoad) (packLoad, packLoad, bool) {
	for i, a := range loads {
		for _, b := range loads[i+1:] {
			if a.pack == b.pack && a.off < b.end && b.off < a.end {
				return a, b, true
			}
		}
	}
	return packLoad{}, packLoad{}, false
}

// packFixture is a repository with the snapshots of srcs (backed up in
// order, one file at a time, so blobs are stored in walk order), opened
// again through a loadLog without a cache.
type packFixture struct {
	dir   string // the repository's
	repo  *repository.Repository
	log   *loadLog
	snaps []*repository.Snapshot
}

func newPackFixture(t *testing.T, srcs ...string) *packFixture {
	t.Helper()
	ctx := context.Background()
	repo, be, repoDir := newRepo(t)
	fx := &packFixture{dir: repoDir, log: &loadLog{Backend: be}}
	for _, src := range srcs {
		res, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Partial() {
			t.Fatalf("backup warnings: %v", res.Warnings)
		}
		fx.snaps = append(fx.snaps, res.Snapshot)
	}
	var err error
	fx.repo, err = repository.Open(ctx, fx.log, []byte("pw"), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.repo.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	return fx
}

// entries returns the index entry of each blob of the file at path in
// snap.
func (fx *packFixture) entries(t *testing.T, snap *repository.Snapshot, path string) []index.Entry {
	t.Helper()
	ctx := context.Background()
	n, err := walker.FindNode(ctx, fx.repo, snap.File.Statement.Root, path)
	if err != nil {
		t.Fatal(err)
	}
	var out []index.Entry
	for _, id := range n.Content {
		e, ok := fx.repo.Locate(ctx, blob.Data, id)
		if !ok {
			t.Fatalf("%s: blob not in the index", path)
		}
		out = append(out, e)
	}
	return out
}

// packs returns the pack of each blob of the file at path in snap.
func (fx *packFixture) packs(t *testing.T, snap *repository.Snapshot, path string) []string {
	t.Helper()
	var out []string
	for _, e := range fx.entries(t, snap, path) {
		out = append(out, e.Pack.String())
	}
	return out
}

// offsets returns the offset in its pack of each blob of the file at path.
func (fx *packFixture) offsets(t *testing.T, snap *repository.Snapshot, path string) []uint32 {
	t.Helper()
	var out []uint32
	for _, e := range fx.entries(t, snap, path) {
		out = append(out, e.Offset)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// checkTree fails unless every file of want is in dir with its content.
func checkTree(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	for name, data := range want {
		if got := readFile(t, filepath.Join(dir, name)); !bytes.Equal(got, data) {
			t.Errorf("%s: content differs (%d bytes, want %d)", name, len(got), len(data))
		}
	}
}

// TestRestoreReadsEachBlobOnce: small files and files of several blobs
// stored interleaved in one pack are restored from one read of it; no
// blob is read twice, and the large files' blobs are not read one by one.
func TestRestoreReadsEachBlobOnce(t *testing.T) {
	src := t.TempDir()
	want := map[string][]byte{}
	add := func(name string, data []byte) {
		want[name] = data
		mustWrite(t, filepath.Join(src, name), data, 0o644, time.Now())
	}
	for _, p := range []string{"a", "c", "e"} {
		for i := range 5 {
			add(p+string(rune('0'+i)), randomBytes(2000+i))
		}
	}
	// Over the chunker's largest chunk (4 MiB): several blobs each.
	add("b-large", randomBytes(5<<20))
	add("d-large", randomBytes(5<<20+12345))
	fx := newPackFixture(t, src)
	snap := fx.snaps[0]

	// The fixture: one pack, the large files' blobs between small files'.
	packs := map[string]bool{}
	for name := range want {
		for _, p := range fx.packs(t, snap, src[1:]+"/"+name) {
			packs[p] = true
		}
	}
	if len(packs) != 1 {
		t.Fatalf("content in %d packs, the test needs one", len(packs))
	}
	for _, large := range []string{"b-large", "d-large"} {
		offs := fx.offsets(t, snap, src[1:]+"/"+large)
		if len(offs) < 2 {
			t.Fatalf("%s has %d blobs; the test needs several", large, len(offs))
		}
		before := fx.offsets(t, snap, src[1:]+"/"+string(rune(large[0]-1))+"4")[0]
		after := fx.offsets(t, snap, src[1:]+"/"+string(rune(large[0]+1))+"0")[0]
		if offs[0] < before || offs[len(offs)-1] > after {
			t.Fatalf("%s's blobs are not between small files' in the pack", large)
		}
	}

	target := t.TempDir()
	res, err := restorer.Restore(context.Background(), fx.repo, snap, src[1:], restorer.Options{Target: target, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 || res.Files != uint64(len(want)) || res.Verified != uint64(len(want)) {
		t.Fatalf("%d files, %d verified, warnings %q; want %d", res.Files, res.Verified, res.Warnings, len(want))
	}
	checkTree(t, target, want)
	loads := fx.log.of(packs)
	if a, b, ok := overlapping(loads); ok {
		t.Errorf("bytes of a pack loaded twice: %+v and %+v", a, b)
	}
	if len(loads) != 1 {
		t.Errorf("%d loads of the pack, want 1: %+v", len(loads), loads)
	}
}

// outOfOrder makes a snapshot whose file "big" has its first blobs in a
// newer pack than its last ones (stored by an earlier snapshot, deduped),
// and a small file "a" stored in the older pack and restored first, so
// the older pack is read first and big's later blobs arrive before its
// first ones.
func outOfOrder(t *testing.T) (fx *packFixture, src string, want map[string][]byte, packs map[string]bool) {
	t.Helper()
	// The chunker cuts big's copy of tail where it cut tail only after
	// the two resynchronise, which random content makes likely, not
	// certain: draw new content until big ends in a's pack (checked).
	for range 8 {
		tail := randomBytes(10 << 20)
		small := randomBytes(3000)
		src1, src2 := t.TempDir(), t.TempDir()
		mustWrite(t, filepath.Join(src1, "a"), small, 0o644, time.Now())
		mustWrite(t, filepath.Join(src1, "tail"), tail, 0o644, time.Now())
		want = map[string][]byte{"a": small, "big": append(randomBytes(5<<20), tail...)}
		mustWrite(t, filepath.Join(src2, "a"), small, 0o644, time.Now())
		mustWrite(t, filepath.Join(src2, "big"), want["big"], 0o600, time.Now())
		fx = newPackFixture(t, src1, src2)
		snap := fx.snaps[1]
		old := fx.packs(t, snap, src2[1:]+"/a")[0]
		bp := fx.packs(t, snap, src2[1:]+"/big")
		if bp[0] == old || bp[len(bp)-1] != old {
			t.Logf("big's blobs are in packs %v, a's in %s: drawing again", bp, old)
			continue
		}
		packs = map[string]bool{old: true}
		for _, p := range bp {
			packs[p] = true
		}
		return fx, src2, want, packs
	}
	t.Fatal("big never ended in a's pack in 8 draws: the layout the test needs does not occur")
	return
}

// TestRestoreBlobsOutOfOrder: a file's later blobs arriving before its
// first ones are held and written when the file reaches them, not read
// again.
func TestRestoreBlobsOutOfOrder(t *testing.T) {
	fx, src, want, packs := outOfOrder(t)
	target := t.TempDir()
	res, err := restorer.Restore(context.Background(), fx.repo, fx.snaps[1], src[1:], restorer.Options{Target: target, Workers: 1, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 || res.Files != 2 || res.Verified != 2 {
		t.Fatalf("%d files, %d verified, warnings %q", res.Files, res.Verified, res.Warnings)
	}
	checkTree(t, target, want)
	if a, b, ok := overlapping(fx.log.of(packs)); ok {
		t.Errorf("bytes of a pack loaded twice: %+v and %+v", a, b)
	}
	if st, err := os.Stat(filepath.Join(target, "big")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("big: %v %v", st.Mode(), err)
	}
}

// TestRestoreHoldBudget: with no memory to hold blobs that arrive early,
// the file still comes back exact: what was not held is read again.
func TestRestoreHoldBudget(t *testing.T) {
	defer restorer.SetHoldBudget(0)()
	fx, src, want, packs := outOfOrder(t)
	target := t.TempDir()
	res, err := restorer.Restore(context.Background(), fx.repo, fx.snaps[1], src[1:], restorer.Options{Target: target, Workers: 1, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 || res.Files != 2 || res.Verified != 2 {
		t.Fatalf("%d files, %d verified, warnings %q", res.Files, res.Verified, res.Warnings)
	}
	checkTree(t, target, want)
	if _, _, ok := overlapping(fx.log.of(packs)); !ok {
		t.Error("nothing was read twice: the budget was not applied")
	}
}

// TestRestoreCancelledMidFile: a restore cancelled while a file of
// several blobs is half written leaves neither that file under its name
// nor its temporary file.
func TestRestoreCancelledMidFile(t *testing.T) {
	src := t.TempDir()
	big := randomBytes(24 << 20) // more than a pack (16 MiB)
	mustWrite(t, filepath.Join(src, "big"), big, 0o644, time.Now())
	mustWrite(t, filepath.Join(src, "small"), []byte("small"), 0o644, time.Now())
	fx := newPackFixture(t, src)
	bp := fx.packs(t, fx.snaps[0], src[1:]+"/big")
	second := bp[len(bp)-1]
	if bp[0] == second {
		t.Fatal("big is in one pack; the test needs two")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fx.log.before = func(h backend.Handle) error {
		if h.Name == second {
			cancel()
			return ctx.Err()
		}
		return nil
	}
	target := t.TempDir()
	_, err := restorer.Restore(ctx, fx.repo, fx.snaps[0], src[1:], restorer.Options{Target: target, Workers: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("restore: %v, want cancelled", err)
	}
	if fx.log.of(map[string]bool{bp[0]: true}) == nil {
		t.Fatal("big's first pack was not read before the cancellation")
	}
	err = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch name := d.Name(); {
		case strings.Contains(name, ".cairn-"):
			t.Errorf("temporary file %s left behind", p)
		case name == "big":
			t.Errorf("big is under its name after the cancellation")
		case name == "small":
			if got := readFile(t, p); string(got) != "small" {
				t.Errorf("small: %q", got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRestoreLostBlobHeld: a damaged blob of a file whose other blobs
// were held or written in the pack reads gives the same file and report
// as a loss found blob by blob (TestRestoreLostBlob).
func TestRestoreLostBlobHeld(t *testing.T) {
	ctx := context.Background()
	fx, src, want, _ := outOfOrder(t)
	n, err := walker.FindNode(ctx, fx.repo, fx.snaps[1].File.Statement.Root, src[1:]+"/big")
	if err != nil {
		t.Fatal(err)
	}
	lost := len(n.Content) - 2 // in the older pack, read first
	off := 0
	for _, id := range n.Content[:lost] {
		plain, err := fx.repo.LoadBlob(ctx, blob.Data, id)
		if err != nil {
			t.Fatal(err)
		}
		off += len(plain)
	}
	plain, err := fx.repo.LoadBlob(ctx, blob.Data, n.Content[lost])
	if err != nil {
		t.Fatal(err)
	}
	damage(t, ctx, fx.repo, fx.dir, n.Content[lost])
	clear(want["big"][off : off+len(plain)])

	target := t.TempDir()
	res, err := restorer.Restore(ctx, fx.repo, fx.snaps[1], src[1:], restorer.Options{Target: target, Workers: 1, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "big: content lost") {
		t.Fatalf("warnings %q, want one content loss for big", res.Warnings)
	}
	checkTree(t, target, want)
	if res.Files != 2 || res.Verified != 1 {
		t.Errorf("%d files, %d verified; want 2 and 1", res.Files, res.Verified)
	}
}
