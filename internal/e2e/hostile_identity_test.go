//go:build linux

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The owner's machine, as its snapshots name it, and the writer's own.
const (
	ownerHost  = "owner-box"
	writerHost = "web-1"
	claimLater = "2031-01-01 00:00:00"
)

// hostileWriter is a writer key for a repository, enrolled by the owner
// for writerHost only, used from "another machine" (its own cache).
type hostileWriter struct {
	key  string
	vars map[string]string
}

func enrolHostileWriter(t *testing.T, e *env, repoArgs ...string) *hostileWriter {
	t.Helper()
	pw := filepath.Join(e.dir, "writer.pass")
	if err := os.WriteFile(pw, []byte("writer secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &hostileWriter{key: filepath.Join(e.dir, "writer.key"),
		vars: map[string]string{"CAIRN_PASSWORD_FILE": pw, "XDG_CACHE_HOME": filepath.Join(e.dir, "writer-cache")}}
	out := e.ok(append(repoArgs, "key", "add", "--role", "writer", "--export", w.key, "--new-password-file", pw,
		"--label", "web", "--host", writerHost)...).stdout
	if !strings.Contains(out, "may back up as host "+writerHost) {
		t.Fatalf("key add output does not name the binding:\n%s", out)
	}
	return w
}

func (w *hostileWriter) run(e *env, args ...string) result {
	e.t.Helper()
	return e.runWith(w.vars, append([]string{"--key-file", w.key}, args...)...)
}

// asAttacker fills dir with the attacker's files for the length of fn:
// the writer runs on the same test machine as the owner, so to back up
// "the owner's path" it must find its own content there. The owner's
// files are put back untouched (a rename keeps their times).
func asAttacker(t *testing.T, dir string, fn func()) {
	t.Helper()
	aside := dir + ".owner"
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("attacker's f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte("ssh-ed25519 AAAA attacker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fn()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, dir); err != nil {
		t.Fatal(err)
	}
}

// signedSnap is an entry of `snapshots --json` with the fields R25 adds.
type signedSnap struct {
	ID         string   `json:"id"`
	ShortID    string   `json:"short_id"`
	Host       string   `json:"host"`
	Paths      []string `json:"paths"`
	Signer     string   `json:"signer"`
	PolicyTime string   `json:"policy_time"`
	Impostor   bool     `json:"impostor"`
	Time       string   `json:"time"`
}

func signedSnapshots(e *env, args ...string) []signedSnap {
	e.t.Helper()
	var s []signedSnap
	lastJSON(e.t, e.ok(append(args, "snapshots", "--json")...).stdout, &s)
	return s
}

// ownerRestoresLatest restores and dumps `latest --host ownerHost --path
// src` with the owner key and fails unless both are byte-identical to
// src as it is now.
func ownerRestoresLatest(t *testing.T, e *env, src, target string, args ...string) {
	t.Helper()
	sel := []string{"--host", ownerHost, "--path", src}
	e.ok(append(append(args, "restore", "latest", "--target", target), sel...)...)
	want, got := contentHashes(t, src), contentHashes(t, filepath.Join(target, src))
	if len(got) != len(want) {
		t.Fatalf("restore latest: %d files, want the owner's %d (%v)", len(got), len(want), got)
	}
	for p, h := range want {
		if got[p] != h {
			t.Fatalf("restore latest: %s is not the owner's file", p)
		}
	}
	out := e.ok(append(append(args, "dump", "latest", filepath.Join(src, "f")), sel...)...).stdout
	own, err := os.ReadFile(filepath.Join(src, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(out), own) {
		t.Fatalf("dump latest: %d bytes, not the owner's f (%q…)", len(out), out[:min(len(out), 20)])
	}
}

// TestHostileWriterImpersonatesHost: a writer backs up its own files with
// the owner's host label, the owner's path and a time years ahead (issue
// 10 item 5). Through a cairn server the statement is refused (R25);
// in direct mode, where a writer with storage access stores what it
// likes, the owner's `latest --host --path`, dump and its next backup's
// parent still pick the owner's newest snapshot, `snapshots` names each
// signer, and check flags the impostors.
func TestHostileWriterImpersonatesHost(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		s := startCairnServer(t)
		s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
		repo := []string{"-r", s.url("bob", "main")}
		s.ok(append(repo, "init", "--server-fingerprint", s.fingerprint(t))...)
		src := filepath.Join(s.dir, "src")
		os.MkdirAll(src, 0o755)
		writeRandom(t, filepath.Join(src, "f"), 1<<20)
		writeRandom(t, filepath.Join(src, "g"), 70000)
		s.ok(append(repo, "backup", "--host", ownerHost, src)...)
		w := enrolHostileWriter(t, s.env, repo...)

		snapDir := filepath.Join(s.data, "repos", "bob", "main", "snapshots")
		before := listing(t, snapDir)
		var r result
		asAttacker(t, src, func() {
			r = w.run(s.env, append(repo, "backup", "--host", ownerHost, "--time", claimLater, src)...)
		})
		if r.code == 0 || !strings.Contains(r.stderr, `host label "owner-box" is not bound to its signer web`) {
			t.Fatalf("the server took a writer's snapshot under the owner's host label: exit %d\n%s", r.code, r.stderr)
		}
		if after := listing(t, snapDir); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Fatalf("a refused statement left snapshot files:\n%v", after)
		}
		if !strings.Contains(s.log(), "not bound to its signer") {
			t.Error("the refusal is not in the server's log")
		}
		// The same writer under its own label is accepted: the refusal is
		// about the label, not the writer.
		wsrc := filepath.Join(s.dir, "wsrc")
		os.MkdirAll(wsrc, 0o755)
		writeRandom(t, filepath.Join(wsrc, "w"), 5000)
		if r := w.run(s.env, append(repo, "backup", wsrc)...); r.code != 0 {
			t.Fatalf("writer backup under its own label: exit %d\n%s", r.code, r.stderr)
		}

		snaps := signedSnapshots(s.env, repo...)
		if len(snaps) != 2 || snaps[0].Signer != "owner" || snaps[0].Host != ownerHost ||
			snaps[1].Signer != "web" || snaps[1].Host != writerHost || snaps[1].Impostor {
			t.Fatalf("snapshots: %+v", snaps)
		}
		ownerRestoresLatest(t, s.env, src, filepath.Join(s.dir, "restore"), repo...)
		s.ok(append(repo, "check")...)
	})

	t.Run("direct", func(t *testing.T) {
		e := newEnv(t)
		e.ok("init")
		src := filepath.Join(e.dir, "src")
		os.MkdirAll(src, 0o755)
		writeRandom(t, filepath.Join(src, "f"), 1<<20)
		e.ok("backup", "--host", ownerHost, src)
		w := enrolHostileWriter(t, e)

		impostor := func() {
			t.Helper()
			asAttacker(t, src, func() {
				r := w.run(e, "backup", "--host", ownerHost, "--time", claimLater, src)
				if r.code != 0 {
					t.Fatalf("direct-mode writer backup: exit %d\n%s", r.code, r.stderr)
				}
				if !strings.Contains(r.stderr, "not bound to the host label") {
					t.Errorf("the writer was not warned:\n%s", r.stderr)
				}
			})
		}
		impostor() // claims 2031, stored before the owner's next backup
		writeRandom(t, filepath.Join(src, "f"), 1<<20)
		writeRandom(t, filepath.Join(src, "g"), 70000)
		e.ok("backup", "--host", ownerHost, src)
		impostor() // claims 2031 and is stored after it

		// Who signed what, by signer alone (the defence is judged below).
		snaps := signedSnapshots(e)
		var owners, impostors []signedSnap
		for _, s := range snaps {
			if s.Signer == "owner" {
				owners = append(owners, s)
			} else {
				impostors = append(impostors, s)
			}
		}
		if len(owners) != 2 || len(impostors) != 2 {
			t.Fatalf("snapshots: %+v", snaps)
		}

		ownerRestoresLatest(t, e, src, filepath.Join(e.dir, "restore"))

		// The owner's machine loses its cache: the next backup's parent is
		// the owner's newest snapshot, never an impostor's.
		if err := os.RemoveAll(e.vars["XDG_CACHE_HOME"]); err != nil {
			t.Fatal(err)
		}
		r := e.ok("-v", "backup", "--host", ownerHost, src)
		if !strings.Contains(r.stderr, "cairn: parent snapshot (snapshot="+owners[1].ShortID+", signer=owner)") {
			t.Fatalf("parent is not the owner's newest snapshot %s:\n%s", owners[1].ShortID, r.stderr)
		}
		ownerRestoresLatest(t, e, src, filepath.Join(e.dir, "restore2"))

		// check names each impostor and its signer.
		r = e.run("check")
		for _, s := range impostors {
			if r.code == 0 || !strings.Contains(r.stdout+r.stderr, s.ShortID) {
				t.Fatalf("check did not flag impostor %s: exit %d\n%s%s", s.ShortID, r.code, r.stdout, r.stderr)
			}
		}
		if !strings.Contains(r.stdout+r.stderr, `impostor snapshot: host label "owner-box" is not bound to its signer web`) {
			t.Fatalf("check output:\n%s%s", r.stdout, r.stderr)
		}

		// snapshots shows each signer, marks the impostors, and orders by
		// policy time: a claim of 2031 does not make a snapshot the newest.
		for _, s := range impostors {
			if !s.Impostor || s.Signer != "web" || s.Host != ownerHost || s.PolicyTime == "" {
				t.Errorf("impostor listed as %+v", s)
			}
		}
		for _, s := range owners {
			if s.Impostor {
				t.Errorf("owner snapshot listed as an impostor: %+v", s)
			}
		}
		if snaps[len(snaps)-1].ID != impostors[1].ID || snaps[0].ID != owners[0].ID {
			t.Errorf("listing not in policy-time order: %+v", snaps)
		}
		table := e.ok("snapshots").stdout
		if !strings.Contains(table, "Signer") || !strings.Contains(table, "web (not bound to host)") || !strings.Contains(table, "(policy ") {
			t.Errorf("snapshots table does not show the signer and policy time:\n%s", table)
		}
		// The impostors are still there, by ID, for the owner to look at.
		e.ok("ls", impostors[0].ShortID)
	})
}
