//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type copyOutput struct {
	Snapshots []struct {
		Source string `json:"source_id"`
		ID     string `json:"snapshot_id"`
		Action string `json:"action"`
	} `json:"snapshots"`
}

// TestCopyCommand: copy re-encrypts snapshots for another repository,
// keeps their tags and times, names their origin, restores byte for byte,
// and copying again stores nothing.
func TestCopyCommand(t *testing.T) {
	from := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	writeRandom(t, filepath.Join(src, "sub", "big"), 3<<20)
	from.ok("init")
	from.ok("backup", src, "--tag", "one")
	writeRandom(t, filepath.Join(src, "small"), 5000)
	from.ok("backup", src, "--tag", "two")
	srcSnaps := from.snapshots()
	want := contentHashes(t, src)

	to := newEnv(t)
	to.ok("init")
	fromArgs := []string{"--from-repo", from.repo, "--from-password-file", from.vars["CAIRN_PASSWORD_FILE"]}
	expectExit(t, to.run("copy"), 1, "--from-repo")

	var out copyOutput
	lastJSON(t, to.ok(append([]string{"copy", "--json"}, fromArgs...)...).stdout, &out)
	if len(out.Snapshots) != 2 || out.Snapshots[0].Action != "copied" || out.Snapshots[1].Action != "copied" {
		t.Fatalf("copy: %+v", out)
	}
	dstSnaps := to.snapshots()
	if len(dstSnaps) != 2 {
		t.Fatalf("%d snapshots in the destination", len(dstSnaps))
	}
	for i := range dstSnaps {
		if dstSnaps[i].Time != srcSnaps[i].Time || !slices.Equal(dstSnaps[i].Tags, srcSnaps[i].Tags) || !slices.Equal(dstSnaps[i].Paths, srcSnaps[i].Paths) {
			t.Errorf("copy %d: %+v, source %+v", i, dstSnaps[i], srcSnaps[i])
		}
		if dstSnaps[i].Tree == srcSnaps[i].Tree {
			t.Errorf("copy %d has the source's root tree ID: blob IDs are keyed per repository", i)
		}
	}
	// The copy names where it came from.
	var cat struct {
		Owner struct {
			Origin struct {
				Repo     string `json:"repo"`
				Snapshot string `json:"snapshot"`
			} `json:"origin"`
		} `json:"owner"`
	}
	if err := json.Unmarshal([]byte(to.ok("cat", "snapshot", dstSnaps[1].ID).stdout), &cat); err != nil {
		t.Fatal(err)
	}
	var srcCfg struct {
		RepoID []byte `json:"repo_id"`
	}
	json.Unmarshal([]byte(from.ok("cat", "config").stdout), &srcCfg)
	if cat.Owner.Origin.Snapshot != srcSnaps[1].ID || cat.Owner.Origin.Repo == "" || len(srcCfg.RepoID) != 32 {
		t.Errorf("origin %+v, want snapshot %s of the source", cat.Owner.Origin, srcSnaps[1].ID)
	}

	// Idempotent: nothing stored the second time.
	state := listing(t, to.repo)
	lastJSON(t, to.ok(append([]string{"copy", "--json"}, fromArgs...)...).stdout, &out)
	for _, s := range out.Snapshots {
		if s.Action != "skipped" {
			t.Errorf("second copy: %+v", out)
		}
	}
	if got := listing(t, to.repo); !slices.Equal(got, state) {
		t.Errorf("a second copy changed the destination")
	}
	to.ok("check", "--read-data")
	target := filepath.Join(to.dir, "restore")
	to.ok("restore", "latest", "--target", target)
	got := contentHashes(t, filepath.Join(target, src))
	if len(got) != len(want) {
		t.Fatalf("restored %d files, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s differs after copy and restore", k)
		}
	}

	// A writer key of another destination, bound to the snapshots' host
	// label, copies them; copying again finds its own copies by their
	// trees and time, without reading any header.
	host, _ := os.Hostname()
	to2 := newEnv(t)
	to2.ok("init")
	w2pw := filepath.Join(to2.dir, "w.pass")
	os.WriteFile(w2pw, []byte("writer secret\n"), 0o600)
	w2key := filepath.Join(to2.dir, "w.key")
	to2.ok("key", "add", "--role", "writer", "--export", w2key, "--new-password-file", w2pw, "--host", host)
	w2 := map[string]string{"CAIRN_PASSWORD_FILE": w2pw, "XDG_CACHE_HOME": filepath.Join(to2.dir, "wcache")}
	for round, want := range []string{"copied", "skipped"} {
		r := to2.runWith(w2, append([]string{"--key-file", w2key, "copy", "--json"}, fromArgs...)...)
		if r.code != 0 {
			t.Fatalf("writer copy %d: %d %s", round, r.code, r.stderr)
		}
		lastJSON(t, r.stdout, &out)
		if len(out.Snapshots) != 2 || out.Snapshots[0].Action != want || out.Snapshots[1].Action != want {
			t.Errorf("writer copy %d: %+v, want %s", round, out, want)
		}
	}
	if n := len(to2.snapshots()); n != 2 {
		t.Errorf("%d snapshots after two writer copies, want 2", n)
	}
	to2.ok("check", "--read-data")

	// The source needs its owner key.
	wpw := filepath.Join(from.dir, "w.pass")
	os.WriteFile(wpw, []byte("writer secret\n"), 0o600)
	wkey := filepath.Join(from.dir, "w.key")
	from.ok("key", "add", "--role", "writer", "--export", wkey, "--new-password-file", wpw)
	r := to.run("copy", "--from-repo", from.repo, "--from-password-file", wpw, "--from-key-file", wkey)
	expectExit(t, r, 11, "owner key")
}

// TestCopyIntoServer: a local repository's snapshots copied into one kept
// on a cairn server, through the server's commit checks, once.
func TestCopyIntoServer(t *testing.T) {
	s := startCairnServer(t)
	fp := s.fingerprint(t)
	s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "f"), 2<<20)
	s.ok("init")
	s.ok("backup", src, "--tag", "t")
	want := contentHashes(t, src)
	url := s.url("alice", "main")
	s.ok("-r", url, "init", "--server-fingerprint", fp)
	args := []string{"-r", url, "copy", "--json", "--from-repo", s.repo, "--from-password-file", s.vars["CAIRN_PASSWORD_FILE"]}
	var out copyOutput
	for round, action := range []string{"copied", "skipped"} {
		lastJSON(t, s.ok(args...).stdout, &out)
		if len(out.Snapshots) != 1 || out.Snapshots[0].Action != action {
			t.Fatalf("copy %d into the server: %+v, want %s", round, out, action)
		}
	}
	var sn []snapJSON
	lastJSON(t, s.ok("-r", url, "snapshots", "--json").stdout, &sn)
	if len(sn) != 1 || !slices.Equal(sn[0].Tags, []string{"t"}) {
		t.Fatalf("server repository snapshots: %+v", sn)
	}
	s.ok("-r", url, "check", "--read-data")
	target := filepath.Join(s.dir, "restore")
	s.ok("-r", url, "restore", "latest", "--target", target)
	if got := contentHashes(t, filepath.Join(target, src)); got["f"] != want["f"] {
		t.Error("restore from the server repository differs")
	}
	expectExit(t, s.run("-r", url, "tag", "--add", "x", "latest"), 1, "cairn server")
}
