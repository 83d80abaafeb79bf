package retention

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// ErrBudget means the space budget cannot be met without deleting a floor
// snapshot. Callers refuse, say so and exit non-zero (a server turns it
// into 507 and an alert).
var ErrBudget = errors.New("the space budget cannot be met without deleting floor snapshots")

// FloorBuckets are the age buckets, in days, whose oldest healthy snapshot
// is a floor: (0,7], (7,28], (28,56], (56,112].
var FloorBuckets = []int{7, 28, 56, 112}

// Anomaly thresholds; the zero value of each field takes the default.
type Anomaly struct {
	MinOverlap float64 // below this fraction of the previous manifest: anomaly (0.5)
	BytesJump  float64 // new bytes above this × the median of the previous 10 (4)
	MinBytes   uint64  // …and above this many bytes (1 MiB)
	BlobJump   float64 // reachable blobs above this × the previous snapshot's (2)
	MinBlobs   uint64  // …and at least this many more (1000)
	KeepBefore int     // healthy snapshots kept before an anomaly (3)
}

func (a Anomaly) withDefaults() Anomaly {
	if a.MinOverlap == 0 {
		a.MinOverlap = 0.5
	}
	if a.BytesJump == 0 {
		a.BytesJump = 4
	}
	if a.MinBytes == 0 {
		a.MinBytes = 1 << 20
	}
	if a.BlobJump == 0 {
		a.BlobJump = 2
	}
	if a.MinBlobs == 0 {
		a.MinBlobs = 1000
	}
	if a.KeepBefore == 0 {
		a.KeepBefore = 3
	}
	return a
}

// Anomalies returns, for one group, why each anomalous snapshot is one:
// what a server sees without content — low overlap with the previous
// manifest, a jump in new bytes or in blob count.
func Anomalies(group []Snapshot, a Anomaly) map[string]string {
	a = a.withDefaults()
	s := oldestFirst(group)
	out := map[string]string{}
	for i := 1; i < len(s); i++ {
		cur, prev := s[i], s[i-1]
		var why []string
		if cur.Overlap >= 0 && cur.Overlap < a.MinOverlap {
			why = append(why, fmt.Sprintf("reaches only %.0f%% of the previous snapshot's blobs", 100*cur.Overlap))
		}
		var hist []uint64
		for j := max(0, i-10); j < i; j++ {
			hist = append(hist, s[j].NewBytes)
		}
		if m := median(hist); cur.NewBytes > a.MinBytes && float64(cur.NewBytes) > a.BytesJump*float64(m) {
			why = append(why, fmt.Sprintf("added %d bytes, %.1f× the recent median", cur.NewBytes, float64(cur.NewBytes)/math.Max(1, float64(m))))
		}
		if cur.Blobs > prev.Blobs+a.MinBlobs && float64(cur.Blobs) > a.BlobJump*float64(prev.Blobs) {
			why = append(why, fmt.Sprintf("reaches %d blobs, up from %d", cur.Blobs, prev.Blobs))
		}
		if len(why) > 0 {
			out[cur.ID] = strings.Join(why, "; ")
		}
	}
	return out
}

func median(v []uint64) uint64 {
	if len(v) == 0 {
		return 0
	}
	c := append([]uint64(nil), v...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c[len(c)/2]
}

func oldestFirst(snaps []Snapshot) []Snapshot {
	s := append([]Snapshot(nil), snaps...)
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.Before(s[j].Time)
		}
		return s[i].ID < s[j].ID
	})
	return s
}

// Floors returns the floor snapshots of one group and why (R13): the
// newest; the oldest healthy one in each FloorBuckets age bucket; the
// KeepBefore healthy ones before each anomaly. Healthy: not anomalous and
// not suspect.
func Floors(group []Snapshot, now time.Time, a Anomaly) map[string]string {
	a = a.withDefaults()
	anom := Anomalies(group, a)
	s := oldestFirst(group)
	out := map[string]string{}
	if len(s) == 0 {
		return out
	}
	out[s[len(s)-1].ID] = "newest"
	healthy := func(x Snapshot) bool { return anom[x.ID] == "" && !x.Suspect }
	lo := 0
	for _, b := range FloorBuckets {
		for _, x := range s { // oldest first: the first match is the oldest
			age := now.Sub(x.Time)
			if age > time.Duration(lo)*Day && age <= time.Duration(b)*Day || lo == 0 && age <= 0 {
				if healthy(x) {
					if _, ok := out[x.ID]; !ok {
						out[x.ID] = fmt.Sprintf("floor: oldest healthy in %d–%d days", lo, b)
					}
					break
				}
			}
		}
		lo = b
	}
	for i, x := range s {
		if anom[x.ID] == "" {
			continue
		}
		n := 0
		for j := i - 1; j >= 0 && n < a.KeepBefore; j-- {
			if healthy(s[j]) {
				if _, ok := out[s[j].ID]; !ok {
					out[s[j].ID] = "floor: before anomalous snapshot " + x.ID
				}
				n++
			}
		}
	}
	return out
}

