//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCatCommand: every object kind as the key can read it, names with
// control characters escaped in JSON, blob content exact.
func TestCatCommand(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	content := []byte("hello from cat\n")
	os.WriteFile(filepath.Join(src, "hello"), content, 0o644)
	os.WriteFile(filepath.Join(src, "evil\x1b[2J\u009bname"), []byte("x"), 0o644)
	e.ok("init")
	e.ok("backup", src)
	snap := e.snapshots()[0]

	var cfg map[string]any
	if err := json.Unmarshal([]byte(e.ok("cat", "config").stdout), &cfg); err != nil || cfg["chunker"] == nil {
		t.Fatalf("cat config: %v %v", cfg, err)
	}
	var s struct {
		Statement struct {
			Tree string `json:"tree"`
		} `json:"statement"`
		Meta   map[string]any `json:"meta"`
		Owner  map[string]any `json:"owner"`
		Sealed []string       `json:"sealed"`
	}
	if err := json.Unmarshal([]byte(e.ok("cat", "snapshot", "latest").stdout), &s); err != nil || s.Statement.Tree != snap.Tree || s.Meta == nil || s.Owner == nil {
		t.Fatalf("cat snapshot: %+v %v", s, err)
	}
	type tree struct {
		Nodes []struct {
			Name    string   `json:"name"`
			Content []string `json:"content"`
		} `json:"nodes"`
	}
	var tr tree
	raw := e.ok("cat", "tree", "latest:"+src).stdout
	if strings.ContainsAny(raw, "\x1b\u009b") {
		t.Errorf("cat tree wrote a raw control character: %q", raw)
	}
	if err := json.Unmarshal([]byte(raw), &tr); err != nil || len(tr.Nodes) != 2 {
		t.Fatalf("cat tree: %+v %v", tr, err)
	}
	if tr.Nodes[0].Name != "evil\x1b[2J\u009bname" {
		t.Errorf("name %q: JSON must hold it exactly", tr.Nodes[0].Name)
	}
	var root tree
	json.Unmarshal([]byte(e.ok("cat", "tree", snap.Tree).stdout), &root)
	if len(root.Nodes) != 1 {
		t.Errorf("root tree by ID: %+v", root)
	}
	id := tr.Nodes[1].Content[0]
	if got := e.ok("cat", "blob", id).stdout; !bytes.Equal([]byte(got), content) {
		t.Errorf("cat blob: %q, want %q", got, content)
	}
	var idx struct {
		Fragments []struct {
			Packs []struct {
				ID      string `json:"id"`
				Entries []struct {
					ID string `json:"id"`
				} `json:"entries"`
			} `json:"packs"`
		} `json:"fragments"`
	}
	if err := json.Unmarshal([]byte(e.ok("cat", "index").stdout), &idx); err != nil || len(idx.Fragments) == 0 || len(idx.Fragments[0].Packs) == 0 {
		t.Fatalf("cat index: %+v %v", idx, err)
	}
	p := idx.Fragments[0].Packs[0]
	var pk struct {
		Entries []struct {
			ID string `json:"id"`
		} `json:"entries"`
		Domain string `json:"domain"`
	}
	if err := json.Unmarshal([]byte(e.ok("cat", "pack", p.ID).stdout), &pk); err != nil || len(pk.Entries) != len(p.Entries) || pk.Domain == "" {
		t.Fatalf("cat pack: %+v %v", pk, err)
	}
	expectExit(t, e.run("cat", "nothing"), 1, "cannot cat")
	expectExit(t, e.run("cat", "tree"), 1, "needs an ID")
	expectExit(t, e.run("cat", "blob", strings.Repeat("0", 64)), 1, "data blob")

	// A server key reads metadata: the snapshot's metadata header, the
	// index and packs, never a tree or the owner header.
	sv, skey := serverKey(e)
	var ss struct {
		Meta   map[string]any `json:"meta"`
		Owner  map[string]any `json:"owner"`
		Sealed []string       `json:"sealed"`
	}
	if err := json.Unmarshal([]byte(e.runWith(sv, "--key-file", skey, "cat", "snapshot", snap.ID).stdout), &ss); err != nil || ss.Meta == nil || ss.Owner != nil || len(ss.Sealed) != 1 || ss.Sealed[0] != "owner" {
		t.Errorf("server cat snapshot: %+v %v", ss, err)
	}
	if r := e.runWith(sv, "--key-file", skey, "cat", "pack", p.ID); r.code != 0 {
		t.Errorf("server cat pack: %d %s", r.code, r.stderr)
	}
	expectExit(t, e.runWith(sv, "--key-file", skey, "cat", "tree", snap.Tree), 11, "owner key")

	// A writer key reads the public parts only.
	wpw := filepath.Join(e.dir, "w.pass")
	os.WriteFile(wpw, []byte("writer secret\n"), 0o600)
	wkey := filepath.Join(e.dir, "w.key")
	e.ok("key", "add", "--role", "writer", "--export", wkey, "--new-password-file", wpw)
	w := map[string]string{"CAIRN_PASSWORD_FILE": wpw, "XDG_CACHE_HOME": filepath.Join(e.dir, "wcache")}
	if r := e.runWith(w, "--key-file", wkey, "cat", "config"); r.code != 0 {
		t.Errorf("writer cat config: %d %s", r.code, r.stderr)
	}
	expectExit(t, e.runWith(w, "--key-file", wkey, "cat", "tree", snap.Tree), 11, "owner key")
	expectExit(t, e.runWith(w, "--key-file", wkey, "cat", "index"), 11, "server key")
	expectExit(t, e.runWith(w, "--key-file", wkey, "cat", "pack", p.ID), 11, "server key")
}
