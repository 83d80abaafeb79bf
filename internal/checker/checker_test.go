package checker_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

var cheapKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

// newRepo backs up a small tree (one multi-chunk file, small files) into a
// fresh in-memory repository and reopens it, so the check loads everything
// from storage.
func newRepo(t *testing.T) (*mem.Backend, func() *repository.Repository) {
	t.Helper()
	ctx := context.Background()
	src := t.TempDir()
	big := make([]byte, 3<<20)
	rand.Read(big)
	must(t, os.WriteFile(filepath.Join(src, "big"), big, 0o644))
	must(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "d", "small"), []byte("hello"), 0o644))
	be := mem.New()
	opts := repository.Options{KDF: &cheapKDF}
	repo, err := repository.Init(ctx, be, []byte("pw"), opts)
	must(t, err)
	if _, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{}); err != nil {
		t.Fatal(err)
	}
	return be, func() *repository.Repository {
		r, err := repository.Open(ctx, be, []byte("pw"), opts)
		must(t, err)
		return r
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func list(t *testing.T, be backend.Backend, typ backend.FileType) []backend.FileInfo {
	t.Helper()
	var out []backend.FileInfo
	must(t, be.List(context.Background(), typ, func(fi backend.FileInfo) error {
		out = append(out, fi)
		return nil
	}))
	if len(out) == 0 {
		t.Fatalf("no %s files", typ)
	}
	return out
}

// biggestPack is the pack holding the large file's data.
func biggestPack(t *testing.T, be backend.Backend) backend.FileInfo {
	packs := list(t, be, backend.Data)
	best := packs[0]
	for _, p := range packs {
		if p.Size > best.Size {
			best = p
		}
	}
	return best
}

func check(t *testing.T, open func() *repository.Repository, readData bool) *checker.Report {
	t.Helper()
	rep, err := checker.Check(context.Background(), open(), checker.Options{ReadData: readData})
	must(t, err)
	return rep
}

func expectProblem(t *testing.T, rep *checker.Report, want ...string) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("check found no problem; want one mentioning %q", want)
	}
	for _, p := range rep.Problems {
		s := p.String()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return
		}
	}
	t.Fatalf("no problem mentions all of %q; got %v", want, rep.Problems)
}

func TestClean(t *testing.T) {
	_, open := newRepo(t)
	for _, rd := range []bool{false, true} {
		rep := check(t, open, rd)
		if !rep.OK() {
			t.Fatalf("readData=%v: problems in a fresh repository: %v", rd, rep.Problems)
		}
		if rep.Snapshots != 1 || rep.Packs == 0 || rep.Trees == 0 {
			t.Fatalf("report counts: %+v", rep)
		}
	}
}

func TestFlippedByteInPack(t *testing.T) {
	be, open := newRepo(t)
	p := biggestPack(t, be)
	must(t, be.Corrupt(p.Handle, func(b []byte) []byte { b[100] ^= 1; return b }))
	if rep := check(t, open, false); !rep.OK() {
		t.Logf("structural check already sees it: %v", rep.Problems)
	}
	rep := check(t, open, true)
	expectProblem(t, rep, p.Name, "not its name")
	expectProblem(t, rep, p.Name, "does not decrypt")
	for _, pr := range rep.Problems {
		if len(pr.Snapshots) == 0 && pr.Blob != "" {
			t.Errorf("problem does not name the affected snapshot: %v", pr)
		}
	}
}

func TestFlippedByteInPackHeader(t *testing.T) {
	be, open := newRepo(t)
	p := biggestPack(t, be)
	must(t, be.Corrupt(p.Handle, func(b []byte) []byte { b[len(b)-20] ^= 1; return b }))
	expectProblem(t, check(t, open, false), p.Name, "header")
}

func TestTruncatedPack(t *testing.T) {
	be, open := newRepo(t)
	p := biggestPack(t, be)
	must(t, be.Corrupt(p.Handle, func(b []byte) []byte { return b[:len(b)/2] }))
	expectProblem(t, check(t, open, false), p.Name, "truncated", "snapshots")
}

func TestMissingPack(t *testing.T) {
	be, open := newRepo(t)
	p := biggestPack(t, be)
	must(t, be.Remove(context.Background(), p.Handle))
	expectProblem(t, check(t, open, false), p.Name, "missing", "snapshots")
}

func TestMissingIndex(t *testing.T) {
	be, open := newRepo(t)
	for _, fi := range list(t, be, backend.Index) {
		must(t, be.Remove(context.Background(), fi.Handle))
	}
	rep := check(t, open, false)
	expectProblem(t, rep, "not in the index")
	if len(rep.Notes) == 0 {
		t.Error("packs in no index are not noted")
	}
}

func TestCorruptIndexAndSnapshot(t *testing.T) {
	be, open := newRepo(t)
	idx := list(t, be, backend.Index)[0]
	must(t, be.Corrupt(idx.Handle, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }))
	snap := list(t, be, backend.Snapshots)[0]
	must(t, be.Corrupt(snap.Handle, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }))
	rep := check(t, open, false)
	expectProblem(t, rep, "index/"+idx.Name, "not its name")
	expectProblem(t, rep, "snapshots/"+snap.Name)
}
