//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSalvageDiffStats: diff and stats go on past a directory whose tree
// is damaged, as ls, find and restore do: a warning naming it (and the
// snapshot), everything else compared or counted, exit 3. The damaged
// tree is d11's in the first snapshot; the second has a d11 of its own.
func TestSalvageDiffStats(t *testing.T) {
	s := newSalvageEnv(t)
	for _, rel := range []string{"d11/new", "d05/new"} {
		if err := os.WriteFile(filepath.Join(s.src, rel), []byte("new "+rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.ok("backup", s.src)
	var snaps []struct {
		ID      string `json:"id"`
		ShortID string `json:"short_id"`
	}
	if err := json.Unmarshal([]byte(s.ok("snapshots", "--json").stdout), &snaps); err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %v %+v", err, snaps)
	}
	first := snaps[0].ID
	s.corrupt(t, "d11")
	lost := filepath.Join(s.src, "d11")

	r := s.run("diff", first, "latest")
	if r.code != 3 || !strings.Contains(r.stderr, "cairn: warning: "+lost+": directory lost with everything below it") ||
		!strings.Contains(r.stderr, "in snapshot "+first[:8]) || !strings.Contains(r.stderr, "1 lost directories could not be compared") {
		t.Fatalf("diff: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "+  "+filepath.Join(s.src, "d05/new")+"\n") || strings.Contains(r.stdout, lost+"/") {
		t.Fatalf("diff: want d05/new added and nothing below d11:\n%s", r.stdout)
	}
	// The damaged tree is not in the second snapshot: nothing is lost.
	if r := s.run("diff", "latest", "latest"); r.code != 0 {
		t.Fatalf("diff latest latest: exit %d\n%s", r.code, r.stderr)
	}

	r = s.run("stats")
	if r.code != 3 || strings.Count(r.stderr, "cairn: warning: ") != 1 || !strings.Contains(r.stderr, "cairn: warning: "+lost+": directory lost") ||
		!strings.Contains(r.stdout, "Snapshots:     2") {
		t.Fatalf("stats: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = s.run("stats", "--json")
	var st struct {
		Snapshots int    `json:"snapshots"`
		Files     uint64 `json:"files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 3 || st.Snapshots != 2 || st.Files == 0 {
		t.Fatalf("stats --json: exit %d %v %+v\n%s", r.code, err, st, r.stderr)
	}
	if r := s.run("stats", "latest"); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("stats latest: exit %d\n%s", r.code, r.stderr)
	}
}