// SpaceOptions configure Space.
type SpaceOptions struct {
	Now     time.Time
	GroupBy GroupBy
	// Size is the repository's current size; MaxSize the budget (0: off).
	Size, MaxSize uint64
	// Free is the disk's free space; MinFree what must stay free (0: off).
	Free, MinFree uint64
	// Freed estimates the bytes deleting these snapshots (and pruning)
	// returns; nil sums their NewBytes.
	Freed   func(ids []string) uint64
	Anomaly Anomaly
	// Keep names snapshots that stay whatever the budget needs, by ID
	// with the reason: they count as floors.
	Keep map[string]string
}

// SpacePlan is Space's result.
type SpacePlan struct {
	Decisions []Decision
	Reserve   uint64 // space the next backups need: average new bytes of the last 10 snapshots + 50%
	Target    uint64 // bytes to free
	Freed     uint64 // estimated bytes the deletions free
}

// GrowthReserve is the average new bytes of the newest 10 snapshots, plus
// 50%.
func GrowthReserve(snaps []Snapshot) uint64 {
	s := oldestFirst(snaps)
	s = s[max(0, len(s)-10):]
	if len(s) == 0 {
		return 0
	}
	var sum uint64
	for _, x := range s {
		sum += x.NewBytes
	}
	return sum / uint64(len(s)) * 3 / 2
}

// Space deletes least-important snapshots (importance within each group,
// the least important across groups first) until the estimated space freed
// meets the budget, never deleting a floor. If the budget cannot be met it
// returns the plan so far and an error wrapping ErrBudget.
func Space(snaps []Snapshot, o SpaceOptions) (*SpacePlan, error) {
	p := &SpacePlan{Reserve: GrowthReserve(snaps)}
	if o.MaxSize > 0 && o.Size+p.Reserve > o.MaxSize {
		p.Target = o.Size + p.Reserve - o.MaxSize
	}
	if o.MinFree > 0 && o.Free < o.MinFree+p.Reserve {
		p.Target = max(p.Target, o.MinFree+p.Reserve-o.Free)
	}
	freed := o.Freed
	if freed == nil {
		byID := map[string]uint64{}
		for _, s := range snaps {
			byID[s.ID] = s.NewBytes
		}
		freed = func(ids []string) uint64 {
			var n uint64
			for _, id := range ids {
				n += byID[id]
			}
			return n
		}
	}
	keys, groups := Group(snaps, o.GroupBy)
	floors := map[string]string{}
	rankers := make([]*ranker, len(keys))
	for i, k := range keys {
		for id, why := range Floors(groups[k], o.Now, o.Anomaly) {
			floors[id] = why
		}
		rankers[i] = newRanker(groups[k], o.Now)
	}
	for _, s := range snaps {
		if why, ok := o.Keep[s.ID]; ok && floors[s.ID] == "" {
			floors[s.ID] = why
		}
	}
	removed := map[string]string{}
	var ids []string
	var err error
	for p.Target > 0 {
		if p.Freed = freed(ids); p.Freed >= p.Target {
			break
		}
		var best Scored
		bi := -1
		for i, r := range rankers {
			s, ok := r.next(func(s Snapshot) bool { return floors[s.ID] == "" })
			if ok && (bi < 0 || s.Importance < best.Importance-1e-12 ||
				(math.Abs(s.Importance-best.Importance) <= 1e-12 && s.Gap < best.Gap)) {
				best, bi = s, i
			}
		}
		if bi < 0 {
			err = fmt.Errorf("%w: need %d bytes free (including %d for the next backups), deleting every other snapshot frees about %d; %d floor snapshots remain",
				ErrBudget, p.Target, p.Reserve, p.Freed, len(floors))
			break
		}
		rankers[bi].remove(best.ID)
		ids = append(ids, best.ID)
		removed[best.ID] = fmt.Sprintf("least important (%.3f); space budget needs %d bytes freed", best.Importance, p.Target)
	}
	for _, s := range snaps {
		d := Decision{Snapshot: s}
		switch {
		case removed[s.ID] != "":
			d.Reasons = []string{removed[s.ID]}
		case floors[s.ID] != "":
			d.Keep, d.Reasons = true, []string{floors[s.ID]}
		default:
			d.Keep, d.Reasons = true, []string{"within budget"}
		}
		p.Decisions = append(p.Decisions, d)
	}
	sortNewestFirst(p.Decisions)
	return p, err
}
