package retention

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Snapshot is what retention knows about a snapshot: nothing a server key
// cannot read.
type Snapshot struct {
	ID        string
	Time      time.Time // policy time (see PolicyTime)
	Host      string
	Tags      []string
	PathGroup string

	// For the space-driven mode and anomaly detection (optional).
	Blobs    uint64  // blobs the snapshot reaches
	NewBlobs uint64  // blobs its backup uploaded
	NewBytes uint64  // stored bytes its backup uploaded
	Overlap  float64 // fraction of the previous snapshot's refs (same group) it still reaches; <0 unknown
	Suspect  bool    // its policy time is doubtful (see PolicyTime)
}

// Policy is a set of restic-compatible keep rules. Zero values are off.
type Policy struct {
	Last    int           `json:"last,omitempty"`
	Hourly  int           `json:"hourly,omitempty"`
	Daily   int           `json:"daily,omitempty"`
	Weekly  int           `json:"weekly,omitempty"`
	Monthly int           `json:"monthly,omitempty"`
	Yearly  int           `json:"yearly,omitempty"`
	Within  time.Duration `json:"-"`
	// Tags keeps snapshots that carry every tag of any one entry; an entry
	// is a comma-separated tag list, as restic's --keep-tag.
	Tags []string `json:"tags,omitempty"`
}

// Empty reports whether the policy has no rule: applying it would remove
// everything, so callers refuse it.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 &&
		p.Yearly == 0 && p.Within == 0 && len(p.Tags) == 0
}

func (p Policy) String() string {
	var parts []string
	add := func(name string, n int) {
		if n != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	add("last", p.Last)
	add("hourly", p.Hourly)
	add("daily", p.Daily)
	add("weekly", p.Weekly)
	add("monthly", p.Monthly)
	add("yearly", p.Yearly)
	if p.Within > 0 {
		parts = append(parts, "within "+FormatDuration(p.Within))
	}
	for _, t := range p.Tags {
		parts = append(parts, "tag "+t)
	}
	if len(parts) == 0 {
		return "no rules"
	}
	return "keep " + strings.Join(parts, ", ")
}

// Decision is the verdict on one snapshot.
type Decision struct {
	Snapshot Snapshot
	Keep     bool
	// Reasons names the rules that kept it ("daily", "within 7d",
	// "tag important", "newest", "floor 28d", …), or why it goes.
	Reasons []string
}

// A bucket rule keeps the newest snapshot of each of the n newest distinct
// bucket values, like restic's.
type bucketRule struct {
	name  string
	n     int
	value func(t time.Time, i int) int
}

func rules(p Policy) []bucketRule {
	return []bucketRule{
		{"last", p.Last, func(_ time.Time, i int) int { return i }},
		{"hourly", p.Hourly, func(t time.Time, _ int) int {
			y, m, d := t.Date()
			return ((y*100+int(m))*100+d)*100 + t.Hour()
		}},
		{"daily", p.Daily, func(t time.Time, _ int) int {
			y, m, d := t.Date()
			return (y*100+int(m))*100 + d
		}},
		{"weekly", p.Weekly, func(t time.Time, _ int) int {
			y, w := t.ISOWeek()
			return y*100 + w
		}},
		{"monthly", p.Monthly, func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }},
		{"yearly", p.Yearly, func(t time.Time, _ int) int { return t.Year() }},
	}
}

// Apply applies p to one group of snapshots, in any order. It returns a
// decision per snapshot, newest first. A negative rule count means
// unlimited, as in restic.
func Apply(snaps []Snapshot, p Policy) []Decision {
	ds := make([]Decision, len(snaps))
	for i, s := range snaps {
		ds[i] = Decision{Snapshot: s}
	}
	sortNewestFirst(ds)
	if len(ds) == 0 {
		return ds
	}
	newest := ds[0].Snapshot.Time
	type state struct {
		left int
		last int
		used bool
	}
	rs := rules(p)
	st := make([]state, len(rs))
	for i, r := range rs {
		st[i].left = r.n
	}
	for i := range ds {
		d := &ds[i]
		for j, r := range rs {
			if st[j].left == 0 {
				continue
			}
			v := r.value(d.Snapshot.Time, i)
			if st[j].used && st[j].last == v {
				continue
			}
			st[j].last, st[j].used = v, true
			if st[j].left > 0 {
				st[j].left--
			}
			d.Keep = true
			d.Reasons = append(d.Reasons, r.name)
		}
		if p.Within > 0 && !d.Snapshot.Time.Before(newest.Add(-p.Within)) {
			d.Keep = true
			d.Reasons = append(d.Reasons, "within "+FormatDuration(p.Within))
		}
		for _, tl := range p.Tags {
			if hasAllTags(d.Snapshot.Tags, tl) {
				d.Keep = true
				d.Reasons = append(d.Reasons, "tag "+tl)
			}
		}
		if !d.Keep {
			d.Reasons = []string{"no rule keeps it (" + p.String() + ")"}
		}
	}
	return ds
}

func hasAllTags(have []string, list string) bool {
	for _, t := range strings.Split(list, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

func sortNewestFirst(ds []Decision) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Snapshot, ds[j].Snapshot
		if !a.Time.Equal(b.Time) {
			return a.Time.After(b.Time)
		}
		return a.ID > b.ID
	})
}

// GroupBy says which fields group snapshots for a policy.
type GroupBy struct {
	Host, Paths, Tags bool
}

// ParseGroupBy parses "host,paths,tags" (any subset; "" groups nothing).
func ParseGroupBy(s string) (GroupBy, error) {
	var g GroupBy
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "":
		case "host":
			g.Host = true
		case "paths", "path", "path_group":
			g.Paths = true
		case "tags", "tag":
			g.Tags = true
		default:
			return g, fmt.Errorf("unknown --group-by field %q (want host, paths or tags)", f)
		}
	}
	return g, nil
}

// Key is the group key of s.
func (g GroupBy) Key(s Snapshot) string {
	var parts []string
	if g.Host {
		parts = append(parts, "host="+s.Host)
	}
	if g.Paths {
		parts = append(parts, "paths="+s.PathGroup)
	}
	if g.Tags {
		tags := slices.Clone(s.Tags)
		sort.Strings(tags)
		parts = append(parts, "tags="+strings.Join(tags, ","))
	}
	return strings.Join(parts, " ")
}

// Group splits snaps by g, returning the keys in sorted order.
func Group(snaps []Snapshot, g GroupBy) (keys []string, groups map[string][]Snapshot) {
	groups = map[string][]Snapshot{}
	for _, s := range snaps {
		k := g.Key(s)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], s)
	}
	sort.Strings(keys)
	return keys, groups
}

// ApplyGroups applies p to every group; decisions come group by group,
// newest first within each.
func ApplyGroups(snaps []Snapshot, g GroupBy, p Policy) []Decision {
	keys, groups := Group(snaps, g)
	var out []Decision
	for _, k := range keys {
		out = append(out, Apply(groups[k], p)...)
	}
	return out
}
