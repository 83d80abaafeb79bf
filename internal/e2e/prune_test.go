//go:build linux

package e2e

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// history tracks what each snapshot must restore to.
type history struct {
	e    *env
	src  string
	want map[string]map[string][32]byte // snapshot ID → file hashes
}

func newHistory(e *env) *history {
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	return &history{e: e, src: src, want: map[string]map[string][32]byte{}}
}

// record maps every snapshot not seen before to the source's current state.
func (h *history) record() {
	state := contentHashes(h.e.t, h.src)
	for _, s := range h.e.snapshots() {
		if _, ok := h.want[s.ID]; !ok {
			h.want[s.ID] = state
		}
	}
}

// change rewrites part of the tree: some files new, some removed, some kept.
func (h *history) change(rng *rand.Rand, step int) {
	entries, _ := os.ReadDir(h.src)
	for _, de := range entries {
		if rng.Intn(3) == 0 {
			os.Remove(filepath.Join(h.src, de.Name()))
		}
	}
	for i := range 1 + rng.Intn(3) {
		writeRandom(h.e.t, filepath.Join(h.src, fmt.Sprintf("s%03d-%d", step, i)), 1000+rng.Intn(3<<20))
	}
}

// verify restores every remaining snapshot with the owner key and compares
// it with what was backed up; check --read-data must be clean.
func (h *history) verify() {
	t := h.e.t
	t.Helper()
	snaps := h.e.snapshots()
	for _, s := range snaps {
		want, ok := h.want[s.ID]
		if !ok {
			t.Fatalf("snapshot %s appeared from nowhere", s.ShortID)
		}
		target := filepath.Join(h.e.dir, "restore-"+s.ShortID)
		h.e.ok("restore", s.ID, "--target", target)
		got := contentHashes(t, filepath.Join(target, h.src))
		if len(got) != len(want) {
			t.Fatalf("snapshot %s restored %d files, want %d", s.ShortID, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("snapshot %s: %s differs", s.ShortID, k)
			}
		}
		os.RemoveAll(target)
	}
	if out := h.e.ok("check", "--read-data").stdout; !strings.Contains(out, "no problems found") {
		t.Fatalf("check: %s", out)
	}
}

