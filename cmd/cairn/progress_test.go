package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/ticker"
)

// statusOf decodes the last status message in out, failing if none.
func statusOf(t *testing.T, cmd, out string) progressStatusJSON {
	t.Helper()
	var last *progressStatusJSON
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m progressStatusJSON
		if json.Unmarshal([]byte(line), &m) == nil && m.MessageType == "status" {
			last = &m
		}
	}
	if last == nil {
		t.Fatalf("%s --json printed no status message:\n%s", cmd, out)
	}
	return *last
}

// TestProgress: restore, check --read-data, copy, prune and forget
// --prune report their progress with --json as status messages whose
// last one counts all the work (the domain packages' counters), and
// draw nothing when standard error is not a terminal.
func TestProgress(t *testing.T) {
	c := newCLI(t)
	src := filepath.Join(c.dir, "src")
	tree(t, src, map[string]string{"a": strings.Repeat("a", 5000), "d/b": "bb", "d/c": "ccc"})
	c.ok("init")
	c.ok("backup", src)
	tree(t, src, map[string]string{"a": "changed"})
	c.ok("backup", src)

	r := c.ok("restore", "--json", "latest", "--target", filepath.Join(c.dir, "r"))
	var sum restoreSummaryJSON
	jsonOf(t, r.stdout, &sum)
	st := statusOf(t, "restore", r.stdout)
	if st.Action != "restore" || st.Unit != "files" || st.ItemsDone != 3 || st.TotalItems != 3 || st.BytesDone != sum.BytesRestored || st.PercentDone != 1 {
		t.Errorf("restore status %+v, summary %+v", st, sum)
	}

	r = c.ok("check", "--json", "--read-data")
	var chk checkSummaryJSON
	jsonOf(t, r.stdout, &chk)
	st = statusOf(t, "check", r.stdout)
	if st.Unit != "packs" || st.ItemsDone == 0 || st.ItemsDone != st.TotalItems || uint64(chk.Packs) != st.TotalItems || st.BytesDone == 0 || st.BytesDone != st.TotalBytes || st.BytesDone > chk.BytesRead {
		t.Errorf("check status %+v, summary packs %d, bytes read %d", st, chk.Packs, chk.BytesRead)
	}
	if r := c.ok("check", "--json"); strings.Contains(r.stdout, `"status"`) {
		t.Errorf("check without --read-data printed a status:\n%s", r.stdout)
	}

	pw := filepath.Join(c.dir, "pw")
	tree(t, c.dir, map[string]string{"pw": "correct horse"})
	other := filepath.Join(c.dir, "other")
	c.ok("-r", other, "init")
	r = c.ok("-r", other, "copy", "--json", "--from-repo", c.repo, "--from-password-file", pw)
	st = statusOf(t, "copy", r.stdout)
	if st.Unit != "files" || st.ItemsDone != 6 || st.TotalItems != 6 {
		t.Errorf("copy status %+v, want 6 of 6 files (two snapshots of 3)", st)
	}

	r = c.ok("forget", "--json", "--keep-last", "1", "--prune", "--grace", "0")
	var pr pruneSummaryJSON
	jsonOf(t, r.stdout, &pr)
	st = statusOf(t, "forget --prune", r.stdout)
	if st.Action != "prune" || st.Unit != "packs" || st.ItemsDone == 0 || st.ItemsDone != st.TotalItems || st.ItemsDone != uint64(len(pr.Deleted)+pr.RepackedPacks) {
		t.Errorf("prune status %+v, summary: %d deleted, %d repacked", st, len(pr.Deleted), pr.RepackedPacks)
	}

	// Piped (the harness's stderr is a buffer): no status line.
	for _, args := range [][]string{
		{"restore", "latest", "--target", filepath.Join(c.dir, "r2")},
		{"check", "--read-data"},
		{"prune", "--grace", "0"},
	} {
		if r := c.ok(args...); strings.ContainsAny(r.stderr, "\r\033") || strings.Contains(r.stdout, "status") {
			t.Errorf("cairn %s drew progress while piped:\nstdout %q\nstderr %q", args[0], r.stdout, r.stderr)
		}
	}
}

// TestProgressLine: the terminal line has items, bytes, rate and ETA,
// from bytes where their total is known.
func TestProgressLine(t *testing.T) {
	p := newProgress(&GlobalOptions{}, "restore", "files")
	cases := []struct {
		c    ticker.Counts
		want string
	}{
		{ticker.Counts{Items: 1, TotalItems: 4, Bytes: 1 << 20, TotalBytes: 4 << 20, Elapsed: 2 * time.Second},
			"[0:02] 1 of 4 files, 1.00 MiB of 4.00 MiB 512.0 KiB/s 25% ETA 0:06"},
		{ticker.Counts{Items: 3, TotalItems: 4, Elapsed: 3 * time.Second}, "[0:03] 3 of 4 files 75% ETA 0:01"},
		{ticker.Counts{Items: 4, TotalItems: 4, Bytes: 10, TotalBytes: 10, Elapsed: time.Second}, "[0:01] 4 of 4 files, 10 B of 10 B 10 B/s"},
		{ticker.Counts{}, "[0:00] 0 of 0 files"},
	}
	for _, tc := range cases {
		frac, left := estimate(tc.c)
		if got := p.text(tc.c, frac, left); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}

// TestProgressJSONKeepsFinal: --json thins status messages to one a
// second, but the last one (the counter stopped) is always written, so
// the final counts reach a reader however the ticks fell.
func TestProgressJSONKeepsFinal(t *testing.T) {
	var out strings.Builder
	p := newProgress(&GlobalOptions{JSON: true, stdout: &out}, "prune", "packs")
	p.update(ticker.Counts{Items: 2, TotalItems: 4})
	p.update(ticker.Counts{Items: 3, TotalItems: 4}) // within the second: thinned
	p.update(ticker.Counts{Items: 4, TotalItems: 4, Final: true})
	st := statusOf(t, "prune", out.String())
	if st.ItemsDone != 4 || strings.Count(out.String(), `"status"`) != 2 {
		t.Errorf("last status %+v; output:\n%s", st, out.String())
	}
}
