package schedule

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has installed
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

func TestNext(t *testing.T) {
	utc := time.UTC
	base := time.Date(2026, 12, 6, 14, 33, 20, 0, utc) // a Sunday
	for _, tt := range []struct {
		spec string
		want []string // the next runs, in order
	}{
		{"daily 04:00", []string{"2026-12-07 04:00", "2026-12-08 04:00"}},
		{"@daily", []string{"2026-12-07 00:00"}},
		{"hourly", []string{"2026-12-06 15:00", "2026-12-06 16:00"}},
		{"weekly sun 03:30", []string{"2026-12-13 03:30", "2026-12-20 03:30"}},
		{"weekly", []string{"2026-12-13 00:00"}},
		{"monthly 01:15", []string{"2027-01-01 01:15"}},
		{"*/20 * * * *", []string{"2026-12-06 14:40", "2026-12-06 15:00", "2026-12-06 15:20"}},
		{"30 4 * * 1-5", []string{"2026-12-07 04:30", "2026-12-08 04:30"}},
		{"0 4 * * sat,7", []string{"2026-12-12 04:00", "2026-12-13 04:00"}},
		{"0 0 1 jan *", []string{"2027-01-01 00:00", "2028-01-01 00:00"}},
		// Both day fields restricted: either matches (cron's rule).
		{"0 12 15 * mon", []string{"2026-12-07 12:00", "2026-12-14 12:00", "2026-12-15 12:00"}},
		{"0 0 29 2 *", []string{"2028-02-29 00:00"}},
		{"5-10/5 3 * * *", []string{"2026-12-07 03:05", "2026-12-07 03:10"}},
	} {
		s, err := Parse(tt.spec, utc)
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		at := base
		for _, w := range tt.want {
			at = s.Next(at)
			if got := at.Format("2006-01-02 15:04"); got != w {
				t.Errorf("%q: next %s, want %s", tt.spec, got, w)
				break
			}
		}
	}
}

func TestNeverFires(t *testing.T) {
	s, err := Parse("0 0 31 2 *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Next(time.Now()); !n.IsZero() {
		t.Fatalf("February 31st came: %v", n)
	}
}

func TestEvery(t *testing.T) {
	s, err := Parse("every 6h", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 14, 33, 0, 0, time.UTC)
	if n := s.Next(at); !n.Equal(time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)) {
		t.Fatalf("every 6h after 14:33: %v", n)
	}
	if n := s.Next(time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)); !n.Equal(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("every 6h after 18:00: %v", n)
	}
}

// Daylight saving: a run in the spring gap happens just after it, one in
// the autumn fold happens once, and a zone's wall clock is honoured.
func TestTimeZones(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	s, err := Parse("daily 02:30", berlin)
	if err != nil {
		t.Fatal(err)
	}
	// 2026-03-29: 02:00 CET jumps to 03:00 CEST.
	n := s.Next(time.Date(2026, 3, 28, 12, 0, 0, 0, berlin))
	if got := n.In(berlin).Format("2006-01-02 15:04 MST"); got != "2026-03-29 03:30 CEST" {
		t.Fatalf("spring gap: %s", got)
	}
	if got := s.Next(n).In(berlin).Format("2006-01-02 15:04 MST"); got != "2026-03-30 02:30 CEST" {
		t.Fatalf("after the gap: %s", got)
	}
	// 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 exists twice.
	runs := 0
	at := time.Date(2026, 10, 24, 12, 0, 0, 0, berlin)
	end := time.Date(2026, 10, 26, 0, 0, 0, 0, berlin)
	for {
		at = s.Next(at)
		if !at.Before(end) {
			break
		}
		runs++
	}
	if runs != 1 { // the 24th's 02:30 is before noon: only the 25th's, once
		t.Fatalf("runs from the 24th noon to the 26th: %d, want 1 (02:30 of the 25th, once)", runs)
	}
	ny := mustLoc(t, "America/New_York")
	s, _ = Parse("daily 04:00", ny)
	if n := s.Next(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)); !n.Equal(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("04:00 in New York is 09:00 UTC in December: %v", n.UTC())
	}
}

func TestParseErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"":                  "empty",
		"daily 25:00":       "not a time",
		"daily 04:00 extra": "unexpected",
		"hourly 5":          "nothing more",
		"* * * *":           "not a cron line",
		"60 * * * *":        "not in 0-59",
		"* * * * 8":         "not in 0-7",
		"*/0 * * * *":       "bad step",
		"5-1 * * * *":       "backwards",
		"every 10s":         "at least 1m",
		"every":             "every 6h",
		"0 0 * foo *":       "not in 1-12",
	} {
		if _, err := Parse(spec, time.UTC); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", spec, err, want)
		}
	}
}

func TestJitterStaysInItsWindow(t *testing.T) {
	s, _ := Parse("daily 04:00", time.UTC)
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	slot := s.Next(at)
	rnd := rand.New(rand.NewPCG(1, 2))
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := s.NextWithJitter(at, 30*time.Minute, rnd).Sub(slot)
		if d < 0 || d >= 30*time.Minute {
			t.Fatalf("jitter %v outside [0, 30m)", d)
		}
		seen[d.Truncate(time.Minute)] = true
	}
	if len(seen) < 25 {
		t.Fatalf("1000 draws fell in only %d of 30 minutes: not spread", len(seen))
	}
	if n := s.NextWithJitter(at, 0, rnd); !n.Equal(slot) {
		t.Fatal("zero jitter moved the run")
	}
}

func TestOnCalendar(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, c := range []struct{ spec, want string }{
		{"daily 04:00", "*-*-* 04:00:00 Europe/Berlin"},
		{"weekly sun 03:30", "Sun *-*-* 03:30:00 Europe/Berlin"},
		{"monthly 01:15", "*-*-01 01:15:00 Europe/Berlin"},
		{"hourly", "*-*-* *:00:00 Europe/Berlin"},
		{"*/15 2-4 * jan,jul 1-5", "Mon,Tue,Wed,Thu,Fri *-01,07-* 02,03,04:00,15,30,45:00 Europe/Berlin"},
	} {
		s, err := Parse(c.spec, berlin)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.OnCalendar()
		if err != nil || got != c.want {
			t.Errorf("%q: %q, %v; want %q", c.spec, got, err, c.want)
		}
	}
	for _, spec := range []string{"every 6h", "0 4 1 * mon"} {
		s, _ := Parse(spec, berlin)
		if _, err := s.OnCalendar(); err == nil {
			t.Errorf("%q: no error", spec)
		}
	}
}
