package retention

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func ages(ds []Decision, now time.Time) []int {
	var out []int
	for _, d := range ds {
		if d.Keep {
			out = append(out, int(now.Sub(d.Snapshot.Time)/Day))
		}
	}
	sort.Ints(out)
	return out
}

// With one snapshot a day for 200 days, keeping ten leaves exactly the
// target ages.
func TestImportanceDailyHistory(t *testing.T) {
	now := t0.AddDate(1, 0, 0)
	snaps := every(now, Day, 200)
	got := ages(Importance(snaps, 10, now), now)
	if !slices.Equal(got, TargetAges) {
		t.Fatalf("kept ages %v, want %v", got, TargetAges)
	}
}

// Hourly snapshots for 30 days, keeping 12: the newest, one near each of the
// recent targets, the oldest as the best cover for the far ones, and the
// rest closely spaced near now.
func TestImportanceGolden(t *testing.T) {
	now := t0.AddDate(0, 2, 0)
	snaps := every(now, time.Hour, 30*24)
	var b strings.Builder
	for _, d := range Importance(snaps, 12, now) {
		if d.Keep {
			fmt.Fprintf(&b, "age %6.2fd keep %s\n", now.Sub(d.Snapshot.Time).Hours()/24, strings.Join(d.Reasons, ","))
		}
	}
	golden(t, "importance-hourly", b.String())
}

func TestImportanceNewestSurvives(t *testing.T) {
	now := t0
	snaps := every(now, time.Minute, 5)
	ds := Importance(snaps, 0, now)
	if k := kept(ds); len(k) != 1 || k[0] != snaps[4].ID {
		t.Fatalf("kept %v, want only the newest", k)
	}
}

func big(s Snapshot, newBytes uint64) Snapshot { s.NewBytes = newBytes; return s }

// A daily history with a budget: deletions go least important first, and
// a flood of huge new snapshots cannot push out the floor snapshots.
func TestSpaceFloorsSurviveFlood(t *testing.T) {
	now := t0.AddDate(1, 0, 0)
	var snaps []Snapshot
	for _, s := range every(now.Add(-2*Day), Day, 150) {
		snaps = append(snaps, big(s, 10<<20))
	}
	// Flood: ten snapshots in the last two days, 1 GiB each.
	for i := range 10 {
		s := at(now.Add(-time.Duration(i) * 4 * time.Hour))
		s.ID = fmt.Sprintf("flood%d", i)
		snaps = append(snaps, big(s, 1<<30))
	}
	var total uint64
	for _, s := range snaps {
		total += s.NewBytes
	}
	p, err := Space(snaps, SpaceOptions{Now: now, Size: total, MaxSize: 100 << 20})
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("err %v, want ErrBudget", err)
	}
	floors := Floors(snaps, now, Anomaly{})
	for _, d := range p.Decisions {
		if why := floors[d.Snapshot.ID]; why != "" && !d.Keep {
			t.Errorf("floor %s (%s) deleted", d.Snapshot.ID, why)
		}
	}
	var floorAges []int
	for id := range floors {
		for _, s := range snaps {
			if s.ID == id {
				floorAges = append(floorAges, int(now.Sub(s.Time)/Day))
			}
		}
	}
	sort.Ints(floorAges)
	// The newest flood snapshot, and the oldest healthy in each bucket
	// (the 7-day bucket's is a normal daily one; 112 is the oldest ≤112).
	for _, want := range []int{0, 7, 28, 56, 112} {
		if !slices.Contains(floorAges, want) {
			t.Errorf("floor ages %v lack %d", floorAges, want)
		}
	}
	// The budget is met by a smaller one.
	p, err = Space(snaps, SpaceOptions{Now: now, Size: total, MaxSize: total + 600<<20})
	if err != nil {
		t.Fatal(err)
	}
	if p.Freed < p.Target || p.Target == 0 {
		t.Fatalf("freed %d of target %d", p.Freed, p.Target)
	}
	if p.Reserve != (10*(1<<30))/10*3/2 {
		t.Fatalf("reserve %d", p.Reserve)
	}
	// Free-space mode: enough free space, nothing deleted.
	p, err = Space(snaps, SpaceOptions{Now: now, Free: 1 << 40, MinFree: 1 << 30})
	if err != nil || p.Target != 0 || len(kept(p.Decisions)) != len(snaps) {
		t.Fatalf("free space met: target %d, err %v", p.Target, err)
	}
}

