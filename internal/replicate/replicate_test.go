package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/backend/mem"
)

func put(t *testing.T, be backend.Backend, typ backend.FileType, content string) backend.Handle {
	t.Helper()
	h := backend.Handle{Type: typ, Name: backend.NameOf([]byte(content))}
	if typ == backend.Config {
		h.Name = "config"
	}
	if err := be.Save(context.Background(), h, backend.NewByteReader([]byte(content))); err != nil {
		t.Fatal(err)
	}
	return h
}

func read(t *testing.T, be backend.Backend, h backend.Handle) []byte {
	t.Helper()
	var b []byte
	err := be.Load(context.Background(), h, 0, 0, func(rd io.Reader) (err error) {
		b, err = io.ReadAll(rd)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", h, err)
	}
	return b
}

// source is a repository-shaped set of files: what a cairn or restic
// repository holds, by type.
func source(t *testing.T) (*mem.Backend, []backend.Handle) {
	src := mem.New()
	var hs []backend.Handle
	hs = append(hs, put(t, src, backend.Config, "config v2"))
	hs = append(hs, put(t, src, backend.Configs, "config v1"), put(t, src, backend.Configs, "config v2"))
	hs = append(hs, put(t, src, backend.Rosters, "roster 1"), put(t, src, backend.Keys, "key 1"))
	for i := range 5 {
		hs = append(hs, put(t, src, backend.Data, fmt.Sprintf("pack %d %s", i, bytes.Repeat([]byte{byte(i)}, 1000*i))))
	}
	hs = append(hs, put(t, src, backend.Index, "index 1"), put(t, src, backend.Index, "index 2"))
	hs = append(hs, put(t, src, backend.Snapshots, "snapshot 1"), put(t, src, backend.Snapshots, "snapshot 2"))
	hs = append(hs, put(t, src, backend.Receipts, "receipt 1"), put(t, src, backend.Tombstones, "tombstone 1"))
	return src, hs
}

func TestSyncCopiesEverythingOnceToRealFiles(t *testing.T) {
	ctx := context.Background()
	src, hs := source(t)
	put(t, src, backend.Plans, "a plan") // the source's working state
	put(t, src, backend.Claims, "claim") // likewise
	dst, err := local.Create(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if st.Copied != len(hs) || st.Snapshots != 2 || st.Failed != 0 {
		t.Fatalf("first pass: %+v, want %d files copied", st, len(hs))
	}
	for _, h := range hs {
		if !bytes.Equal(read(t, dst, h), read(t, src, h)) {
			t.Fatalf("%s differs on the copy", h)
		}
	}
	for _, typ := range []backend.FileType{backend.Plans, backend.Claims} {
		_ = dst.List(ctx, typ, func(fi backend.FileInfo) error {
			t.Errorf("%s copied", fi.Handle)
			return nil
		})
	}
	st, err = Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()})
	if err != nil || st.Copied != 0 || st.Skipped != len(hs) {
		t.Fatalf("second pass: %+v %v, want everything skipped", st, err)
	}
}

// recorder notes the order in which a memory backend stores files.
func recorder(be *mem.Backend) func() []backend.Handle {
	var mu sync.Mutex
	var order []backend.Handle
	be.SetFault(func(op string, h backend.Handle) error {
		if op == mem.OpSave || op == mem.OpReplaceConfig {
			mu.Lock()
			order = append(order, h)
			mu.Unlock()
		}
		return nil
	})
	return func() []backend.Handle {
		mu.Lock()
		defer mu.Unlock()
		return append([]backend.Handle(nil), order...)
	}
}

func rank(t backend.FileType) int {
	switch t {
	case backend.Configs, backend.Rosters, backend.Keys:
		return 0
	case backend.Config:
		return 1
	case backend.Data:
		return 2
	case backend.Index:
		return 3
	}
	return 4 // snapshots, receipts, tombstones
}

