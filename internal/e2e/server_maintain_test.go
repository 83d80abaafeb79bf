//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServerMaintainsDuringBackups: a real server applies alice's policy
// (keep the last 3, every second, a short grace) and garbage-collects her
// repository on its own while she keeps backing up a changing tree. Then
// the owner restores every remaining snapshot byte for byte, check
// --read-data is clean, and no more than 3 snapshots are left.
func TestServerMaintainsDuringBackups(t *testing.T) {
	s := startCairnServer(t)
	s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	repo := s.url("alice", "main")
	s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t))
	// Refused policies name the wrong flag.
	expectExit(t, s.run("server", "client", "policy", "alice", "--keep-last", "-2"), 1, "--keep-last")
	expectExit(t, s.run("server", "client", "policy", "alice", "--keep-last", "3", "--every", "10ms"), 1, "--every")
	s.ok("server", "client", "policy", "alice", "--keep-last", "3", "--every", "1s", "--grace", "4s")

	src := filepath.Join(s.dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	writeRandom(t, filepath.Join(src, "stable"), 1<<20)
	want := map[string]map[string][32]byte{} // snapshot ID → content
	seen := map[string]bool{}
	rejected := 0
	for i := range 12 {
		// Change the tree: a new file, a replaced one (garbage once its
		// snapshots are forgotten), and now and then a removed one.
		writeRandom(t, filepath.Join(src, "sub", fmt.Sprintf("new-%02d", i)), 64<<10)
		writeRandom(t, filepath.Join(src, "churn"), 512<<10)
		if i%4 == 3 {
			os.Remove(filepath.Join(src, "sub", fmt.Sprintf("new-%02d", i-2)))
		}
		r := s.run("-r", repo, "backup", src)
		if r.code != 0 {
			// A commit the server's prune got ahead of is rejected whole
			// (R11) and the backup is run again; anything else is a bug.
			if !strings.Contains(r.stderr, "commit rejected") {
				t.Fatalf("backup %d: exit %d\n%s\nserver log:\n%s", i, r.code, r.stderr, s.log())
			}
			rejected++
			s.ok("-r", repo, "backup", src)
		}
		var newest snapJSON
		for _, sn := range s.snapshotsOf(repo) {
			if !seen[sn.ID] && sn.Seq >= newest.Seq {
				newest = sn
			}
		}
		if newest.ID == "" {
			t.Fatalf("backup %d: no new snapshot", i)
		}
		seen[newest.ID] = true
		want[newest.ID] = contentHashes(t, src)
		// Every other backup waits for a maintenance job to run after
		// it, so backups and jobs interleave whatever the machine's speed.
		if i%2 == 1 {
			jobs, _, _ := s.maintenanceTotals(t, "alice")
			waitFor(t, time.Minute, "a maintenance job", func() bool {
				n, _, _ := s.maintenanceTotals(t, "alice")
				return n > jobs
			})
		}
	}
	t.Logf("%d commits rejected and redone", rejected)

	// Let the last plans pass their grace and be swept.
	var packs, removed int
	waitFor(t, time.Minute, "packs deleted and at most 3 snapshots left", func() bool {
		packs, removed = s.jobTotals(t, "alice")
		return removed > 0 && packs > 0 && len(s.snapshotsOf(repo)) <= 3
	})
	// Stop maintenance and look at the result as the owner would
	// afterwards: a check running alongside a sweep sees index fragments
	// and packs come and go. Clearing the policy stops new jobs; stopping
	// the server waits for the job under way; the restarted server runs
	// none.
	s.ok("server", "client", "policy", "alice", "--clear")
	s.restart(t)
	repo = s.url("alice", "main")
	left := s.snapshotsOf(repo)
	if len(left) > 3 || len(left) == 0 {
		t.Fatalf("%d snapshots left, want 1…3", len(left))
	}
	for _, sn := range left {
		content, ok := want[sn.ID]
		if !ok {
			t.Fatalf("snapshot %s was not made by this test", sn.ShortID)
		}
		target := filepath.Join(s.dir, "restore-"+sn.ShortID)
		s.ok("-r", repo, "restore", sn.ID, "--target", target)
		got := contentHashes(t, filepath.Join(target, src))
		if len(got) != len(content) {
			t.Fatalf("snapshot %s: restored %d files, backed up %d", sn.ShortID, len(got), len(content))
		}
		for p, h := range content {
			if got[p] != h {
				t.Fatalf("snapshot %s: %s restored differently", sn.ShortID, p)
			}
		}
	}
	s.ok("-r", repo, "check", "--read-data")
	show := s.ok("server", "client", "show", "alice").stdout
	if !strings.Contains(show, "alice/main") {
		t.Fatalf("client show:\n%s", show)
	}
	t.Logf("removed %d snapshots, deleted %d packs\n%s", removed, packs, show)
}

func (s *serverEnv) snapshotsOf(repo string) []snapJSON {
	s.t.Helper()
	var sn []snapJSON
	lastJSON(s.t, s.ok("-r", repo, "snapshots", "--json").stdout, &sn)
	return sn
}

// restart stops the server with SIGINT, waits until it has exited (its
// maintenance job, if one runs, ends first) and starts it again, on a new
// address.
func (s *serverEnv) restart(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(s.pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// The process is reaped by start's cleanup; until then an exited
	// server is a zombie ("Z" after the command name in /proc/PID/stat).
	stat := fmt.Sprintf("/proc/%d/stat", s.pid)
	waitFor(t, time.Minute, "the server exits", func() bool {
		b, err := os.ReadFile(stat)
		i := strings.LastIndexByte(string(b), ')')
		return err != nil || (i > 0 && len(b) > i+2 && b[i+2] == 'Z')
	})
	s.start(t)
}

// jobTotals returns the packs deleted and snapshots removed by all the
// client's recorded maintenance jobs; a failed job (of the last ten)
// fails the test.
func (s *serverEnv) jobTotals(t *testing.T, client string) (packs, removed int) {
	t.Helper()
	_, packs, removed = s.maintenanceTotals(t, client)
	return packs, removed
}

// maintenanceTotals is jobTotals with the number of jobs recorded.
func (s *serverEnv) maintenanceTotals(t *testing.T, client string) (jobs, packs, removed int) {
	t.Helper()
	var out struct {
		Maintenance struct {
			Jobs []struct {
				Removed int    `json:"snapshots_removed"`
				Packs   int    `json:"packs_deleted"`
				Error   string `json:"error"`
			} `json:"jobs"`
			Totals struct {
				Jobs    int `json:"jobs"`
				Removed int `json:"snapshots_removed"`
				Packs   int `json:"packs_deleted"`
			} `json:"totals"`
		} `json:"maintenance"`
	}
	if err := json.Unmarshal([]byte(s.ok("server", "client", "show", client, "--json").stdout), &out); err != nil {
		t.Fatal(err)
	}
	for _, j := range out.Maintenance.Jobs {
		if j.Error != "" {
			t.Fatalf("maintenance job failed: %s\n%s", j.Error, s.log())
		}
	}
	return out.Maintenance.Totals.Jobs, out.Maintenance.Totals.Packs, out.Maintenance.Totals.Removed
}
