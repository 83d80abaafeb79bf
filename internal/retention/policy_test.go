package retention

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// at is a snapshot named by its time.
func at(t time.Time, tags ...string) Snapshot {
	return Snapshot{ID: t.Format("2006-01-02T15"), Time: t, Host: "h", Tags: tags, Overlap: -1}
}

// every makes n snapshots, one each step, ending at end.
func every(end time.Time, step time.Duration, n int) []Snapshot {
	var s []Snapshot
	for i := n - 1; i >= 0; i-- {
		s = append(s, at(end.Add(-time.Duration(i)*step)))
	}
	return s
}

func kept(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Snapshot.ID)
		}
	}
	return out
}

func TestRules(t *testing.T) {
	end := time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC) // a Friday
	daily := every(end, 6*time.Hour, 40)                 // 10 days, 4 a day
	cases := []struct {
		name  string
		snaps []Snapshot
		p     Policy
		want  []string
	}{
		{"last 3", daily, Policy{Last: 3}, []string{"2024-03-15T12", "2024-03-15T06", "2024-03-15T00"}},
		{"hourly 2 (one per hour bucket)", daily, Policy{Hourly: 2}, []string{"2024-03-15T12", "2024-03-15T06"}},
		{"daily 3: newest of each day", daily, Policy{Daily: 3}, []string{"2024-03-15T12", "2024-03-14T18", "2024-03-13T18"}},
		{"weekly 2: newest of each ISO week", daily, Policy{Weekly: 2}, []string{"2024-03-15T12", "2024-03-10T18"}},
		{"monthly 5 stops at the history's start", daily, Policy{Monthly: 5}, []string{"2024-03-15T12"}},
		{"within 1d is relative to the newest", daily, Policy{Within: Day}, []string{"2024-03-15T12", "2024-03-15T06", "2024-03-15T00", "2024-03-14T18", "2024-03-14T12"}},
		{"yearly -1 is unlimited", []Snapshot{at(t0), at(t0.AddDate(1, 0, 0)), at(t0.AddDate(1, 1, 0)), at(t0.AddDate(2, 0, 0))}, Policy{Yearly: -1},
			[]string{"2026-01-01T00", "2025-02-01T00", "2024-01-01T00"}},
		{"tag list needs every tag", []Snapshot{at(t0, "a"), at(t0.Add(time.Hour), "a", "b"), at(t0.Add(2 * time.Hour))}, Policy{Tags: []string{"a,b"}},
			[]string{"2024-01-01T01"}},
		{"rules combine", daily, Policy{Last: 1, Daily: 2, Weekly: 2}, []string{"2024-03-15T12", "2024-03-14T18", "2024-03-10T18"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := kept(Apply(c.snaps, c.p))
			if !slices.Equal(got, c.want) {
				t.Fatalf("kept %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestReasonsNameTheRules(t *testing.T) {
	ds := Apply(every(t0, time.Hour, 30), Policy{Last: 1, Daily: 1, Tags: []string{"x"}})
	if r := strings.Join(ds[0].Reasons, ","); r != "last,daily" {
		t.Fatalf("newest kept by %q, want last,daily", r)
	}
	if ds[1].Keep || !strings.Contains(ds[1].Reasons[0], "no rule keeps it") {
		t.Fatalf("second: %+v", ds[1])
	}
}

func TestGroups(t *testing.T) {
	var snaps []Snapshot
	for i, h := range []string{"a", "b", "a", "b", "a"} {
		s := at(t0.Add(time.Duration(i) * time.Hour))
		s.Host, s.PathGroup = h, "p"+h
		snaps = append(snaps, s)
	}
	g, _ := ParseGroupBy("host,paths")
	got := kept(ApplyGroups(snaps, g, Policy{Last: 1}))
	if want := []string{"2024-01-01T04", "2024-01-01T03"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if got := kept(ApplyGroups(snaps, GroupBy{}, Policy{Last: 1})); len(got) != 1 {
		t.Fatalf("no grouping kept %v", got)
	}
	if _, err := ParseGroupBy("host,colour"); err == nil {
		t.Fatal("unknown group field accepted")
	}
}

// TestGolden applies policies to long synthetic histories (two and a half
// years, four irregular snapshots a day with gaps) and compares every
// decision with testdata/*.golden; -update rewrites them after review.
func TestGolden(t *testing.T) {
	var hist []Snapshot
	for i := 0; i < 900*4; i++ {
		tm := t0.Add(time.Duration(i)*6*time.Hour + time.Duration(i*37%300)*time.Minute)
		if d := i / 4; d%97 >= 90 { // a week-long gap every 97 days
			continue
		}
		var tags []string
		if i%500 == 0 {
			tags = []string{"release"}
		}
		hist = append(hist, at(tm, tags...))
	}
	cases := []struct {
		name string
		p    Policy
	}{
		{"typical", Policy{Daily: 30, Weekly: 5, Monthly: 12, Yearly: 10}},
		{"hourly-last", Policy{Last: 5, Hourly: 24}},
		{"within-tag", Policy{Within: 10 * Day, Tags: []string{"release"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			fmt.Fprintf(&b, "# %s over %d snapshots\n", c.p, len(hist))
			for _, d := range Apply(hist, c.p) {
				if d.Keep {
					fmt.Fprintf(&b, "%s keep %s\n", d.Snapshot.Time.Format(time.RFC3339), strings.Join(d.Reasons, ","))
				}
			}
			golden(t, c.name, b.String())
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from %s:\n%s", name, path, got)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"1y2m3d4h": (365+60+3)*Day + 4*time.Hour, "30d": 30 * Day, "36h": 36 * time.Hour, "2w": 14 * Day} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5", "d", "3x", "-1h"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseConfig(t *testing.T) {
	want := Policy{Daily: 30, Weekly: 5, Monthly: 12, Yearly: 10}
	for name, src := range map[string]string{
		"flow":  "keep: {daily: 30, weekly: 5, monthly: 12, yearly: 10}\n",
		"block": "# nightly\nkeep:\n  daily: 30\n  weekly: 5\n  monthly: 12 # a year\n  yearly: 10\ngroup_by: host,paths\n",
		"json":  `{"keep": {"daily": 30, "weekly": 5, "monthly": 12, "yearly": 10}, "group_by": "host,paths"}`,
	} {
		c, err := ParseConfig([]byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Keep.String() != want.String() || c.GroupBy != "host,paths" {
			t.Fatalf("%s: %+v", name, c)
		}
	}
	c, err := ParseConfig([]byte("keep:\n  tags: [a, b]\n  last: 1\n"))
	if err != nil || len(c.Keep.Tags) != 2 || c.Keep.Tags[1] != "b" {
		t.Fatalf("tag list: %+v %v", c, err)
	}
	c, err = ParseConfig([]byte("keep: {within: 1y, tag: important}\ngroup_by: host\n"))
	if err != nil || c.Keep.Within != 365*Day || c.Keep.Tags[0] != "important" || c.GroupBy != "host" {
		t.Fatalf("within/tag: %+v %v", c, err)
	}
	for src, msg := range map[string]string{
		"keep: {dayly: 3}":                    "line 1: unknown keep rule \"dayly\"",
		"\nkeep:\n  daily: many":              "line 3: keep.daily: want a count",
		"colour: red":                         "line 1: unknown key \"colour\"",
		"keep: {}":                            "no keep rule",
		`{"keep": {"dayly": 3}}`:              "line 1: unknown keep rule \"dayly\"",
		"keep: {daily: 3}\nkeep: {weekly: 2}": "line 2: \"keep\" given twice",
		"keep: [1, 2]":                        "line 1: keep: want",
		"keep: {daily: 3\n":                   "policy: yaml",
		"":                                    "empty",
		"keep: {daily: 3}\ngroup_by: os":      "group_by",
	} {
		if _, err := ParseConfig([]byte(src)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want one containing %q", src, err, msg)
		}
	}
}
