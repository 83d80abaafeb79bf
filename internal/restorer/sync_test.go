package restorer

import (
	"slices"
	"sort"
	"testing"
)

// TestDirtyDirs: a directory is recorded with its ancestors up to the
// target (""), each once.
func TestDirtyDirs(t *testing.T) {
	d := dirtyDirs{dirs: map[string][]string{}}
	d.add([]string{"a", "b", "c"})
	d.add([]string{"a", "x"})
	d.add([]string{"a", "b"})
	d.add(nil)
	var keys []string
	for k, comps := range d.dirs {
		keys = append(keys, k)
		if len(comps) > 0 && comps[len(comps)-1] != k[len(k)-len(comps[len(comps)-1]):] {
			t.Errorf("%q: components %q", k, comps)
		}
	}
	sort.Strings(keys)
	if want := []string{"", "a", "a/b", "a/b/c", "a/x"}; !slices.Equal(keys, want) {
		t.Fatalf("dirty %q, want %q", keys, want)
	}
}
