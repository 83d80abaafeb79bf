package audit

import (
	"math"
	"sort"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

// Select returns the files of one copy whose turn it is at now, oldest
// first. Every file has a deadline: cycle after it was last re-hashed,
// or after it was first seen if never. An audit re-hashes every file
// whose deadline falls before the next audit (now + period), and at
// least its fraction of the files (rounded up), taking the earliest
// deadlines first and, at equal deadlines, files never re-hashed first.
// So with cycle = period / fraction every file, including one added
// meanwhile, is re-hashed at most cycle after its last re-hash or its
// first sighting, and a steady store costs about fraction of its files a
// period.
func Select(files []backend.Handle, rec map[backend.Handle]replicas.AuditedFile, fraction float64, cycle, period time.Duration, now time.Time) []backend.Handle {
	type cand struct {
		h        backend.Handle
		deadline time.Time
		never    bool
	}
	cs := make([]cand, 0, len(files))
	for _, h := range files {
		r := rec[h]
		base, never := r.Audited, r.Audited.IsZero()
		if never {
			base = r.FirstSeen
			if base.IsZero() {
				base = now
			}
		}
		cs = append(cs, cand{h, base.Add(cycle), never})
	}
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if !a.deadline.Equal(b.deadline) {
			return a.deadline.Before(b.deadline)
		}
		if a.never != b.never {
			return a.never
		}
		if a.h.Type != b.h.Type {
			return a.h.Type < b.h.Type
		}
		return a.h.Name < b.h.Name
	})
	n := min(len(cs), int(math.Ceil(float64(len(cs))*fraction-1e-9)))
	next := now.Add(period)
	for n < len(cs) && cs[n].deadline.Before(next) {
		n++
	}
	out := make([]backend.Handle, n)
	for i := range out {
		out[i] = cs[i].h
	}
	return out
}

// Covered counts the files re-hashed within cycle before now.
func Covered(files []backend.Handle, rec map[backend.Handle]replicas.AuditedFile, cycle time.Duration, now time.Time) int {
	n := 0
	for _, h := range files {
		if a := rec[h].Audited; !a.IsZero() && now.Sub(a) < cycle {
			n++
		}
	}
	return n
}
