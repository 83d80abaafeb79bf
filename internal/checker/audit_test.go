package checker_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/repository"
)

// manyPacks makes a repository of at least n packs.
func manyPacks(t *testing.T, n int) (*mem.Backend, func() *repository.Repository) {
	t.Helper()
	ctx := context.Background()
	be := mem.New()
	opts := repository.Options{KDF: &cheapKDF}
	repo, err := repository.Init(ctx, be, []byte("pw"), opts)
	must(t, err)
	src := t.TempDir()
	for len(list0(t, be, backend.Data)) < n {
		buf := make([]byte, 64<<10)
		rand.Read(buf)
		must(t, os.WriteFile(filepath.Join(src, "f"), buf, 0o644))
		_, err := archiver.Backup(ctx, repo, []string{src}, archiver.Options{})
		must(t, err)
	}
	return be, func() *repository.Repository {
		r, err := repository.Open(ctx, be, []byte("pw"), opts)
		must(t, err)
		return r
	}
}

func list0(t *testing.T, be backend.Backend, typ backend.FileType) []backend.FileInfo {
	var out []backend.FileInfo
	must(t, be.List(context.Background(), typ, func(fi backend.FileInfo) error {
		out = append(out, fi)
		return nil
	}))
	return out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func audit(t *testing.T, open func() *repository.Repository, sub string, state string, c *clock) *checker.Report {
	t.Helper()
	s, err := checker.ParseSubset(sub)
	must(t, err)
	rep, err := checker.Check(context.Background(), open(), checker.Options{Subset: &s, StateFile: state, Now: c.now})
	must(t, err)
	return rep
}

func TestRollingAuditCoversEveryPackOnce(t *testing.T) {
	be, open := manyPacks(t, 40)
	packs := len(list0(t, be, backend.Data))
	state := filepath.Join(t.TempDir(), "state.json")
	c := &clock{time.Date(2025, 3, 1, 4, 0, 0, 0, time.UTC)}
	seen := map[string]int{}
	var last *checker.Report
	for day := 0; day < 30; day++ {
		last = audit(t, open, "1/30", state, c)
		if !last.OK() {
			t.Fatalf("day %d: %v", day, last.Problems)
		}
		if n := len(last.Audit.Verified); n > (packs+29)/30 {
			t.Errorf("day %d verified %d packs, more than its share of %d", day, n, packs)
		}
		for _, p := range last.Audit.Verified {
			seen[p]++
		}
		c.t = c.t.Add(24 * time.Hour)
	}
	if len(seen) != packs {
		t.Fatalf("30 runs of 1/30 verified %d of %d packs", len(seen), packs)
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("pack %s verified %d times", p[:12], n)
		}
	}
	a := last.Audit
	if a.Packs != packs || a.Within != packs || a.Never != 0 || a.OldestAge < 29*24*time.Hour {
		t.Errorf("coverage: %+v", a)
	}
	// The next cycle starts again with the pack verified longest ago.
	next := audit(t, open, "1/30", state, c)
	if len(next.Audit.Verified) == 0 || seen[next.Audit.Verified[0]] != 1 {
		t.Errorf("day 31 verified %v", next.Audit.Verified)
	}
}

func TestRollingAuditFindsCorruptPackInTurn(t *testing.T) {
	be, open := manyPacks(t, 10)
	// A data pack: each backup here stores a 64 KiB file's pack and a
	// small pack of trees (docs/format.md §10), and a damaged tree is
	// found by every check's walk, not only by the audit's turn.
	var bad backend.FileInfo
	for _, fi := range list0(t, be, backend.Data) {
		if fi.Size > bad.Size {
			bad = fi
		}
	}
	must(t, be.Corrupt(bad.Handle, func(b []byte) []byte { b[len(b)/3] ^= 1; return b }))
	state := filepath.Join(t.TempDir(), "state.json")
	c := &clock{time.Date(2025, 3, 1, 4, 0, 0, 0, time.UTC)}
	found := -1
	for day := 0; day < 10; day++ {
		rep := audit(t, open, "1/10", state, c)
		for _, p := range rep.Problems {
			if p.File == "data/"+bad.Name {
				found = day
			}
		}
		c.t = c.t.Add(24 * time.Hour)
		if found >= 0 {
			if len(rep.BadPacks) != 1 || rep.BadPacks[0] != bad.Name {
				t.Errorf("bad packs: %v", rep.BadPacks)
			}
			break
		}
		if !rep.OK() {
			t.Fatalf("day %d: %v", day, rep.Problems)
		}
	}
	if found < 0 {
		t.Fatal("10 runs of 1/10 never reported the corrupt pack")
	}
}

func TestParseSubset(t *testing.T) {
	for in, want := range map[string]checker.Subset{
		"1/30": {N: 1, Of: 30}, "2/7": {N: 2, Of: 7}, "5%": {Percent: 5}, "12.5%": {Percent: 12.5},
		"500M": {Bytes: 500 << 20}, "2GiB": {Bytes: 2 << 30}, "1024": {Bytes: 1024},
	} {
		got, err := checker.ParseSubset(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0/30", "31/30", "0%", "101%", "x", "-5M"} {
		if _, err := checker.ParseSubset(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestSubsetPercentAndSize(t *testing.T) {
	be, open := manyPacks(t, 8)
	packs := list0(t, be, backend.Data)
	c := &clock{time.Now()}
	state := filepath.Join(t.TempDir(), "s.json")
	if n := len(audit(t, open, "25%", state, c).Audit.Verified); n != (len(packs)+3)/4 {
		t.Errorf("25%% of %d packs verified %d", len(packs), n)
	}
	rep := audit(t, open, "1", state, c) // one byte: one pack, never verified before
	if len(rep.Audit.Verified) != 1 {
		t.Errorf("size subset verified %v", rep.Audit.Verified)
	}
}
