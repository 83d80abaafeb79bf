package checker

import (
	"slices"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// snapSets interns the sets of snapshots that reference a blob. Snapshots
// are added one at a time, each to all its blobs, so the distinct sets
// are few (one per pattern of sharing) and a blob needs only its set's
// number: 4 bytes where a list of names took some 100 at 10 M blobs.
// Set 0 is the empty set.
type snapSets struct {
	names []string          // short snapshot IDs by snapshot number
	sets  [][]string        // short snapshot IDs, in the order added
	last  []int             // per set: the snapshot number added last, -1 for none
	next  map[[2]int]uint32 // (set, snapshot number) → the set with it added
}

func newSnapSets() snapSets {
	return snapSets{sets: [][]string{nil}, last: []int{-1}, next: map[[2]int]uint32{}}
}

// newSnap numbers a snapshot named name for addSnap.
func (s *snapSets) newSnap(name string) int {
	s.names = append(s.names, name)
	return len(s.names) - 1
}

// addSnap returns the set that is set plus snapshot si.
func (s *snapSets) addSnap(set uint32, si int) uint32 {
	if s.last[set] == si {
		return set // a ref listed twice by one snapshot
	}
	k := [2]int{int(set), si}
	if n, ok := s.next[k]; ok {
		return n
	}
	n := uint32(len(s.sets))
	s.sets = append(s.sets, append(slices.Clip(s.sets[set]), s.names[si]))
	s.last = append(s.last, si)
	s.next[k] = n
	return n
}

// snapsOfBlob returns the short IDs of the snapshots that reference r, in
// the order they were checked; nil for none. The caller must not modify
// the slice.
func (c *checker) snapsOfBlob(r snapshot.Ref) []string {
	return c.sets[c.blobs[r].snaps]
}

// blobState is what check knows of a blob: its pack (a number in
// packIDs plus one; 0 when no index fragment lists it) and the set of
// snapshots that reference it (snapSets).
type blobState struct {
	pack  uint32
	snaps uint32
}
