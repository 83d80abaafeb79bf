package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// idsOf lists the snapshots' short IDs.
func idsOf(s snapshotsJSON) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.ID[:8])
	}
	return out
}

// TestSnapshotSelection: snapshots ID..., --latest, --group-by, --compact,
// the restic meaning of --tag and --path with a trailing slash, and
// forget ID... / forget with a filter restricting its policy.
func TestSnapshotSelection(t *testing.T) {
	c := newCLI(t)
	a, b := filepath.Join(c.dir, "a"), filepath.Join(c.dir, "b")
	tree(t, a, map[string]string{"f": "a"})
	tree(t, b, map[string]string{"f": "b"})
	c.ok("init")
	c.ok("backup", a, "--host", "web1", "--tag", "daily", "--tag", "db")                   // 0
	c.ok("backup", a, "--host", "web1", "--tag", "daily")                                  // 1
	c.ok("backup", b, "--host", "web2", "--tag", "weekly")                                 // 2
	c.ok("backup", a, "--host", "web1", "--tag", "daily", "--time", "2020-01-01 00:00:00") // oldest by time
	all := c.snapshots()
	if len(all) != 4 {
		t.Fatalf("%d snapshots", len(all))
	}
	ids := idsOf(all)
	old, s0, s1, s2 := ids[0], ids[1], ids[2], ids[3]

	if got := idsOf(c.snapshots(s2, s0)); !slices.Equal(got, []string{s0, s2}) {
		t.Errorf("snapshots %s %s = %v, want oldest first", s2, s0, got)
	}
	if got := idsOf(c.snapshots("--latest", "1")); !slices.Equal(got, []string{s1, s2}) {
		t.Errorf("--latest 1 = %v, want %v", got, []string{s1, s2})
	}
	if got := idsOf(c.snapshots("--tag", "daily,db", "--tag", "weekly")); !slices.Equal(got, []string{s0, s2}) {
		t.Errorf("--tag daily,db --tag weekly = %v", got)
	}
	if got := idsOf(c.snapshots("--path", b+"/")); !slices.Equal(got, []string{s2}) {
		t.Errorf("--path %s/ = %v", b, got)
	}
	out := c.ok("snapshots", "--group-by", "host").stdout
	if !strings.Contains(out, "snapshots for (host [web1]):") || !strings.Contains(out, "snapshots for (host [web2]):") || !strings.Contains(out, "1 snapshot\n") {
		t.Errorf("--group-by host:\n%s", out)
	}
	out = c.ok("snapshots", "--compact").stdout
	if strings.Contains(out, a) || !strings.Contains(out, "web2") || !strings.Contains(out, "4 snapshots") {
		t.Errorf("--compact:\n%s", out)
	}

	// A policy restricted by --host leaves web2's snapshot alone: without
	// the filter, keep-last 1 per group would keep web2's anyway, so use
	// --group-by "" to make the filter the only thing that saves it.
	c.ok("forget", "--host", "web1", "--keep-last", "1", "--group-by", "")
	if got := idsOf(c.snapshots()); !slices.Equal(got, []string{s1, s2}) {
		t.Errorf("after forget --host web1 --keep-last 1: %v, want %v (old %s)", got, []string{s1, s2}, old)
	}
	c.fails(1, "not both", "forget", s1, "--keep-last", "1")
	c.fails(1, "no snapshot", "forget", s1, "deadbeef")
	if n := len(c.snapshots()); n != 2 {
		t.Errorf("a failed forget ID... removed snapshots: %d left", n)
	}
	c.ok("forget", s2)
	if got := idsOf(c.snapshots()); !slices.Equal(got, []string{s1}) {
		t.Errorf("after forget %s: %v", s2, got)
	}
}