func TestSyncOrderKeepsTheCopyConsistent(t *testing.T) {
	src, _ := source(t)
	dst := mem.New()
	order := recorder(dst)
	if _, err := Sync(context.Background(), src, dst, Options{Concurrency: 3, SpoolDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	got := order()
	for i := 1; i < len(got); i++ {
		if rank(got[i].Type) < rank(got[i-1].Type) {
			t.Fatalf("%s stored after %s: a reader of the copy could meet a snapshot before its packs", got[i], got[i-1])
		}
	}
}

// A snapshot that lands on the source during a pass, after the snapshot
// listing, waits for the next pass: its packs may not have been listed.
func TestSnapshotLandingMidPassWaits(t *testing.T) {
	ctx := context.Background()
	src, _ := source(t)
	late := backend.Handle{Type: backend.Snapshots, Name: backend.NameOf([]byte("late snapshot"))}
	dst := mem.New()
	// The first trust file is copied after the snapshot listing and before
	// the data listing: land a new pack and its snapshot then.
	var landErr error
	landed := false
	opt := Options{SpoolDir: t.TempDir(), Concurrency: 1, Progress: func(h backend.Handle, _ int64, _ bool) {
		if !landed && h.Type == backend.Configs {
			landed = true
			for _, c := range []struct {
				typ     backend.FileType
				content string
			}{{backend.Data, "late pack"}, {backend.Snapshots, "late snapshot"}} {
				h := backend.Handle{Type: c.typ, Name: backend.NameOf([]byte(c.content))}
				if err := src.Save(ctx, h, backend.NewByteReader([]byte(c.content))); err != nil {
					landErr = err
				}
			}
		}
	}}
	st, err := Sync(ctx, src, dst, opt)
	if err != nil || landErr != nil || !landed {
		t.Fatal(err, landErr, landed)
	}
	if _, err := dst.Stat(ctx, late); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("a snapshot that landed mid-pass was copied in that pass (%v)", err)
	}
	if st.Snapshots != 2 {
		t.Fatalf("first pass copied %d snapshots, want 2", st.Snapshots)
	}
	st, err = Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()})
	if err != nil || st.Snapshots != 1 {
		t.Fatalf("second pass: %+v %v", st, err)
	}
	if _, err := dst.Stat(ctx, late); err != nil {
		t.Fatal(err)
	}
}

// corrupt replaces a stored file's bytes behind the backend's back.
func corrupt(t *testing.T, src *mem.Backend, h backend.Handle) {
	t.Helper()
	if err := src.Corrupt(h, func(b []byte) []byte { b[0] ^= 1; return b }); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptSourceIsNotCopiedAndHoldsBackTheRest(t *testing.T) {
	ctx := context.Background()
	src, _ := source(t)
	bad := put(t, src, backend.Data, "a pack that will rot")
	corrupt(t, src, bad)
	dst := mem.New()
	st, err := Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()})
	if !errors.Is(err, ErrCorruptSource) || st.Failed != 1 {
		t.Fatalf("corrupt source: %+v %v", st, err)
	}
	if _, err := dst.Stat(ctx, bad); !errors.Is(err, backend.ErrNotFound) {
		t.Fatal("a corrupt file was copied")
	}
	if st.Snapshots != 0 {
		t.Fatal("snapshots were copied although a pack failed")
	}
	if st.Missing <= st.Copied || st.MissingBytes <= st.CopiedBytes {
		t.Fatalf("a pass that left files behind reports no lag: %+v", st)
	}
	// Healed on the source (an audit restores it from another copy): the
	// next pass completes.
	if err := src.Remove(ctx, bad); err != nil {
		t.Fatal(err)
	}
	put(t, src, backend.Data, "a pack that will rot")
	st, err = Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()})
	if err != nil || st.Snapshots != 2 || st.Copied != 7 { // the pack, 2 index fragments, 2 snapshots, a receipt, a tombstone
		t.Fatalf("after healing: %+v %v", st, err)
	}
	if st.Missing != st.Copied || st.MissingBytes != st.CopiedBytes {
		t.Fatalf("a complete pass reports lag: %+v", st)
	}
}

