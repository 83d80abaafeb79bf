package checker_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// history is a repository with n snapshots by the owner, seq 1..n, and
// the stored bytes of each snapshot file by seq.
type history struct {
	be    *mem.Backend
	opts  repository.Options
	files map[uint64]backend.FileInfo
	bytes map[uint64][]byte
}

func newHistory(t *testing.T, n int, cache bool) *history {
	t.Helper()
	ctx := context.Background()
	src := t.TempDir()
	h := &history{be: mem.New(), opts: repository.Options{KDF: &cheapKDF},
		files: map[uint64]backend.FileInfo{}, bytes: map[uint64][]byte{}}
	if cache {
		h.opts.CacheDir = t.TempDir()
	}
	repo, err := repository.Init(ctx, h.be, []byte("pw"), h.opts)
	must(t, err)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		must(t, os.WriteFile(filepath.Join(src, "f"), []byte(strings.Repeat("x", i+1)), 0o644))
		if _, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{Time: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, fi := range list(t, h.be, backend.Snapshots) {
		buf, err := backend.LoadAll(ctx, h.be, fi.Handle)
		must(t, err)
		f, err := snapshot.ParseFile(buf)
		must(t, err)
		h.files[f.Statement.Seq], h.bytes[f.Statement.Seq] = fi, buf
	}
	if len(h.files) != n {
		t.Fatalf("%d snapshots, want %d", len(h.files), n)
	}
	return h
}

func (h *history) open(t *testing.T) *repository.Repository {
	t.Helper()
	r, err := repository.Open(context.Background(), h.be, []byte("pw"), h.opts)
	must(t, err)
	return r
}

func (h *history) check(t *testing.T) *checker.Report {
	t.Helper()
	rep, err := checker.Check(context.Background(), h.open(t), checker.Options{})
	must(t, err)
	return rep
}

// store saves a snapshot file under its content name.
func (h *history) store(t *testing.T, buf []byte) string {
	t.Helper()
	name := backend.NameOf(buf)
	must(t, h.be.Save(context.Background(), backend.Handle{Type: backend.Snapshots, Name: name}, backend.NewByteReader(buf)))
	return name
}

func (h *history) remove(t *testing.T, seq uint64) {
	t.Helper()
	must(t, h.be.Remove(context.Background(), h.files[seq].Handle))
}

// rewrite parses seq's file, lets edit change it and re-sign it, and
// stores the result.
func (h *history) rewrite(t *testing.T, seq uint64, edit func(f *snapshot.File)) string {
	t.Helper()
	f, err := snapshot.ParseFile(h.bytes[seq])
	must(t, err)
	edit(f)
	return h.store(t, f.Marshal())
}

func TestR17CleanHistory(t *testing.T) {
	h := newHistory(t, 3, true)
	rep := h.check(t)
	if !rep.OK() {
		t.Fatalf("problems in a clean history: %v", rep.Problems)
	}
	found := false
	for _, c := range rep.Checks {
		found = found || strings.Contains(c, "R17")
	}
	if !found {
		t.Fatalf("R17 checks not listed: %v", rep.Checks)
	}
}

func TestR17ForgedSignature(t *testing.T) {
	h := newHistory(t, 3, false)
	name := h.rewrite(t, 3, func(f *snapshot.File) { f.Signature[5] ^= 1 })
	expectProblem(t, h.check(t), "snapshots/"+name, "forged snapshot", "does not verify")
}

func TestR17ForgedSigner(t *testing.T) {
	h := newHistory(t, 3, false)
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	name := h.rewrite(t, 3, func(f *snapshot.File) { f.Sign(stranger) })
	expectProblem(t, h.check(t), "snapshots/"+name, "forged snapshot", "neither the owner nor a roster writer")
}

func TestR17RollbackBehindThisMachine(t *testing.T) {
	h := newHistory(t, 3, true)
	h.remove(t, 3)
	expectProblem(t, h.check(t), "rollback", "is seq 2", "this machine committed seq 3")

	// Without a record of what this machine committed, dropping the newest
	// snapshot cannot be told from it never having existed.
	h = newHistory(t, 3, false)
	h.remove(t, 3)
	if rep := h.check(t); !rep.OK() {
		t.Fatalf("unexpected problems: %v", rep.Problems)
	}
}

func TestR17RollbackSeenByEarlierCheck(t *testing.T) {
	h := newHistory(t, 3, false)
	state := filepath.Join(t.TempDir(), "state.json")
	run := func() *checker.Report {
		rep, err := checker.Check(context.Background(), h.open(t), checker.Options{StateFile: state})
		must(t, err)
		return rep
	}
	if rep := run(); !rep.OK() {
		t.Fatal(rep.Problems)
	}
	h.remove(t, 3)
	expectProblem(t, run(), "rollback", "is seq 2", "an earlier check saw seq 3")
}

func TestR17BrokenChain(t *testing.T) {
	h := newHistory(t, 3, false)
	owner := h.open(t).Keys().Sign
	name := h.rewrite(t, 3, func(f *snapshot.File) {
		f.Statement.Prev[0] ^= 1
		f.Sign(owner)
	})
	h.remove(t, 3)
	rep := h.check(t)
	expectProblem(t, rep, "rollback", "seq 3 does not chain to seq 2", name[:8])
}

func TestR17Fork(t *testing.T) {
	h := newHistory(t, 3, false)
	owner := h.open(t).Keys().Sign
	h.rewrite(t, 3, func(f *snapshot.File) {
		f.Statement.Time = f.Statement.Time.Add(time.Minute)
		f.Sign(owner)
	})
	expectProblem(t, h.check(t), "rollback or fork", "2 different statements with seq 3")
}

func TestR17ReplayedDeletedSnapshot(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t, 3, false)
	repo := h.open(t)
	s, err := repo.LoadSnapshot(ctx, h.files[2])
	must(t, err)
	must(t, repo.ForgetSnapshot(ctx, s, "keep-last"))
	if rep := h.check(t); !rep.OK() {
		t.Fatalf("a tombstoned seq gap is reported: %v", rep.Problems)
	}
	h.store(t, h.bytes[2])
	expectProblem(t, h.check(t), "snapshots/"+h.files[2].Name, "replayed deleted snapshot", `rule "keep-last"`)
}

func TestR17SeqGapWithoutTombstone(t *testing.T) {
	h := newHistory(t, 4, false)
	h.remove(t, 2)
	h.remove(t, 3)
	expectProblem(t, h.check(t), "sequence gap without a tombstone", "seq 2–3 missing")
}

func TestR17BadTombstone(t *testing.T) {
	ctx := context.Background()
	h := newHistory(t, 3, false)
	repo := h.open(t)
	s, err := repo.LoadSnapshot(ctx, h.files[2])
	must(t, err)
	must(t, repo.ForgetSnapshot(ctx, s, "keep-last"))
	ts := list(t, h.be, backend.Tombstones)
	buf, err := backend.LoadAll(ctx, h.be, ts[0].Handle)
	must(t, err)
	buf[len(buf)-1] ^= 1 // the signature's last byte
	must(t, h.be.Remove(ctx, ts[0].Handle))
	must(t, h.be.Save(ctx, backend.Handle{Type: backend.Tombstones, Name: backend.NameOf(buf)}, backend.NewByteReader(buf)))
	rep := h.check(t)
	expectProblem(t, rep, "bad tombstone", backend.NameOf(buf))
	expectProblem(t, rep, "sequence gap without a tombstone", "seq 2 missing")
}
