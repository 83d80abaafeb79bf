package archiver

import (
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// TestFindParent: the parent is the newest snapshot by policy time of the
// same paths, hostname and host label, never an impostor's or a suspect
// one, whatever time it claims (R25).
func TestFindParent(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type snap struct {
		id              byte
		hours           int
		label, hostname string
		paths           []string
		impostor        bool
		suspect         bool
	}
	mk := func(ss []snap) []*repository.Snapshot {
		var out []*repository.Snapshot
		for _, s := range ss {
			out = append(out, &repository.Snapshot{ID: blob.ID{s.id},
				Meta:  &snapshot.MetaHeader{HostLabel: s.label},
				Owner: &snapshot.OwnerHeader{Hostname: s.hostname, Paths: s.paths},
				Standing: repository.Standing{Time: t0.Add(time.Duration(s.hours) * time.Hour), Judged: true,
					Impostor: s.impostor, Suspect: s.suspect}})
		}
		return out
	}
	p := []string{"/home"}
	cases := []struct {
		name  string
		snaps []snap
		want  byte
	}{
		{"newest of the same host and paths", []snap{{1, 1, "h", "m", p, false, false}, {2, 2, "h", "m", p, false, false}}, 2},
		{"impostor with a later time", []snap{{1, 1, "h", "m", p, false, false}, {2, 90000, "h", "m", p, true, false}}, 1},
		{"suspect", []snap{{1, 1, "h", "m", p, false, false}, {2, 5, "h", "m", p, false, true}}, 1},
		{"another label", []snap{{1, 1, "h", "m", p, false, false}, {2, 5, "g", "m", p, false, false}}, 1},
		{"another hostname", []snap{{1, 1, "h", "m", p, false, false}, {2, 5, "h", "x", p, false, false}}, 1},
		{"other paths", []snap{{1, 1, "h", "m", p, false, false}, {2, 5, "h", "m", []string{"/etc"}, false, false}}, 1},
		{"only an impostor", []snap{{2, 5, "h", "m", p, true, false}}, 0},
	}
	for _, c := range cases {
		got := findParent(mk(c.snaps), p, "m", "h")
		if (got == nil) != (c.want == 0) || (got != nil && got.ID[0] != c.want) {
			t.Errorf("%s: parent %v, want %d", c.name, got, c.want)
		}
	}
}