func TestInterruptedPassResumes(t *testing.T) {
	ctx := context.Background()
	src, hs := source(t)
	dst := mem.New()
	saves := 0
	dst.SetFault(func(op string, h backend.Handle) error {
		if op == mem.OpSave {
			saves++
			if saves > 4 {
				return backend.ErrNoSpace
			}
		}
		return nil
	})
	st, err := Sync(ctx, src, dst, Options{Concurrency: 1, SpoolDir: t.TempDir()})
	if !errors.Is(err, backend.ErrNoSpace) || st.Snapshots != 0 {
		t.Fatalf("full destination: %+v %v", st, err)
	}
	dst.SetFault(nil)
	var found, progressed atomic.Int64
	st, err = Sync(ctx, src, dst, Options{SpoolDir: t.TempDir(),
		Found: func(_ int, n int64) { found.Add(n) },
		Progress: func(_ backend.Handle, n int64, copied bool) {
			if copied {
				progressed.Add(n)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped == 0 || st.Copied+st.Skipped != len(hs) {
		t.Fatalf("resumed pass: %+v (of %d files)", st, len(hs))
	}
	if found.Load() != st.MissingBytes || found.Load() == 0 || progressed.Load() != st.CopiedBytes {
		t.Fatalf("Found reported %d bytes and Progress %d; stats %+v", found.Load(), progressed.Load(), st)
	}
	for _, h := range hs {
		if !bytes.Equal(read(t, dst, h), read(t, src, h)) {
			t.Fatalf("%s differs", h)
		}
	}
}

type mapLedger struct {
	mu sync.Mutex
	m  map[backend.Handle]bool
}

func (l *mapLedger) Copied(h backend.Handle) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[h]
}

func (l *mapLedger) Record(h backend.Handle) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[h] = true
	return nil
}

// What the destination's own retention removed is not copied again, and a
// deletion on the source is never mirrored.
func TestNoResurrectionNoMirroredDeletion(t *testing.T) {
	ctx := context.Background()
	src, hs := source(t)
	dst := mem.New()
	ledger := &mapLedger{m: map[backend.Handle]bool{}}
	if _, err := Sync(ctx, src, dst, Options{Ledger: ledger, SpoolDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if len(ledger.m) != len(hs)-1 { // config is not content-named and not in the ledger
		t.Fatalf("ledger has %d files, want %d", len(ledger.m), len(hs)-1)
	}
	var snap backend.Handle
	for _, h := range hs {
		if h.Type == backend.Snapshots {
			snap = h
		}
	}
	if err := dst.Remove(ctx, snap); err != nil { // the copy's own policy
		t.Fatal(err)
	}
	var pack backend.Handle
	for _, h := range hs {
		if h.Type == backend.Data {
			pack = h
		}
	}
	if err := src.Remove(ctx, pack); err != nil { // the primary's prune
		t.Fatal(err)
	}
	st, err := Sync(ctx, src, dst, Options{Ledger: ledger, SpoolDir: t.TempDir()})
	if err != nil || st.Copied != 0 {
		t.Fatalf("third pass: %+v %v", st, err)
	}
	if _, err := dst.Stat(ctx, snap); !errors.Is(err, backend.ErrNotFound) {
		t.Fatal("a snapshot the copy's own retention removed came back")
	}
	if _, err := dst.Stat(ctx, pack); err != nil {
		t.Fatalf("the primary's deletion was mirrored: %v", err)
	}
}

func TestConfigReplacedWhenTheSourceMovesOn(t *testing.T) {
	ctx := context.Background()
	src, _ := source(t)
	dst := mem.New()
	if _, err := Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	cfg := backend.Handle{Type: backend.Config, Name: "config"}
	if err := src.ReplaceConfig(ctx, backend.NewByteReader([]byte("config v3"))); err != nil {
		t.Fatal(err)
	}
	put(t, src, backend.Configs, "config v3")
	if _, err := Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dst, cfg); string(got) != "config v3" {
		t.Fatalf("config on the copy: %q", got)
	}
}

// TestConfigOnlyAVersionIsCopied: a source config that is none of the
// repository's config versions (replaced in place: damaged, or forged by
// a hostile writer) is stored on no copy, neither where the copy lost its
// config nor over the copy's sound one; the pass fails and holds back the
// snapshots until the source's config is healed. A repository that keeps
// no config versions (restic's) has its config copied as it is.
// (docs/threat-model.md R3, R28.)
func TestConfigOnlyAVersionIsCopied(t *testing.T) {
	ctx := context.Background()
	cfg := backend.Handle{Type: backend.Config, Name: "config"}
	forge := func(be *mem.Backend) {
		if err := be.ReplaceConfig(ctx, backend.NewByteReader([]byte("config forged"))); err != nil {
			t.Fatal(err)
		}
	}

	// The copy has no config: a first pass, or one that lost it.
	src, _ := source(t)
	forge(src)
	dst := mem.New()
	st, err := Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()})
	if !errors.Is(err, ErrConfigNotVersion) || st.Snapshots != 0 {
		t.Fatalf("forged source config: %+v %v", st, err)
	}
	if _, err := dst.Stat(ctx, cfg); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the forged config was stored on the copy: %v", err)
	}
	// Nor a pack or fragment: a copy with data and no config is one no
	// server opens.
	for _, typ := range []backend.FileType{backend.Data, backend.Index} {
		if err := dst.List(ctx, typ, func(fi backend.FileInfo) error {
			return fmt.Errorf("%s copied without a config", fi.Handle)
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Healed on the source: the next pass stores it and completes.
	if err := src.ReplaceConfig(ctx, backend.NewByteReader([]byte("config v1"))); err != nil {
		t.Fatal(err)
	}
	if st, err = Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()}); err != nil || st.Snapshots != 2 {
		t.Fatalf("after healing: %+v %v", st, err)
	}
	if got := read(t, dst, cfg); string(got) != "config v1" {
		t.Fatalf("config on the copy: %q", got)
	}

	// The copy has a sound config: it is not replaced.
	forge(src)
	if _, err := Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()}); !errors.Is(err, ErrConfigNotVersion) {
		t.Fatalf("forged source config over a sound copy: %v", err)
	}
	if got := read(t, dst, cfg); string(got) != "config v1" {
		t.Fatalf("config on the copy: %q", got)
	}

	// Restic's: no config versions anywhere.
	src, dst = mem.New(), mem.New()
	put(t, src, backend.Config, "restic config")
	put(t, src, backend.Snapshots, "restic snapshot")
	if st, err := Sync(ctx, src, dst, Options{SpoolDir: t.TempDir()}); err != nil || st.Copied != 2 {
		t.Fatalf("restic repository: %+v %v", st, err)
	}
	if got := read(t, dst, cfg); string(got) != "restic config" {
		t.Fatalf("config on the copy: %q", got)
	}
}

