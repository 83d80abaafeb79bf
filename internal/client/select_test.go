package client

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// snap makes a judged snapshot whose ID starts with the hex prefix id.
func snap(id string, at time.Time, host string, tags []string, paths ...string) *repository.Snapshot {
	var bid blob.ID
	for i := 0; i+1 < len(id) && i/2 < len(bid); i += 2 {
		var b byte
		for _, c := range id[i : i+2] {
			b = b<<4 | byte(strings.IndexRune("0123456789abcdef", c))
		}
		bid[i/2] = b
	}
	return &repository.Snapshot{ID: bid, Meta: &snapshot.MetaHeader{HostLabel: host, Tags: tags},
		Owner: &snapshot.OwnerHeader{Paths: paths}, Standing: repository.Standing{Time: at, Judged: true}}
}

func shorts(snaps []*repository.Snapshot) []string {
	var out []string
	for _, s := range snaps {
		out = append(out, s.ID.String()[:4])
	}
	return out
}

// TestFilter: --host is any of, --tag any of comma-separated all-of lists
// ("" matches no tags), --path all of, a trailing "/" ignored; a field the
// key cannot read never matches a filter on it.
func TestFilter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snaps := []*repository.Snapshot{
		snap("aa01", t0, "web1", []string{"daily", "db"}, "/srv/a", "/srv/b"),
		snap("bb02", t0.Add(time.Hour), "web1", []string{"daily"}, "/srv/a"),
		snap("cc03", t0.Add(2*time.Hour), "web2", nil, "/srv/b"),
	}
	sealed := snap("dd04", t0.Add(3*time.Hour), "", nil)
	sealed.Meta, sealed.Owner = nil, nil // a writer key reads neither
	snaps = append(snaps, sealed)
	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{}, []string{"aa01", "bb02", "cc03", "dd04"}},
		{Filter{Hosts: []string{"web2", "web9"}}, []string{"cc03"}},
		{Filter{Tags: []string{"daily,db"}}, []string{"aa01"}},
		{Filter{Tags: []string{"daily,db", "daily"}}, []string{"aa01", "bb02"}},
		{Filter{Tags: []string{""}}, []string{"cc03"}},
		{Filter{Paths: []string{"/srv/a/"}}, []string{"aa01", "bb02"}},
		{Filter{Paths: []string{"/srv/a", "/srv/b"}}, []string{"aa01"}},
		{Filter{Hosts: []string{"web1"}, Paths: []string{"/srv/b"}}, []string{"aa01"}},
	} {
		if got := shorts(tc.f.Apply(snaps)); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
		}
		if tc.f.Empty() != (len(tc.f.Hosts)+len(tc.f.Tags)+len(tc.f.Paths) == 0) {
			t.Errorf("%+v: Empty() = %v", tc.f, tc.f.Empty())
		}
	}
}

// TestFind: "latest" is the newest selectable match, passing over an
// impostor; an ID prefix finds any snapshot, also one latest passes over;
// ambiguous, unknown and malformed IDs fail, the last as a UsageError.
func TestFind(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := snap("ab01", t0, "web1", nil)
	mid := snap("ab02", t0.Add(time.Hour), "web2", nil)
	imp := snap("cd03", t0.Add(2*time.Hour), "web1", nil)
	imp.Standing.Impostor = true
	snaps := []*repository.Snapshot{old, mid, imp}

	if s, err := Find(snaps, "latest", &Filter{}); err != nil || s != mid {
		t.Errorf("latest: %v, %v; want ab02", s, err)
	}
	if s, err := Find(snaps, "latest", &Filter{Hosts: []string{"web1"}}); err != nil || s != old {
		t.Errorf("latest --host web1: %v, %v; want ab01 (cd03 is an impostor)", s, err)
	}
	if s, err := Find(snaps, "CD", &Filter{}); err != nil || s != imp {
		t.Errorf("an impostor by ID prefix: %v, %v", s, err)
	}
	for _, tc := range []struct{ arg, want string }{
		{"ab", "is ambiguous: ab010000, ab020000; give more digits"},
		{"ef", "no snapshot ef"},
		{"xyz", `"xyz" is not a snapshot ID`},
	} {
		if _, err := Find(snaps, tc.arg, &Filter{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.arg, err, tc.want)
		}
	}
	if _, err := Find(snaps, "xyz", &Filter{}); !errors.As(err, new(UsageError)) {
		t.Errorf("a malformed ID is not a usage error: %T", err)
	}
	if _, err := Find([]*repository.Snapshot{imp}, "latest", &Filter{}); err == nil || !strings.Contains(err.Error(), "passed over (cd030000 claims host label") {
		t.Errorf("latest with only an impostor: %v", err)
	}
	if _, err := Find(nil, "latest", &Filter{}); err == nil || !strings.Contains(err.Error(), "no snapshots") {
		t.Errorf("latest of nothing: %v", err)
	}
	if _, err := Find(snaps, "latest", &Filter{Hosts: []string{"web9"}}); err == nil || !strings.Contains(err.Error(), "no snapshot matches") {
		t.Errorf("latest of no match: %v", err)
	}
}
