package retention

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// TargetAges are the ages, in days, the importance policy keeps snapshots
// near.
var TargetAges = []int{0, 1, 2, 3, 7, 14, 21, 28, 56, 112}

// missing is the distance to a target no snapshot covers.
const missing = 1e6

// dist is the relative distance of a snapshot of age a from target t:
// |a − t| / max(t, 1 day). One day off the 1-day target costs as much as 56
// days off the 56-day target, so old snapshots may be sparser.
func dist(age time.Duration, target int) float64 {
	t := float64(target) * float64(Day)
	return math.Abs(float64(age)-t) / math.Max(t, float64(Day))
}

// Scored is a snapshot with its importance at the moment it was judged.
type Scored struct {
	Snapshot
	// Importance is how much worse the set's coverage of the target ages
	// gets without this snapshot: the sum, over the targets it is the
	// closest snapshot to, of (distance of the next closest − its own
	// distance). 0 means no target needs it.
	Importance float64
	// Gap is the time to its nearest neighbour; among equally important
	// snapshots the one with the smallest gap goes first.
	Gap time.Duration
}

// ranker computes importance over a shrinking set.
type ranker struct {
	now   time.Time
	snaps []Snapshot // sorted oldest first
	alive []bool
}

func newRanker(snaps []Snapshot, now time.Time) *ranker {
	s := append([]Snapshot(nil), snaps...)
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.Before(s[j].Time)
		}
		return s[i].ID < s[j].ID
	})
	alive := make([]bool, len(s))
	for i := range alive {
		alive[i] = true
	}
	return &ranker{now: now, snaps: s, alive: alive}
}

// scores returns the importance and gap of every live snapshot.
func (r *ranker) scores() []Scored {
	imp := make([]float64, len(r.snaps))
	for _, t := range TargetAges {
		best, second := -1, -1
		bd, sd := math.Inf(1), math.Inf(1)
		for i, s := range r.snaps {
			if !r.alive[i] {
				continue
			}
			d := dist(r.now.Sub(s.Time), t)
			switch {
			case d < bd:
				second, sd = best, bd
				best, bd = i, d
			case d < sd:
				second, sd = i, d
			}
		}
		if best < 0 {
			continue
		}
		if second < 0 {
			sd = missing
		}
		imp[best] += sd - bd
	}
	var out []Scored
	prev := -1
	for i := range r.snaps {
		if !r.alive[i] {
			continue
		}
		gap := time.Duration(math.MaxInt64)
		if prev >= 0 {
			gap = r.snaps[i].Time.Sub(r.snaps[prev].Time)
			if n := len(out) - 1; gap < out[n].Gap {
				out[n].Gap = gap
			}
		}
		out = append(out, Scored{Snapshot: r.snaps[i], Importance: imp[i], Gap: gap})
		prev = i
	}
	return out
}

// next returns the least important live snapshot for which ok is true, or
// false if there is none. Ties: smallest gap, then oldest.
func (r *ranker) next(ok func(Snapshot) bool) (Scored, bool) {
	var best Scored
	found := false
	for _, s := range r.scores() {
		if !ok(s.Snapshot) {
			continue
		}
		if !found || s.Importance < best.Importance-1e-12 ||
			(math.Abs(s.Importance-best.Importance) <= 1e-12 && s.Gap < best.Gap) {
			best, found = s, true
		}
	}
	return best, found
}

func (r *ranker) remove(id string) {
	for i, s := range r.snaps {
		if s.ID == id {
			r.alive[i] = false
		}
	}
}

// Importance keeps the keep most important snapshots of one group (newest
// always among them), deleting the least important one at a time and
// recomputing importance after each deletion.
func Importance(snaps []Snapshot, keep int, now time.Time) []Decision {
	r := newRanker(snaps, now)
	newest := newestID(snaps)
	reasons := map[string][]string{}
	left := len(snaps)
	for left > keep && left > 1 {
		s, ok := r.next(func(s Snapshot) bool { return s.ID != newest })
		if !ok {
			break
		}
		r.remove(s.ID)
		reasons[s.ID] = []string{fmt.Sprintf("least important (%.3f) of %d; importance keeps %d", s.Importance, left, keep)}
		left--
	}
	final := map[string]Scored{}
	for _, s := range r.scores() {
		final[s.ID] = s
	}
	ds := make([]Decision, 0, len(snaps))
	for _, s := range snaps {
		d := Decision{Snapshot: s}
		if why, gone := reasons[s.ID]; gone {
			d.Reasons = why
		} else {
			d.Keep = true
			d.Reasons = []string{fmt.Sprintf("importance %.3f", final[s.ID].Importance)}
			if s.ID == newest {
				d.Reasons = append(d.Reasons, "newest")
			}
		}
		ds = append(ds, d)
	}
	sortNewestFirst(ds)
	return ds
}

func newestID(snaps []Snapshot) string {
	var n *Snapshot
	for i := range snaps {
		s := &snaps[i]
		if n == nil || s.Time.After(n.Time) || (s.Time.Equal(n.Time) && s.ID > n.ID) {
			n = s
		}
	}
	if n == nil {
		return ""
	}
	return n.ID
}
