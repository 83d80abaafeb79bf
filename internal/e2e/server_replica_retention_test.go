//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// replicaSnapshotIDs lists a replica's snapshots as its owner sees them
// (`cairn snapshots --json` with the owner key, nothing but the replica).
func replicaSnapshotIDs(t *testing.T, s *serverEnv, loc, ownerKey string) []string {
	t.Helper()
	elsewhere := t.TempDir()
	r := s.runWith(map[string]string{"HOME": elsewhere, "XDG_CACHE_HOME": filepath.Join(elsewhere, "cache")},
		"-r", loc, "--key-file", ownerKey, "snapshots", "--json")
	if r.code != 0 {
		t.Fatalf("snapshots of the replica %s: exit %d\n%s", loc, r.code, r.stderr)
	}
	var sn []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sn); err != nil {
		t.Fatalf("snapshots --json of %s: %v\n%s", loc, err, r.stdout)
	}
	var ids []string
	for _, x := range sn {
		ids = append(ids, x.ID)
	}
	sort.Strings(ids)
	return ids
}

// waitFiles polls a replica's snapshot files until they are want.
func waitFiles(t *testing.T, s *serverEnv, replica string, want []string, within time.Duration) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	deadline := time.Now().Add(within)
	for {
		got := snapshotFiles(t, replica)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds snapshots %v, want %v\nserver log:\n%s", replica, short(got), short(want), s.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func short(ids []string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id[:8])
	}
	return out
}

