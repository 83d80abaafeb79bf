//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/minioserver"
)

// replicaRow is a line of `cairn server replication status --json`.
type replicaRow struct {
	Destination string  `json:"destination"`
	Client      string  `json:"client"`
	Repo        string  `json:"repo"`
	Snapshot    string  `json:"snapshot"`
	Lag         float64 `json:"lag_seconds"`
	LagBytes    int64   `json:"lag_bytes"`
	LastError   string  `json:"last_error"`
}

func (s *serverEnv) replicaStatus(t *testing.T) []replicaRow {
	t.Helper()
	var rows []replicaRow
	if err := json.Unmarshal([]byte(s.ok("server", "replication", "status", "--json").stdout), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// waitReplicated polls `replication status` until dest holds snapshot of
// client/repo and shows no lag; it returns how long that took.
func (s *serverEnv) waitReplicated(t *testing.T, dest, client, repo, snapshot string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last replicaRow
	deadline := start.Add(within)
	for {
		for _, r := range s.replicaStatus(t) {
			if r.Destination == dest && r.Client == client && r.Repo == repo {
				last = r
				if r.Snapshot == snapshot && r.Lag == 0 && r.LagBytes == 0 && r.LastError == "" {
					return time.Since(start)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s on %s: snapshot %.8s not replicated within %v; status %+v\nserver log:\n%s", client, repo, dest, snapshot, within, last, s.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// snapshotFiles lists a directory repository's snapshot files.
func snapshotFiles(t *testing.T, repo string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(repo, "snapshots"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if len(e.Name()) == 64 {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// newSnapshot returns the one snapshot file of repo not in before.
func newSnapshot(t *testing.T, repo string, before []string) string {
	t.Helper()
	var out []string
	for _, n := range snapshotFiles(t, repo) {
		if !contains(before, n) {
			out = append(out, n)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%s: %d new snapshot files, want 1", repo, len(out))
	}
	return out[0]
}

// packFiles lists a directory repository's packs (data/xx/name).
func packFiles(t *testing.T, repo string) []string {
	t.Helper()
	var out []string
	shards, _ := os.ReadDir(filepath.Join(repo, "data"))
	for _, sh := range shards {
		ents, _ := os.ReadDir(filepath.Join(repo, "data", sh.Name()))
		for _, e := range ents {
			if len(e.Name()) == 64 {
				out = append(out, filepath.Join(repo, "data", sh.Name(), e.Name()))
			}
		}
	}
	return out
}

// restoreMatches restores snapshot (or "latest") of a replica as a
// machine with nothing but the replica and the owner key would, and
// compares it with want.
func restoreMatches(t *testing.T, s *serverEnv, loc, ownerKey, snapshot, src string, want map[string][32]byte, extra map[string]string) {
	t.Helper()
	elsewhere := t.TempDir()
	vars := map[string]string{"HOME": elsewhere, "XDG_CACHE_HOME": filepath.Join(elsewhere, "cache"), "XDG_CONFIG_HOME": filepath.Join(elsewhere, "config")}
	for k, v := range extra {
		vars[k] = v
	}
	target := filepath.Join(elsewhere, "restore")
	if r := s.runWith(vars, "-r", loc, "--key-file", ownerKey, "restore", snapshot, "--target", target); r.code != 0 {
		t.Fatalf("restore %s from the replica %s: exit %d\n%s%s", snapshot, loc, r.code, r.stdout, r.stderr)
	}
	got := contentHashes(t, filepath.Join(target, src))
	if len(got) != len(want) {
		t.Fatalf("restore from %s: %d files, want %d", loc, len(got), len(want))
	}
	for p, h := range want {
		if got[p] != h {
			t.Fatalf("restore from %s: %s differs", loc, p)
		}
	}
}

// TestServerReplicatesOnCommit: a server with a directory destination
// (every client) and a MinIO destination (bob only, credentials from a
// file) copies bob's cairn snapshot to both within seconds of the commit,
// and alice's restic snapshot to the directory. Each replica restores
// byte-identically with nothing but itself and the owner key (restic's
// with its password); status, destination show and /metrics report it.
// Given its own retention, the bucket keeps what that policy keeps while
// the directory keeps every snapshot, also one forgotten on the primary.
func TestServerReplicatesOnCommit(t *testing.T) {
	minio := minioserver.Start(t)
	s := startCairnServer(t)
	replicas := filepath.Join(t.TempDir(), "replicas")
	creds := filepath.Join(s.dir, "minio.aws")
	if err := os.WriteFile(creds, []byte(fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", minioserver.AccessKey, minioserver.SecretKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	s3loc := "s3:" + minio.Endpoint() + "/replicas/site2"

	// Bad input is refused with the flag's name, and nothing is recorded.
	expectExit(t, s.run("server", "destination", "add", "x", "--location", replicas), 1, "--clients a,b or --all")
	expectExit(t, s.run("server", "destination", "add", "x", "--location", replicas, "--clients", "nobody"), 1, "nobody")
	expectExit(t, s.run("server", "destination", "add", "x", "--location", replicas, "--all", "--bandwidth", "fast"), 1, "--bandwidth")
	expectExit(t, s.run("server", "destination", "add", "x", "--location", filepath.Join(s.data, "r"), "--all"), 1, "overlaps the server's data directory")
	expectExit(t, s.run("server", "destination", "add", "x", "--location", s3loc, "--credentials-file", filepath.Join(s.dir, "alice.pass"), "--all"), 1, "aws_access_key_id")
	if out := s.ok("server", "destination", "list").stdout; !strings.Contains(out, "no destinations") {
		t.Fatalf("destination list after refusals:\n%s", out)
	}

	out := s.ok("server", "destination", "add", "disk", "--location", replicas, "--all", "--concurrency", "2").stdout
	if !strings.Contains(out, "added destination disk") {
		t.Fatalf("destination add: %s", out)
	}
	s.ok("server", "destination", "add", "minio", "--location", s3loc, "--credentials-file", creds, "--clients", "bob", "--bandwidth", "64MiB/s")
	expectExit(t, s.run("server", "destination", "add", "disk", "--location", replicas, "--all"), 1, "already exists")
	list := s.ok("server", "destination", "list").stdout
	if !strings.Contains(list, "disk") || !strings.Contains(list, "minio") || !strings.Contains(list, "64.00 MiB/s") {
		t.Fatalf("destination list:\n%s", list)
	}
	s.restart(t) // the running server would pick them up within seconds; a restart makes it now

	// bob backs up with cairn.
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	writeRandom(t, filepath.Join(src, "a"), 3<<20)
	writeRandom(t, filepath.Join(src, "sub", "b"), 300<<10)
	want := contentHashes(t, src)
	ownerKey := filepath.Join(s.dir, "bob-owner.key")
	repo := s.url("bob", "laptop")
	s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t), "--owner-key-file", ownerKey)
	s.vars["CAIRN_KEY_FILE"] = ownerKey
	primary := filepath.Join(s.data, "repos", "bob", "laptop")
	s.ok("-r", repo, "backup", src)
	snap := newSnapshot(t, primary, nil)
	for _, dest := range []string{"disk", "minio"} {
		took := s.waitReplicated(t, dest, "bob", "laptop", snap, 30*time.Second)
		t.Logf("bob/laptop on %s: replicated %v after the commit returned", dest, took.Round(time.Millisecond))
	}
	restoreMatches(t, s, filepath.Join(replicas, "bob", "laptop"), ownerKey, "latest", src, want, nil)
	aws := map[string]string{"AWS_ACCESS_KEY_ID": minioserver.AccessKey, "AWS_SECRET_ACCESS_KEY": minioserver.SecretKey}
	restoreMatches(t, s, s3loc+"/bob/laptop", ownerKey, "latest", src, want, aws)

	// The bucket gets its own retention (the last snapshot, grace 0). After
	// a second backup and a forget of the first on the primary, the bucket
	// holds the second only (its policy), the directory both (it keeps
	// everything), and each restores what it keeps on its own.
	s.ok("server", "destination", "set", "minio", "--keep-last", "1", "--grace", "0s", "--retention-every", "1s")
	writeRandom(t, filepath.Join(src, "sub", "b"), 200<<10)
	want2 := contentHashes(t, src)
	s.ok("-r", repo, "backup", src)
	snap2 := newSnapshot(t, primary, []string{snap})
	s.waitReplicated(t, "disk", "bob", "laptop", snap2, 30*time.Second)
	waitFor(t, time.Minute, "the bucket keeps the last snapshot only", func() bool {
		keys := bucketKeys(t, minio, "replicas", "site2/bob/laptop/snapshots/")
		return len(keys) == 1 && strings.HasSuffix(keys[0], snap2)
	})
	s.ok("-r", repo, "forget", snap[:8])
	if got := snapshotFiles(t, filepath.Join(replicas, "bob", "laptop")); len(got) != 2 {
		t.Fatalf("the directory replica holds %d snapshots after a forget on the primary, want 2", len(got))
	}
	restoreMatches(t, s, s3loc+"/bob/laptop", ownerKey, snap2, src, want2, aws)
	restoreMatches(t, s, filepath.Join(replicas, "bob", "laptop"), ownerKey, snap, src, want, nil)
	restoreMatches(t, s, filepath.Join(replicas, "bob", "laptop"), ownerKey, snap2, src, want2, nil)
	snap = snap2

	// alice backs up with restic: replicated to the directory only.
	if _, err := exec.LookPath("restic"); err == nil {
		ctx := context.Background()
		rsrc := filepath.Join(s.dir, "rsrc")
		os.MkdirAll(rsrc, 0o755)
		writeRandom(t, filepath.Join(rsrc, "big"), 2<<20)
		url := s.url("alice", "restic")
		for _, args := range [][]string{{"init"}, {"backup", rsrc}} {
			if out, err := restic(t, ctx, "restic", s.dir, url, args...); err != nil {
				t.Fatalf("restic %s: %v\n%s", args[0], err, out)
			}
		}
		rsnap := newSnapshot(t, filepath.Join(s.data, "repos", "alice", "restic"), nil)
		s.waitReplicated(t, "disk", "alice", "restic", rsnap, 60*time.Second)
		rrepl := filepath.Join(replicas, "alice", "restic")
		target := filepath.Join(t.TempDir(), "rrestore")
		for _, args := range [][]string{{"check", "--read-data"}, {"restore", "latest", "--target", target}} {
			if out, err := restic(t, ctx, "restic", t.TempDir(), rrepl, args...); err != nil {
				t.Fatalf("restic %s on the replica: %v\n%s", args[0], err, out)
			}
		}
		if fileHash(t, filepath.Join(target, rsrc, "big")) != fileHash(t, filepath.Join(rsrc, "big")) {
			t.Fatal("restic restored the replica's file differently")
		}
		for _, r := range s.replicaStatus(t) {
			if r.Destination == "minio" && r.Client == "alice" {
				t.Fatalf("alice replicated to a destination for bob only: %+v", r)
			}
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("restic is not installed (.ci/run installs Debian's)")
	}

	// What people and Prometheus see.
	status := s.ok("server", "replication", "status").stdout
	if !strings.Contains(status, "DESTINATION") || !strings.Contains(status, snap[:8]) || !strings.Contains(status, "up to date") {
		t.Fatalf("replication status:\n%s", status)
	}
	show := s.ok("server", "destination", "show", "minio").stdout
	if !strings.Contains(show, creds) || !strings.Contains(show, "clients bob") || !strings.Contains(show, snap[:8]) {
		t.Fatalf("destination show:\n%s", show)
	}
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{
		`cairn_replication_lag_seconds{client="bob",destination="minio",repo="laptop"} 0`,
		`cairn_replication_lag_bytes{client="bob",destination="disk",repo="laptop"} 0`,
		`cairn_replication_last_success_timestamp_seconds{client="bob",destination="disk",repo="laptop"}`,
	} {
		if !strings.Contains(string(body), m) {
			t.Fatalf("/metrics lacks %s:\n%s", m, grepLines(string(body), "cairn_replication"))
		}
	}

	// Removing a destination stops replication there and keeps its replicas.
	s.ok("server", "destination", "remove", "minio")
	for _, r := range s.replicaStatus(t) {
		if r.Destination == "minio" {
			t.Fatalf("status after remove: %+v", r)
		}
	}
	if keys := bucketKeys(t, minio, "replicas", "site2/bob/laptop/snapshots/"); len(keys) != 1 {
		t.Fatalf("the removed destination's replica: %v", keys)
	}
}

// TestServerReplicationResumesAndHeals: a server stopped in the middle of
// copying a snapshot (a slow destination: 1 MiB/s) completes the replica
// after its restart; a pack deleted on the replica is copied again by the
// next reconciliation; a forget and prune on the primary (the server's
// own retention) deletes nothing on the replica, which still restores
// the forgotten snapshot byte-identically.
func TestServerReplicationResumesAndHeals(t *testing.T) {
	s := startCairnServer(t)
	replicas := filepath.Join(t.TempDir(), "replicas")
	s.ok("server", "destination", "add", "slow", "--location", replicas, "--all", "--bandwidth", "1MiB/s", "--reconcile-every", "2s")
	s.restart(t)

	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 6<<20)
	first := contentHashes(t, src)
	ownerKey := filepath.Join(s.dir, "bob-owner.key")
	repo := s.url("bob", "laptop")
	s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t), "--owner-key-file", ownerKey)
	s.vars["CAIRN_KEY_FILE"] = ownerKey
	primary := filepath.Join(s.data, "repos", "bob", "laptop")
	replica := filepath.Join(replicas, "bob", "laptop")
	s.ok("-r", repo, "backup", src)
	snap1 := newSnapshot(t, primary, nil)

	// Stop the server once the copy is under way (the status shows the
	// bytes it has still to copy), before it is complete.
	waitFor(t, time.Minute, "the copy under way", func() bool {
		rows := s.replicaStatus(t)
		return len(rows) == 1 && rows[0].LagBytes > 0
	})
	if err := syscall.Kill(s.pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("/proc/%d/stat", s.pid)
	waitFor(t, time.Minute, "the server exits", func() bool {
		b, err := os.ReadFile(stat)
		i := strings.LastIndexByte(string(b), ')')
		return err != nil || (i > 0 && len(b) > i+2 && b[i+2] == 'Z')
	})
	if n := len(snapshotFiles(t, replica)); n != 0 {
		t.Fatalf("the replica had its snapshot before the server stopped (%d): the stop came too late to test a resume", n)
	}
	rows := s.replicaStatus(t)
	if len(rows) != 1 || rows[0].Lag == 0 || rows[0].Snapshot != "" {
		t.Fatalf("status of a stopped, incomplete replica: %+v", rows)
	}
	s.start(t)
	repo = s.url("bob", "laptop") // a new address
	s.waitReplicated(t, "slow", "bob", "laptop", snap1, 2*time.Minute)
	restoreMatches(t, s, replica, ownerKey, "latest", src, first, nil)

	// A pack lost on the replica is healed by reconciliation.
	packs := packFiles(t, replica)
	lost := packs[0]
	wantHash := fileHash(t, lost)
	if err := os.Remove(lost); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the lost pack copied again", func() bool {
		_, err := os.Stat(lost)
		return err == nil
	})
	if fileHash(t, lost) != wantHash {
		t.Fatal("the healed pack differs")
	}

	// A second snapshot, then the primary's retention keeps only it and
	// prunes the first one's data.
	writeRandom(t, filepath.Join(src, "a"), 1<<20)
	second := contentHashes(t, src)
	s.ok("-r", repo, "backup", src)
	snap2 := newSnapshot(t, primary, []string{snap1})
	s.waitReplicated(t, "slow", "bob", "laptop", snap2, 2*time.Minute)
	replicaPacks := len(packFiles(t, replica))
	s.ok("server", "client", "policy", "bob", "--keep-last", "1", "--every", "1s", "--grace", "0s")
	waitFor(t, time.Minute, "the primary forgets and prunes", func() bool {
		packs, removed := s.jobTotals(t, "bob")
		return packs > 0 && removed > 0
	})
	s.ok("server", "client", "policy", "bob", "--clear")
	if n := len(snapshotFiles(t, primary)); n != 1 {
		t.Fatalf("the primary holds %d snapshots after keep-last 1", n)
	}
	// Let reconciliation run over the pruned primary (it copies the
	// tombstone and any repacked files) before looking at the replica.
	restarted := time.Now()
	s.restart(t)
	waitFor(t, time.Minute, "a reconciliation after the prune", func() bool { return replicatedSince(t, s, restarted) })
	if rows := s.replicaStatus(t); len(rows) != 1 || rows[0].LastError != "" || rows[0].Lag != 0 {
		t.Fatalf("status after reconciling the pruned primary: %+v", rows)
	}
	if got := snapshotFiles(t, replica); len(got) != 2 {
		t.Fatalf("the replica holds %d snapshots after the primary's prune, want 2", len(got))
	}
	if n := len(packFiles(t, replica)); n < replicaPacks {
		t.Fatalf("the replica lost packs: %d, had %d", n, replicaPacks)
	}
	var snaps []snapJSON
	elsewhere := t.TempDir()
	r := s.runWith(map[string]string{"HOME": elsewhere, "XDG_CACHE_HOME": filepath.Join(elsewhere, "cache")},
		"-r", replica, "--key-file", ownerKey, "snapshots", "--json")
	if r.code != 0 {
		t.Fatalf("snapshots of the replica: %s", r.stderr)
	}
	lastJSON(t, r.stdout, &snaps)
	if len(snaps) != 2 {
		t.Fatalf("the replica lists %d snapshots, want 2", len(snaps))
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].Seq < snaps[j].Seq })
	restoreMatches(t, s, replica, ownerKey, snaps[0].ID, src, first, nil)
	restoreMatches(t, s, replica, ownerKey, snaps[1].ID, src, second, nil)
}

// replicatedSince reports whether the status JSON shows a pass that
// ended after t (read from `destination show --json`).
func replicatedSince(t *testing.T, s *serverEnv, since time.Time) bool {
	t.Helper()
	var out struct {
		Replicas []struct {
			ReplicatedAt string `json:"replicated_at"`
		} `json:"replicas"`
	}
	if err := json.Unmarshal([]byte(s.ok("server", "destination", "show", "slow", "--json").stdout), &out); err != nil {
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

// startReplicaServer starts a far cairn server with a replica tenant
// site1 (password site1-secret-pw) for a primary's rest: destination;
// listen, if not "", is its address.
func startReplicaServer(t *testing.T, listen string) *serverEnv {
	t.Helper()
	e := newEnv(t)
	far := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = far.data
	e.ok("server", "init")
	pw := filepath.Join(e.dir, "site1.pass")
	if err := os.WriteFile(pw, []byte("site1-secret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := e.ok("server", "client", "add", "site1", "--replica", "--password-file", pw, "--quota", "1GiB").stdout
	if !strings.Contains(out, "replica tenant") {
		t.Fatalf("client add --replica:\n%s", out)
	}
	var shown struct {
		Replica bool `json:"replica"`
	}
	if err := json.Unmarshal([]byte(e.ok("server", "client", "show", "site1", "--json").stdout), &shown); err != nil || !shown.Replica {
		t.Fatalf("client show site1 --json: replica %v, %v", shown.Replica, err)
	}
	expectExit(t, e.run("server", "client", "add", "x", "--replica", "--append-only=false", "--password-file", pw), 1, "--replica is append-only")
	if listen != "" {
		far.start(t, "--listen", listen)
	} else {
		far.start(t)
	}
	return far
}

// TestServerReplicatesToAnotherServer: a destination on a second cairn
// server (rest:, as its replica tenant site1, password from a file, the
// far server's fingerprint pinned) receives bob's cairn repository and
// alice's restic one. Refused up front: no fingerprint, a wrong one, a
// retention policy. The primary is SIGKILLed mid-copy and restarted; the
// replica completes. Each replica restores byte-identically from the far
// server alone, with the tenant's credentials (and the owner key, or
// restic's password); the far server refuses the tenant's delete of a
// sound file; a pack deleted on the far server's disk is copied again by
// reconciliation, and one damaged there is healed by the primary's audit.
// A far server that presents another fingerprint fails the next pass
// with the mismatch in `replication status`, and gets nothing.
func TestServerReplicatesToAnotherServer(t *testing.T) {
	far := startReplicaServer(t, "")
	s := startCairnServer(t)
	creds := filepath.Join(s.dir, "far.pass")
	if err := os.WriteFile(creds, []byte("site1-secret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loc := "rest:http://site1@" + far.addr + "/site1"
	fp := far.fingerprint(t)
	add := func(extra ...string) result {
		return s.run(append([]string{"server", "destination", "add", "far", "--location", loc, "--credentials-file", creds, "--all"}, extra...)...)
	}
	expectExit(t, s.run("server", "destination", "add", "far", "--location", "rest:http://site1:pw@"+far.addr+"/site1", "--server-fingerprint", fp, "--all"), 1, "--credentials-file")
	expectExit(t, add(), 1, "--server-fingerprint is required")
	expectExit(t, add("--server-fingerprint", s.fingerprint(t)), 1, "server fingerprint mismatch")
	expectExit(t, add("--server-fingerprint", fp, "--keep-last", "1"), 1, "keeps every snapshot")
	s.ok("server", "destination", "add", "far", "--location", loc, "--credentials-file", creds, "--all",
		"--server-fingerprint", fp, "--bandwidth", "2MiB/s", "--reconcile-every", "2s")
	expectExit(t, s.run("server", "destination", "set", "far", "--keep-daily", "7"), 1, "keeps every snapshot")
	if show := s.ok("server", "destination", "show", "far").stdout; !strings.Contains(show, fp) {
		t.Fatalf("destination show lacks the pinned fingerprint:\n%s", show)
	}
	s.restart(t)

	// bob backs up with cairn; the primary is killed while the copy runs.
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 6<<20)
	writeRandom(t, filepath.Join(src, "b"), 200<<10)
	want := contentHashes(t, src)
	ownerKey := filepath.Join(s.dir, "bob-owner.key")
	s.ok("-r", s.url("bob", "laptop"), "init", "--server-fingerprint", s.fingerprint(t), "--owner-key-file", ownerKey)
	s.vars["CAIRN_KEY_FILE"] = ownerKey
	s.ok("-r", s.url("bob", "laptop"), "backup", src)
	snap := newSnapshot(t, filepath.Join(s.data, "repos", "bob", "laptop"), nil)
	farReplica := filepath.Join(far.data, "repos", "site1", "bob", "laptop")
	waitFor(t, time.Minute, "the copy under way", func() bool {
		rows := s.replicaStatus(t)
		return len(rows) == 1 && rows[0].LagBytes > 0
	})
	s.killServer(t, s.pid)
	if n := len(snapshotFiles(t, farReplica)); n != 0 {
		t.Fatalf("the far replica had its snapshot before the primary was killed (%d): too late to test a resume", n)
	}
	s.start(t)
	took := s.waitReplicated(t, "far", "bob", "laptop", snap, 2*time.Minute)
	t.Logf("bob/laptop on the far server: complete %v after the restart", took.Round(time.Millisecond))
	farRepo := "rest:http://site1:site1-secret-pw@" + far.addr + "/site1/bob/laptop"
	restoreMatches(t, s, farRepo, ownerKey, "latest", src, want, nil)

	// The far server's own guarantees: the tenant cannot delete a sound file.
	req, _ := http.NewRequest(http.MethodDelete, "http://"+far.addr+"/site1/bob/laptop/snapshots/"+snap, nil)
	req.SetBasicAuth("site1", "site1-secret-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the replica tenant deleted a snapshot: %s", resp.Status)
	}
	if got := snapshotFiles(t, farReplica); len(got) != 1 {
		t.Fatalf("far replica snapshots after a refused delete: %v", got)
	}

	// A pack lost on the far server is copied again; one damaged there is
	// healed by the primary's audit of its replicas.
	packs := packFiles(t, farReplica)
	if len(packs) < 2 {
		t.Fatalf("far replica packs: %v", packs)
	}
	lost, damaged := packs[0], packs[1]
	lostHash, damagedHash := fileHash(t, lost), fileHash(t, damaged)
	if err := os.Remove(lost); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the lost pack copied again", func() bool {
		_, err := os.Stat(lost)
		return err == nil
	})
	if fileHash(t, lost) != lostHash {
		t.Fatal("the re-copied pack differs")
	}
	if err := os.WriteFile(damaged, []byte("bit rot"), 0o600); err != nil {
		t.Fatal(err)
	}
	audit := s.run("server", "audit", "--replicas", "--fraction", "1", "bob")
	if !strings.Contains(audit.stdout, "healed from primary") {
		t.Fatalf("audit --replicas over a damaged far pack: exit %d\n%s%s", audit.code, audit.stdout, audit.stderr)
	}
	if fileHash(t, damaged) != damagedHash {
		t.Fatal("the audit did not heal the far replica's damaged pack")
	}
	restoreMatches(t, s, farRepo, ownerKey, "latest", src, want, nil)

	// alice's restic repository, restored with restic from the far server.
	if _, err := exec.LookPath("restic"); err == nil {
		ctx := context.Background()
		rsrc := filepath.Join(s.dir, "rsrc")
		os.MkdirAll(rsrc, 0o755)
		writeRandom(t, filepath.Join(rsrc, "big"), 1<<20)
		for _, args := range [][]string{{"init"}, {"backup", rsrc}} {
			if out, err := restic(t, ctx, "restic", s.dir, s.url("alice", "restic"), args...); err != nil {
				t.Fatalf("restic %s: %v\n%s", args[0], err, out)
			}
		}
		rsnap := newSnapshot(t, filepath.Join(s.data, "repos", "alice", "restic"), nil)
		s.waitReplicated(t, "far", "alice", "restic", rsnap, time.Minute)
		target := filepath.Join(t.TempDir(), "rrestore")
		farRestic := "rest:http://site1:site1-secret-pw@" + far.addr + "/site1/alice/restic"
		for _, args := range [][]string{{"check", "--read-data"}, {"restore", "latest", "--target", target}} {
			if out, err := restic(t, ctx, "restic", t.TempDir(), farRestic, args...); err != nil {
				t.Fatalf("restic %s on the far replica: %v\n%s", args[0], err, out)
			}
		}
		if fileHash(t, filepath.Join(target, rsrc, "big")) != fileHash(t, filepath.Join(rsrc, "big")) {
			t.Fatal("restic restored the far replica's file differently")
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("restic is not installed (.ci/run installs Debian's)")
	}

	// A second snapshot, then a forget on the primary: the far replica
	// keeps every snapshot (a deletion on the primary is never mirrored)
	// and restores each byte-identically.
	primary := filepath.Join(s.data, "repos", "bob", "laptop")
	writeRandom(t, filepath.Join(src, "b"), 300<<10)
	second := contentHashes(t, src)
	s.ok("-r", s.url("bob", "laptop"), "backup", src)
	snap2 := newSnapshot(t, primary, []string{snap})
	s.waitReplicated(t, "far", "bob", "laptop", snap2, 2*time.Minute)
	s.ok("-r", s.url("bob", "laptop"), "forget", snap[:8])
	if slices.Contains(snapshotFiles(t, primary), snap) {
		t.Fatalf("forget on the primary left %.8s", snap)
	}
	if got := replicaSnapshotIDs(t, s, farRepo, ownerKey); !slices.Equal(got, slices.Sorted(slices.Values([]string{snap, snap2}))) {
		t.Fatalf("the far replica lists %v after a forget on the primary, want both", short(got))
	}
	restoreMatches(t, s, farRepo, ownerKey, snap, src, want, nil)
	restoreMatches(t, s, farRepo, ownerKey, snap2, src, second, nil)

	// Another server at the far address (another identity): the next
	// pass fails with the mismatch, and nothing reaches it.
	far.killServer(t, far.pid)
	other := startReplicaServer(t, far.addr)
	writeRandom(t, filepath.Join(src, "c"), 100<<10)
	s.ok("-r", s.url("bob", "laptop"), "backup", src)
	waitFor(t, time.Minute, "the mismatch in the status", func() bool {
		for _, r := range s.replicaStatus(t) {
			if r.Destination == "far" && r.Client == "bob" && strings.Contains(r.LastError, "server fingerprint mismatch") && r.Lag > 0 {
				return true
			}
		}
		return false
	})
	if _, err := os.Stat(filepath.Join(other.data, "repos", "site1", "bob")); !os.IsNotExist(err) {
		t.Fatalf("a server with another fingerprint got part of a replica: %v", err)
	}
	if status := s.ok("server", "replication", "status").stdout; !strings.Contains(status, "server fingerprint mismatch") {
		t.Fatalf("replication status:\n%s", status)
	}
}

// TestServerReplicationSurvivesMinIOOutage: MinIO is stopped while a
// snapshot is being copied to it (at 2 MiB/s); the status shows the error
// and the lag; once MinIO is back the retries complete the replica, which
// restores byte-identically.
func TestServerReplicationSurvivesMinIOOutage(t *testing.T) {
	minio := minioserver.Start(t)
	s := startCairnServer(t)
	creds := filepath.Join(s.dir, "minio.aws")
	if err := os.WriteFile(creds, []byte(fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", minioserver.AccessKey, minioserver.SecretKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	s3loc := "s3:" + minio.Endpoint() + "/replicas"
	s.ok("server", "destination", "add", "minio", "--location", s3loc, "--credentials-file", creds, "--all", "--bandwidth", "2MiB/s")
	s.restart(t)

	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 8<<20)
	want := contentHashes(t, src)
	ownerKey := filepath.Join(s.dir, "bob-owner.key")
	repo := s.url("bob", "laptop")
	s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t), "--owner-key-file", ownerKey)
	s.vars["CAIRN_KEY_FILE"] = ownerKey
	s.ok("-r", repo, "backup", src)
	snap := newSnapshot(t, filepath.Join(s.data, "repos", "bob", "laptop"), nil)

	// Stop MinIO once the copy is under way (its trust files are there)
	// and before it is complete; the error in the status below proves the
	// outage hit a pass (no other pass runs: reconciliation is every 15m).
	var keys []string
	waitFor(t, time.Minute, "the copy under way", func() bool {
		keys = bucketKeys(t, minio, "replicas", "bob/laptop/")
		return countPrefix(keys, "bob/laptop/configs/") > 0
	})
	minio.Stop()
	if countPrefix(keys, "bob/laptop/snapshots/") != 0 {
		t.Fatal("the snapshot reached MinIO before it was stopped: too late to test an outage")
	}
	waitFor(t, 2*time.Minute, "the outage in the status", func() bool {
		for _, r := range s.replicaStatus(t) {
			if r.Destination == "minio" && r.LastError != "" && r.Lag > 0 {
				return true
			}
		}
		return false
	})
	minio.Start()
	s.waitReplicated(t, "minio", "bob", "laptop", snap, 3*time.Minute)
	restoreMatches(t, s, s3loc+"/bob/laptop", ownerKey, "latest", src, want,
		map[string]string{"AWS_ACCESS_KEY_ID": minioserver.AccessKey, "AWS_SECRET_ACCESS_KEY": minioserver.SecretKey})
}