func TestAnomalies(t *testing.T) {
	snaps := every(t0, Day, 20)
	for i := range snaps {
		snaps[i].NewBytes, snaps[i].Blobs, snaps[i].Overlap = 5<<20, 10000, 0.98
	}
	snaps[10].Overlap = 0.1 // the tree was replaced
	snaps[14].NewBytes = 100 << 20
	snaps[17].Blobs = 50000
	a := Anomalies(snaps, Anomaly{})
	if len(a) != 3 || a[snaps[10].ID] == "" || a[snaps[14].ID] == "" || a[snaps[17].ID] == "" {
		t.Fatalf("anomalies %v", a)
	}
	f := Floors(snaps, t0, Anomaly{})
	for _, i := range []int{7, 8, 9, 11, 12, 13, 15, 16} {
		if f[snaps[i].ID] == "" {
			t.Errorf("snapshot %d is not a floor before an anomaly: %q", i, f[snaps[i].ID])
		}
	}
	if f[snaps[10].ID] != "" {
		t.Error("an anomalous snapshot is a floor")
	}
}

func TestPolicyTime(t *testing.T) {
	created := t0
	now := t0.AddDate(0, 1, 0)
	claim := now.Add(-Day)
	cases := []struct {
		name    string
		in      TimeInput
		want    time.Time
		suspect bool
		note    string
	}{
		{"owner trusted", TimeInput{Claimed: claim, Receipt: now, OwnerSigned: true}, claim, false, "from its receipt"},
		{"writer aged by receipt", TimeInput{Claimed: claim, Receipt: claim.Add(time.Minute)}, claim.Add(time.Minute), false, ""},
		{"writer backdating", TimeInput{Claimed: claim.AddDate(0, 0, -20), Receipt: claim}, claim, true, "from its receipt"},
		{"future claim", TimeInput{Claimed: now.Add(48 * time.Hour), Receipt: now}, now, true, "in the future"},
		{"older than repo", TimeInput{Claimed: created.AddDate(-1, 0, 0), Receipt: now, OwnerSigned: true}, created.AddDate(-1, 0, 0), false, "before the repository"},
		{"no receipt", TimeInput{Claimed: claim}, now, true, "no receipt"},
	}
	for _, c := range cases {
		c.in.Now, c.in.RepoCreated = now, created
		got, sus, notes := PolicyTime(c.in)
		if !got.Equal(c.want) || sus != c.suspect || (c.note != "" && !strings.Contains(strings.Join(notes, ";"), c.note)) || (c.note == "" && len(notes) > 0) {
			t.Errorf("%s: %v %v %v", c.name, got, sus, notes)
		}
	}
}

// TestSpaceKeepsWhatItIsTold: a snapshot named in SpaceOptions.Keep is a
// floor: the budget is met by deleting another one instead.
func TestSpaceKeepsWhatItIsTold(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	snaps := every(now, 24*time.Hour, 30)
	for i := range snaps {
		snaps[i].NewBytes = 100
	}
	o := SpaceOptions{Now: now, Size: 3000, MaxSize: 3000 + GrowthReserve(snaps) - 100}
	removed := func(o SpaceOptions) []string {
		t.Helper()
		p, err := Space(snaps, o)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range p.Decisions {
			if !d.Keep {
				ids = append(ids, d.Snapshot.ID)
			}
		}
		return ids
	}
	first := removed(o)
	if len(first) != 1 {
		t.Fatalf("removed %v, want one snapshot", first)
	}
	o.Keep = map[string]string{first[0]: "told to"}
	again := removed(o)
	if len(again) != 1 || again[0] == first[0] {
		t.Fatalf("with %s kept, removed %v; want one other", first[0], again)
	}
	p, _ := Space(snaps, o)
	for _, d := range p.Decisions {
		if d.Snapshot.ID == first[0] && (!d.Keep || d.Reasons[0] != "told to") {
			t.Errorf("the kept snapshot: %+v", d)
		}
	}
}
