//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// start runs cairn in the background; wait returns its result.
func (e *env) start(args ...string) (wait func() result) {
	e.t.Helper()
	cmd := e.command(nil, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start cairn %v: %v", args, err)
	}
	var once sync.Once
	var r result
	return func() result {
		once.Do(func() {
			err := cmd.Wait()
			r = result{out.String(), errb.String(), 0}
			if err != nil {
				r.code = -1
				if cmd.ProcessState != nil {
					r.code = cmd.ProcessState.ExitCode()
				}
			}
		})
		return r
	}
}

// TestConcurrentBackupsNeverFork: 24 rounds of two backups by one key into
// one local repository at once, with a check running alongside. Every
// backup stores its snapshot and says so; the owner's chain never forks;
// check --read-data then finds nothing wrong and every snapshot restores
// to what its round backed up.
func TestConcurrentBackupsNeverFork(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("base%d", i)), 256<<10)
	}
	const rounds = 24
	want := map[string]map[string][32]byte{} // tag → content
	for r := range rounds {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("round%02d", r)), 64<<10)
		tag := fmt.Sprintf("round%02d", r)
		want[tag] = contentHashes(t, src)
		a := e.start("backup", src, "--tag", tag)
		b := e.start("backup", src, "--tag", tag)
		c := e.start("check")
		for who, w := range map[string]func() result{"first backup": a, "second backup": b, "check": c} {
			if res := w(); res.code != 0 {
				t.Fatalf("round %d: %s exited %d\nstdout: %s\nstderr: %s", r, who, res.code, res.stdout, res.stderr)
			}
		}
	}
	out := e.ok("check", "--read-data").stdout
	if !strings.Contains(out, "no problems found") {
		t.Fatalf("check --read-data after concurrent backups: %s", out)
	}
	snaps := e.snapshots()
	if len(snaps) != 2*rounds {
		t.Fatalf("%d snapshots, want %d", len(snaps), 2*rounds)
	}
	seqs := map[uint64]bool{}
	for _, s := range snaps {
		if seqs[s.Seq] {
			t.Fatalf("seq %d used twice", s.Seq)
		}
		seqs[s.Seq] = true
		if len(s.Tags) != 1 {
			t.Fatalf("snapshot %s has tags %v", s.ShortID, s.Tags)
		}
		target := filepath.Join(t.TempDir(), "restore")
		e.ok("restore", s.ID, "--target", target)
		got := contentHashes(t, filepath.Join(target, src))
		exp := want[s.Tags[0]]
		if len(got) != len(exp) {
			t.Fatalf("snapshot %s restored %d files, want %d", s.ShortID, len(got), len(exp))
		}
		for k, h := range exp {
			if got[k] != h {
				t.Errorf("snapshot %s: %s differs after restore", s.ShortID, k)
			}
		}
	}
}

// TestBackupMissingPath: a path that does not exist among several is a
// warning: the snapshot of the others is saved, exit 3. Only when no
// path exists does the backup fail.
func TestBackupMissingPath(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "a"), 10_000)
	gone := filepath.Join(t.TempDir(), "nonexistent")
	r := e.run("backup", gone, src)
	if r.code != 3 || !strings.Contains(r.stderr, "cairn: warning: "+gone) || !strings.Contains(r.stderr, "saved") {
		t.Fatalf("backup with a missing path: exit %d, want 3 with a warning\nstderr: %s", r.code, r.stderr)
	}
	if n := len(e.snapshots()); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
	target := filepath.Join(t.TempDir(), "restore")
	e.ok("restore", "latest", "--target", target)
	if fileHash(t, filepath.Join(target, src, "a")) != fileHash(t, filepath.Join(src, "a")) {
		t.Fatal("the existing path was not restored")
	}
	r = e.run("backup", gone)
	if r.code == 0 || r.code == 3 || len(e.snapshots()) != 1 {
		t.Fatalf("backup of only a missing path: exit %d, %d snapshots\nstderr: %s", r.code, len(e.snapshots()), r.stderr)
	}
}

// TestNoHomeRunsWithoutCache: with no $HOME and no cache directory (cron
// under `env -i`) commands run without a cache; CAIRN_CACHE_DIR names one.
func TestNoHomeRunsWithoutCache(t *testing.T) {
	e := newEnv(t)
	e.vars["XDG_CACHE_HOME"] = ""
	e.vars["HOME"] = ""
	e.ok("init")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "a"), 10_000)
	r := e.ok("backup", src)
	if !strings.Contains(r.stderr, "running without a cache") {
		t.Fatalf("no warning about the missing cache: %s", r.stderr)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	e.vars["CAIRN_CACHE_DIR"] = cache
	e.ok("backup", src)
	e.ok("snapshots")
	if ents, err := os.ReadDir(cache); err != nil || len(ents) == 0 {
		t.Fatalf("CAIRN_CACHE_DIR %s not used (%v)", cache, err)
	}
}

// TestPruneGraceZeroSweepsNow: `forget --prune` condemns with the default
// grace; a `prune --grace 0` right after deletes those packs at once.
func TestPruneGraceZeroSweepsNow(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		// Each backup's data alone in its pack: replaced, then backed up.
		writeRandom(t, filepath.Join(src, "f"), 2<<20)
		e.ok("backup", src, "--time", fmt.Sprintf("2026-11-0%d 10:00:00", i+1))
	}
	e.ok("forget", "--keep-last", "2", "--prune")
	packs := func() int {
		n := 0
		filepath.WalkDir(filepath.Join(e.repo, "data"), func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
		return n
	}
	before := packs()
	out := e.ok("prune", "--grace", "0").stdout
	if after := packs(); after >= before || !strings.Contains(out, "deleted") {
		t.Fatalf("prune --grace 0 after forget --prune: %d packs before, %d after\n%s", before, after, out)
	}
	if out := e.ok("check", "--read-data").stdout; !strings.Contains(out, "no problems found") {
		t.Fatalf("check after prune --grace 0: %s", out)
	}
}

// TestRetentionCopiedRepository: seven daily snapshots made with --time,
// then every snapshot file touched to one date (what copying a repository
// does): --keep-daily 7 keeps all seven, aged by their claimed times; a
// space budget that fits removes nothing, and works on the client.
func TestRetentionCopiedRepository(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d", i)), 4096)
		e.ok("backup", src, "--time", fmt.Sprintf("2026-11-%02d 10:00:00", 20+i))
	}
	ents, err := os.ReadDir(filepath.Join(e.repo, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	copied := time.Date(2026, 11, 1, 0, 0, 0, 0, time.Local)
	for _, d := range ents {
		if err := os.Chtimes(filepath.Join(e.repo, "snapshots", d.Name()), copied, copied); err != nil {
			t.Fatal(err)
		}
	}
	e.ok("forget", "--keep-daily", "7")
	if n := len(e.snapshots()); n != 7 {
		t.Fatalf("--keep-daily 7 left %d of 7 daily snapshots of a copied repository", n)
	}
	e.ok("forget", "--max-size", "1G")
	if n := len(e.snapshots()); n != 7 {
		t.Fatalf("--max-size 1G left %d of 7 snapshots", n)
	}
}