func packCount(t *testing.T, repo string) int {
	n := 0
	filepath.Walk(filepath.Join(repo, "data"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func serverKey(e *env) (map[string]string, string) {
	spw := filepath.Join(e.dir, "server-password")
	os.WriteFile(spw, []byte("server secret\n"), 0o600)
	key := filepath.Join(e.dir, "s.key")
	e.ok("key", "add", "--role", "server", "--export", key, "--new-password-file", spw)
	return map[string]string{"CAIRN_PASSWORD_FILE": spw, "XDG_CACHE_HOME": filepath.Join(e.dir, "server-cache")}, key
}

// TestServerKeyForgetPrune: the server key alone forgets and prunes; a
// writer key may not; the owner restores every remaining snapshot.
func TestServerKeyForgetPrune(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	h := newHistory(e)
	rng := rand.New(rand.NewSource(1))
	for i := range 5 {
		h.change(rng, i)
		e.ok("backup", h.src)
		h.record()
	}
	sv, skey := serverKey(e)
	wpw := filepath.Join(e.dir, "writer-password")
	os.WriteFile(wpw, []byte("writer secret\n"), 0o600)
	wkey := filepath.Join(e.dir, "w.key")
	e.ok("key", "add", "--role", "writer", "--export", wkey, "--new-password-file", wpw)
	w := map[string]string{"CAIRN_PASSWORD_FILE": wpw, "XDG_CACHE_HOME": filepath.Join(e.dir, "writer-cache")}
	expectExit(t, e.runWith(w, "--key-file", wkey, "forget", "--keep-last", "1"), 11, "writer key")
	expectExit(t, e.runWith(w, "--key-file", wkey, "prune"), 11, "writer key")

	before := packCount(t, e.repo)
	r := e.runWith(sv, "--key-file", skey, "forget", "--keep-last", "2", "--json")
	if r.code != 0 {
		t.Fatalf("server forget: %d %s", r.code, r.stderr)
	}
	var out struct {
		Removed   int `json:"removed"`
		Snapshots []struct {
			Action  string   `json:"action"`
			Reasons []string `json:"reasons"`
		} `json:"snapshots"`
	}
	lastJSON(t, r.stdout, &out)
	if out.Removed != 3 || out.Snapshots[0].Action != "keep" || out.Snapshots[0].Reasons[0] != "last" {
		t.Fatalf("forget --json: %+v", out)
	}
	if ts, _ := os.ReadDir(filepath.Join(e.repo, "tombstones")); len(ts) != 3 {
		t.Fatalf("%d tombstones, want 3", len(ts))
	}
	if n := len(e.snapshots()); n != 2 {
		t.Fatalf("%d snapshots left", n)
	}
	r = e.runWith(sv, "--key-file", skey, "prune", "--grace", "0")
	if r.code != 0 {
		t.Fatalf("server prune: %d %s %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("prune: %s", r.stdout)
	if after := packCount(t, e.repo); after >= before {
		t.Errorf("prune left %d packs of %d", after, before)
	}
	if ps, _ := os.ReadDir(filepath.Join(e.repo, "plans")); len(ps) != 0 {
		t.Errorf("%d plans left after a grace-0 prune", len(ps))
	}
	h.verify()
}

// TestPruneConcurrentBackup runs a prune (with a grace period) while a
// backup is running, then another after the grace period: every snapshot
// restores.
func TestPruneConcurrentBackup(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	h := newHistory(e)
	rng := rand.New(rand.NewSource(2))
	for i := range 3 {
		h.change(rng, i)
		e.ok("backup", h.src)
		h.record()
	}
	e.ok("forget", "--keep-last", "1")
	for i := range 6 {
		writeRandom(t, filepath.Join(h.src, fmt.Sprintf("big%d", i)), 8<<20)
	}
	state := contentHashes(t, h.src)
	cmd := e.command(nil, "backup", h.src)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.ok("prune", "--grace", "3s", "--repack-threshold", "10")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("concurrent backup: %v", err)
	}
	for _, s := range e.snapshots() {
		if _, ok := h.want[s.ID]; !ok {
			h.want[s.ID] = state
		}
	}
	time.Sleep(3 * time.Second)
	e.ok("prune", "--grace", "3s")
	h.change(rng, 9)
	e.ok("backup", h.src)
	h.record()
	h.verify()
}

// TestRandomizedR11 interleaves backups of changing trees, forgets, prunes
// (grace 0 and not), repacks and SIGKILLs of backups and prunes, from a
// fixed seed; then every snapshot restores in full and check is clean.
func TestRandomizedR11(t *testing.T) {
	if testing.Short() {
		t.Skip("randomised interleaving")
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("CAIRN_R11_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (CAIRN_R11_SEED to replay)", seed)
	rng := rand.New(rand.NewSource(seed))
	e := newEnv(t)
	e.ok("init")
	h := newHistory(e)
	deadline := time.Now().Add(40 * time.Second)
	for step := 0; time.Now().Before(deadline) && step < 40; step++ {
		switch a := rng.Intn(10); {
		case a < 4:
			h.change(rng, step)
			e.ok("backup", h.src)
		case a < 5:
			h.change(rng, step)
			killAfter(t, e, rng, "backup", h.src)
		case a < 6:
			e.ok("forget", "--keep-last", fmt.Sprint(1+rng.Intn(3)))
		case a < 7:
			e.ok("prune", "--grace", "0", "--repack-threshold", fmt.Sprint(10+rng.Intn(80)))
		case a < 8:
			e.ok("prune", "--grace", "1s", "--repack-threshold", fmt.Sprint(10+rng.Intn(80)))
		default:
			killAfter(t, e, rng, "prune", "--grace", "0", "--repack-threshold", "20")
		}
		h.record()
	}
	e.ok("prune", "--grace", "0")
	h.verify()
}

// killAfter runs cairn and SIGKILLs it after a random short time.
func killAfter(t *testing.T, e *env, rng *rand.Rand, args ...string) {
	cmd := e.command(nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
}
