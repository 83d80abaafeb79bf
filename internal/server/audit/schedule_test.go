package audit

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

// simulate runs days audits of 1/30 a day over a store that starts with
// start files and gains add files a day; it returns, per file, the days
// it was re-hashed, and the files re-hashed each day.
func simulate(t *testing.T, start, add, days int) (map[backend.Handle][]int, []int) {
	t.Helper()
	day := 24 * time.Hour
	cycle := 30 * day
	t0 := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	rec := map[backend.Handle]replicas.AuditedFile{}
	var files []backend.Handle
	next := 0
	grow := func(n int, now time.Time) {
		for range n {
			h := backend.Handle{Type: backend.Data, Name: fmt.Sprintf("%064x", next)}
			next++
			files = append(files, h)
			rec[h] = replicas.AuditedFile{FirstSeen: now}
		}
	}
	grow(start, t0)
	seen := map[backend.Handle][]int{}
	var per []int
	for d := range days {
		now := t0.Add(time.Duration(d) * day)
		if d > 0 {
			grow(add, now)
		}
		got := Select(files, rec, 1.0/30, cycle, day, now)
		per = append(per, len(got))
		for _, h := range got {
			seen[h] = append(seen[h], d)
			r := rec[h]
			r.Audited = now
			rec[h] = r
		}
	}
	for _, h := range files {
		if _, ok := seen[h]; !ok {
			seen[h] = nil
		}
	}
	return seen, per
}

func TestSelectCoversEverythingIn30Periods(t *testing.T) {
	seen, per := simulate(t, 900, 0, 30)
	for h, days := range seen {
		if len(days) != 1 {
			t.Fatalf("%s re-hashed on days %v in the first 30, want exactly once", h.Name[56:], days)
		}
	}
	for d, n := range per {
		if n != 30 {
			t.Errorf("day %d re-hashed %d files, want 30 (1/30 of 900)", d, n)
		}
	}
}

func TestSelectCoversFilesAddedMeanwhile(t *testing.T) {
	const days = 90
	seen, per := simulate(t, 300, 17, days)
	for h, ds := range seen {
		var first int
		fmt.Sscanf(h.Name, "%x", &first)
		// The day the file appeared.
		born := 0
		if first >= 300 {
			born = (first-300)/17 + 1
		}
		prev := born
		for _, d := range ds {
			if d-prev > 30 {
				t.Fatalf("file %d (added day %d) waited %d days between re-hashes (days %v), want at most 30", first, born, d-prev, ds)
			}
			prev = d
		}
		if days-1-prev >= 30 {
			t.Fatalf("file %d (added day %d) not re-hashed since day %d (days %v)", first, born, prev, ds)
		}
	}
	// Still about 1/30 of the store a day, not everything.
	total := 300 + 17*(days-1)
	if last := per[len(per)-1]; last > total/30+17+1 {
		t.Errorf("the last day re-hashed %d of %d files, want about 1/30", last, total)
	}
}

func TestSelectFractionOneTakesAll(t *testing.T) {
	files := []backend.Handle{{Type: backend.Data, Name: "a"}, {Type: backend.Index, Name: "b"}}
	now := time.Now()
	got := Select(files, map[backend.Handle]replicas.AuditedFile{}, 1, 24*time.Hour, 24*time.Hour, now)
	if len(got) != 2 {
		t.Fatalf("fraction 1 selected %d of 2", len(got))
	}
}

// TestSelectOrder: at equal deadlines, files never re-hashed go first,
// then by type and name, so an audit's choice does not depend on the
// listing's order.
func TestSelectOrder(t *testing.T) {
	now := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	name := fmt.Sprintf("%064x", 1)
	idx := backend.Handle{Type: backend.Index, Name: name}
	data := backend.Handle{Type: backend.Data, Name: name}
	data2 := backend.Handle{Type: backend.Data, Name: fmt.Sprintf("%064x", 2)}
	snap := backend.Handle{Type: backend.Snapshots, Name: name}
	rec := map[backend.Handle]replicas.AuditedFile{
		idx: {FirstSeen: now}, data: {FirstSeen: now}, data2: {FirstSeen: now},
		snap: {FirstSeen: now.Add(-time.Hour), Audited: now}, // the same deadline, re-hashed before
	}
	got := Select([]backend.Handle{snap, data2, idx, data}, rec, 1, time.Hour, time.Minute, now)
	want := []backend.Handle{data, data2, idx, snap}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	// Past the fraction, every file due before the next audit is taken
	// too: here all four are due within the hour, one is the fraction.
	if got := Select([]backend.Handle{snap, data2, idx, data}, rec, 0.25, time.Hour, 2*time.Hour, now); len(got) != 4 {
		t.Fatalf("due before the next audit: %v", got)
	}
	if got := Select([]backend.Handle{snap, data2, idx, data}, rec, 0.25, time.Hour, time.Minute, now); len(got) != 1 || got[0] != data {
		t.Fatalf("none due before the next audit: %v", got)
	}
}