// TestServerReplicaRetention: two directory destinations, one keeping
// the last snapshot (--keep-last 1, grace 0), one keeping everything.
// Over three backups and a forget on the primary, each replica holds
// exactly what its own policy keeps (listed with the owner key), the
// reconciliations every second never copy back a snapshot the replica's
// retention forgot, a snapshot whose data the replica had pruned brings
// that data back and restores byte-identically from the replica alone,
// and check --read-data is clean on both.
func TestServerReplicaRetention(t *testing.T) {
	s := startCairnServer(t)
	replicas := t.TempDir()
	one, all := filepath.Join(replicas, "one"), filepath.Join(replicas, "all")

	expectExit(t, s.run("server", "destination", "add", "x", "--location", one, "--all", "--keep-last", "-1"), 1, "--keep-last")
	expectExit(t, s.run("server", "destination", "add", "x", "--location", one, "--all", "--grace", "0s"), 1, "give its rules too")
	out := s.ok("server", "destination", "add", "one", "--location", one, "--all", "--keep-daily", "3",
		"--grace", "0s", "--retention-every", "1s", "--reconcile-every", "1s").stdout
	if !strings.Contains(out, "replicas keep daily 3") && !strings.Contains(out, "daily") {
		t.Fatalf("destination add:\n%s", out)
	}
	pf := filepath.Join(s.dir, "replica-policy.yaml")
	os.WriteFile(pf, []byte("keep: {last: 2}\n"), 0o600)
	if out := s.ok("server", "destination", "set", "one", "--policy-file", pf).stdout; !strings.Contains(out, "last 2") {
		t.Fatalf("destination set --policy-file:\n%s", out)
	}
	expectExit(t, s.run("server", "destination", "set", "one", "--policy-file", pf, "--keep-last", "1"), 1, "alternatives")
	os.WriteFile(pf, []byte("keep: {lasts: 2}\n"), 0o600)
	expectExit(t, s.run("server", "destination", "set", "one", "--policy-file", pf), 1, "lasts")
	// set replaces the policy: the last snapshot only.
	out = s.ok("server", "destination", "set", "one", "--keep-last", "1", "--grace", "0s", "--retention-every", "1s").stdout
	if !strings.Contains(out, "last 1") {
		t.Fatalf("destination set:\n%s", out)
	}
	expectExit(t, s.run("server", "destination", "set", "one"), 1, "nothing to change")
	expectExit(t, s.run("server", "destination", "set", "nope", "--keep-all"), 1, "no such destination")
	s.ok("server", "destination", "add", "all", "--location", all, "--all", "--reconcile-every", "1s")
	if show := s.ok("server", "destination", "show", "all").stdout; !strings.Contains(show, "keeps every snapshot") {
		t.Fatalf("destination show all:\n%s", show)
	}
	s.restart(t)

	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 2<<20) // in the first snapshot only, then again in the third
	b, err := os.ReadFile(filepath.Join(src, "a"))
	if err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "b"), 100<<10)
	ownerKey := filepath.Join(s.dir, "bob-owner.key")
	repo := s.url("bob", "laptop")
	s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t), "--owner-key-file", ownerKey)
	s.vars["CAIRN_KEY_FILE"] = ownerKey
	primary := filepath.Join(s.data, "repos", "bob", "laptop")
	oneRepl, allRepl := filepath.Join(one, "bob", "laptop"), filepath.Join(all, "bob", "laptop")

	s.ok("-r", repo, "backup", src)
	snap1 := newSnapshot(t, primary, nil)
	s.waitReplicated(t, "all", "bob", "laptop", snap1, 30*time.Second)
	waitFiles(t, s, oneRepl, []string{snap1}, 30*time.Second)
	if n := packBytes(t, oneRepl); n < 2<<20 {
		t.Fatalf("replica one holds %d bytes of packs, less than a alone", n)
	}

	// The second snapshot lacks a: the replica keeping one snapshot
	// forgets the first and prunes a's packs.
	os.Remove(filepath.Join(src, "a"))
	writeRandom(t, filepath.Join(src, "c"), 100<<10)
	s.ok("-r", repo, "backup", src)
	snap2 := newSnapshot(t, primary, []string{snap1})
	s.waitReplicated(t, "all", "bob", "laptop", snap2, 30*time.Second)
	waitFiles(t, s, oneRepl, []string{snap2}, 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for packBytes(t, oneRepl) >= 1<<20 { // a (2 MiB, random) is gone
		if time.Now().After(deadline) {
			t.Fatalf("the replica's prune left %d bytes of packs, a among them\nserver log:\n%s", packBytes(t, oneRepl), s.log())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Several reconciliations later (every second), the forgotten first
	// snapshot, still on the primary, has not come back.
	since := time.Now()
	deadline = time.Now().Add(30 * time.Second)
	for n := 0; n < 3; {
		if replicatedSinceOn(t, s, "one", since) {
			n++
			since = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconciliation of one within 30s\n%s", s.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := snapshotFiles(t, oneRepl); !slices.Equal(got, []string{snap2}) {
		t.Fatalf("after reconciliations the replica holds %v, want only %.8s", short(got), snap2)
	}

	// The third snapshot has a again: the owner's backup reuses its packs
	// on the primary (kept there by the first snapshot), and the replica
	// gets them back.
	os.WriteFile(filepath.Join(src, "a"), b, 0o600)
	want := contentHashes(t, src)
	s.ok("-r", repo, "backup", src)
	snap3 := newSnapshot(t, primary, []string{snap1, snap2})
	waitFiles(t, s, oneRepl, []string{snap3}, 30*time.Second)
	s.waitReplicated(t, "all", "bob", "laptop", snap3, 30*time.Second)

	// A forget on the primary is not mirrored.
	s.ok("-r", repo, "forget", snap2[:8])
	if slices.Contains(snapshotFiles(t, primary), snap2) {
		t.Fatalf("forget on the primary left %.8s", snap2)
	}

	if got := replicaSnapshotIDs(t, s, oneRepl, ownerKey); !slices.Equal(got, []string{snap3}) {
		t.Fatalf("replica one lists %v, want %.8s", short(got), snap3)
	}
	if got, want := replicaSnapshotIDs(t, s, allRepl, ownerKey), slices.Sorted(slices.Values([]string{snap1, snap2, snap3})); !slices.Equal(got, want) {
		t.Fatalf("replica all lists %v, want %v", short(got), short(want))
	}
	restoreMatches(t, s, oneRepl, ownerKey, snap3, src, want, nil)

	// destination show reports each replica's last retention run: it kept
	// the one snapshot, with no error; the destination without a policy
	// has none.
	var shown struct {
		Replicas []struct {
			Run *struct {
				At      string `json:"at"`
				Kept    int    `json:"kept"`
				Removed int    `json:"removed"`
				Error   string `json:"error"`
			} `json:"retention_run"`
		} `json:"replicas"`
	}
	if err := json.Unmarshal([]byte(s.ok("server", "destination", "show", "one", "--json").stdout), &shown); err != nil {
		t.Fatal(err)
	}
	if len(shown.Replicas) != 1 || shown.Replicas[0].Run == nil || shown.Replicas[0].Run.Kept != 1 || shown.Replicas[0].Run.Error != "" {
		t.Fatalf("destination show one --json: retention runs %+v", shown.Replicas)
	}
	if show := s.ok("server", "destination", "show", "one").stdout; !strings.Contains(show, "LAST RETENTION") {
		t.Fatalf("destination show one:\n%s", show)
	}
	if show := s.ok("server", "destination", "show", "all").stdout; strings.Contains(show, "LAST RETENTION") {
		t.Fatalf("destination show all (no policy) lists retention runs:\n%s", show)
	}
	for _, loc := range []string{oneRepl, allRepl} {
		elsewhere := t.TempDir()
		if r := s.runWith(map[string]string{"HOME": elsewhere, "XDG_CACHE_HOME": filepath.Join(elsewhere, "cache")},
			"-r", loc, "--key-file", ownerKey, "check", "--read-data"); r.code != 0 {
			t.Fatalf("check --read-data on %s: exit %d\n%s%s", loc, r.code, r.stdout, r.stderr)
		}
	}
}

// packBytes is the size of a directory repository's packs.
func packBytes(t *testing.T, repo string) int64 {
	t.Helper()
	var n int64
	for _, p := range packFiles(t, repo) {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// replicatedSinceOn reports whether dest's replica of bob/laptop had a
// pass without error after since.
func replicatedSinceOn(t *testing.T, s *serverEnv, dest string, since time.Time) bool {
	t.Helper()
	var out struct {
		Replicas []struct {
			ReplicatedAt string `json:"replicated_at"`
		} `json:"replicas"`
	}
	if err := json.Unmarshal([]byte(s.ok("server", "destination", "show", dest, "--json").stdout), &out); err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Replicas {
		at, err := time.Parse(time.RFC3339Nano, r.ReplicatedAt)
		if err == nil && at.After(since) {
			return true
		}
	}
	return false
}