func TestSyncWantCopiesOnlyTheClosureAndAllTrustFiles(t *testing.T) {
	ctx := context.Background()
	src, hs := source(t)
	want := map[backend.Handle]bool{}
	var trust int
	for _, h := range hs {
		switch h.Type {
		case backend.Config, backend.Configs, backend.Rosters, backend.Keys:
			trust++
		case backend.Snapshots:
			if len(want) == 0 || !want[backend.Handle{Type: backend.Snapshots}] {
				want[h] = true
				want[backend.Handle{Type: backend.Snapshots}] = true // one snapshot only
			}
		case backend.Data:
			if len(h.Name)%2 == 0 || h.Name < "8" {
				want[h] = true
			}
		}
	}
	delete(want, backend.Handle{Type: backend.Snapshots})
	dst := mem.New()
	order := recorder(dst)
	st, err := Sync(ctx, src, dst, Options{SpoolDir: t.TempDir(), Want: func(h backend.Handle) bool { return want[h] }})
	if err != nil {
		t.Fatal(err)
	}
	got := map[backend.Handle]bool{}
	for _, h := range order() {
		got[h] = true
	}
	for _, h := range hs {
		isTrust := h.Type == backend.Config || h.Type == backend.Configs || h.Type == backend.Rosters || h.Type == backend.Keys
		if got[h] != (want[h] || isTrust) {
			t.Errorf("%s copied %v, wanted %v", h, got[h], want[h] || isTrust)
		}
	}
	if st.Copied != len(want)+trust || st.Snapshots != 1 {
		t.Fatalf("%+v, want %d files (1 snapshot)", st, len(want)+trust)
	}
	// A file the closure leaves out is not counted as lacking either.
	if st.Missing != st.Copied-1 { // Missing does not count the config
		t.Fatalf("missing %d, copied %d", st.Missing, st.Copied)
	}
}
