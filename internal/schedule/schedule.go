// Package schedule parses when a backup should run and computes the next
// time it does: five-field cron lines ("30 4 * * 1-5"), the @hourly /
// @daily / @weekly / @monthly shorthands, and words ("daily 04:00",
// "weekly sun 03:30", "hourly", "every 6h"), in a named time zone, with a
// random delay (jitter) so a fleet does not start at the same second.
package schedule

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule. The zero value is not valid; use Parse.
type Schedule struct {
	spec  string
	loc   *time.Location
	every time.Duration // "every D": a fixed interval, no calendar

	minute, hour, dom, month, dow uint64 // bit sets
	domStar, dowStar              bool
}

// String returns the schedule as it was written.
func (s Schedule) String() string { return s.spec }

// Location is the time zone calendar fields are read in.
func (s Schedule) Location() *time.Location { return s.loc }

var (
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	monthNames = []string{"", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
)

// Parse reads spec in time zone loc (time.Local if nil).
func Parse(spec string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	s := Schedule{spec: spec, loc: loc}
	f := strings.Fields(strings.ToLower(spec))
	if len(f) == 0 {
		return s, errors.New("schedule: empty")
	}
	cron, err := words(f)
	if err != nil {
		return s, err
	}
	if cron == "" { // "every D"
		d, err := time.ParseDuration(f[1])
		if err != nil || d < time.Minute {
			return s, fmt.Errorf("schedule %q: every needs a duration of at least 1m, like 6h", spec)
		}
		s.every = d
		return s, nil
	}
	return s, s.parseCron(cron)
}

// words turns the word forms into a cron line; "" means "every D".
func words(f []string) (string, error) {
	at := func(i int) (int, int, error) {
		if len(f) <= i {
			return 0, 0, nil // midnight
		}
		if len(f) > i+1 {
			return 0, 0, fmt.Errorf("schedule %q: unexpected %q", strings.Join(f, " "), f[i+1])
		}
		t, err := time.Parse("15:04", f[i])
		if err != nil {
			return 0, 0, fmt.Errorf("schedule %q: %q is not a time like 04:00", strings.Join(f, " "), f[i])
		}
		return t.Hour(), t.Minute(), nil
	}
	switch f[0] {
	case "@hourly", "hourly":
		if len(f) > 1 {
			return "", fmt.Errorf("schedule %q: hourly takes nothing more", strings.Join(f, " "))
		}
		return "0 * * * *", nil
	case "@daily", "@midnight", "daily":
		h, m, err := at(1)
		return fmt.Sprintf("%d %d * * *", m, h), err
	case "@weekly", "weekly":
		day := "sun"
		i := 1
		if len(f) > 1 && index(dayNames, f[1][:min(3, len(f[1]))]) >= 0 {
			day, i = f[1][:3], 2
		}
		h, m, err := at(i)
		return fmt.Sprintf("%d %d * * %s", m, h, day), err
	case "@monthly", "monthly":
		h, m, err := at(1)
		return fmt.Sprintf("%d %d 1 * *", m, h), err
	case "every":
		if len(f) != 2 {
			return "", fmt.Errorf("schedule %q: write every 6h", strings.Join(f, " "))
		}
		return "", nil
	}
	if len(f) != 5 {
		return "", fmt.Errorf("schedule %q: not a cron line (minute hour day-of-month month day-of-week) or one of daily/weekly/monthly/hourly/every", strings.Join(f, " "))
	}
	return strings.Join(f, " "), nil
}

func index(list []string, s string) int {
	for i, v := range list {
		if v != "" && v == s {
			return i
		}
	}
	return -1
}

func (s *Schedule) parseCron(line string) error {
	f := strings.Fields(line)
	var err error
	fields := []struct {
		dst       *uint64
		lo, hi    int
		names     []string
		star      *bool
		wrapSeven bool
	}{
		{&s.minute, 0, 59, nil, nil, false},
		{&s.hour, 0, 23, nil, nil, false},
		{&s.dom, 1, 31, nil, &s.domStar, false},
		{&s.month, 1, 12, monthNames, nil, false},
		{&s.dow, 0, 7, dayNames, &s.dowStar, true},
	}
	for i, fd := range fields {
		var star bool
		*fd.dst, star, err = field(f[i], fd.lo, fd.hi, fd.names)
		if err != nil {
			return fmt.Errorf("schedule %q: field %d: %w", s.spec, i+1, err)
		}
		if fd.star != nil {
			*fd.star = star
		}
		if fd.wrapSeven && *fd.dst&(1<<7) != 0 { // 7 is Sunday too
			*fd.dst = *fd.dst&^(1<<7) | 1
		}
	}
	return nil
}

// field parses one cron field into a bit set.
func field(f string, lo, hi int, names []string) (bits uint64, star bool, err error) {
	num := func(s string) (int, error) {
		if names != nil {
			if i := index(names, s); i >= 0 {
				return i, nil
			}
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%q is not in %d-%d", s, lo, hi)
		}
		return n, nil
	}
	for _, part := range strings.Split(f, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			if step, err = strconv.Atoi(stepS); err != nil || step < 1 || step > hi {
				return 0, false, fmt.Errorf("bad step %q", stepS)
			}
		}
		var a, b int
		switch {
		case rng == "*":
			a, b = lo, hi
			star = star || !hasStep
		case strings.Contains(rng, "-"):
			as, bs, _ := strings.Cut(rng, "-")
			if a, err = num(as); err != nil {
				return 0, false, err
			}
			if b, err = num(bs); err != nil {
				return 0, false, err
			}
			if b < a {
				return 0, false, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			if a, err = num(rng); err != nil {
				return 0, false, err
			}
			b = a
			if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			bits |= 1 << v
		}
	}
	return bits, star, nil
}

// Next returns the first run strictly after t (to the minute), or the zero
// time if the schedule never fires (like "0 0 31 2 *").
func (s Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		// Runs at multiples of the interval since the zone's midnight of
		// 2000-01-01, so restarts do not shift the timetable.
		epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, s.loc)
		n := t.Sub(epoch)/s.every + 1
		return epoch.Add(n * s.every)
	}
	// Search the wall clock of the zone as a plain calendar (UTC has no
	// daylight-saving jumps), then place each match in the zone. A match
	// in a spring-forward gap runs just after the gap (02:30 becomes
	// 03:30); one in an autumn fold runs once.
	w := t.In(s.loc)
	c := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, time.UTC).Add(time.Minute)
	limit := c.AddDate(5, 0, 0)
	for c.Before(limit) {
		switch {
		case s.month&(1<<uint(c.Month())) == 0:
			c = time.Date(c.Year(), c.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(c):
			c = time.Date(c.Year(), c.Month(), c.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<uint(c.Hour())) == 0:
			c = c.Truncate(time.Hour).Add(time.Hour)
		case s.minute&(1<<uint(c.Minute())) == 0:
			c = c.Add(time.Minute)
		default:
			at := time.Date(c.Year(), c.Month(), c.Day(), c.Hour(), c.Minute(), 0, 0, s.loc)
			if at.After(t) {
				return at
			}
			c = c.Add(time.Minute)
		}
	}
	return time.Time{}
}

// dayMatches applies cron's rule: when both day fields are restricted, a
// day matching either runs.
func (s Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case s.domStar && s.dowStar:
		return true
	case s.domStar:
		return dow
	case s.dowStar:
		return dom
	}
	return dom || dow
}

// NextWithJitter is Next plus a uniformly random delay in [0, jitter) from
// rnd (a fresh source per agent, so a fleet spreads out).
func (s Schedule) NextWithJitter(t time.Time, jitter time.Duration, rnd *rand.Rand) time.Time {
	n := s.Next(t)
	if n.IsZero() || jitter <= 0 {
		return n
	}
	return n.Add(time.Duration(rnd.Int64N(int64(jitter))))
}

// OnCalendar is the schedule as a systemd timer's OnCalendar= value
// (systemd.time(7)), with its time zone. "every D" has none, nor a cron
// line restricting both day fields (cron runs on a day matching either;
// systemd only on one matching both): the agent's daemon runs those.
func (s Schedule) OnCalendar() (string, error) {
	if s.every > 0 {
		return "", fmt.Errorf("schedule %q: a systemd timer cannot run every %s from a fixed epoch; use the daemon (`cairn agent install --daemon`)", s.spec, s.every)
	}
	if !s.domStar && !s.dowStar {
		return "", fmt.Errorf("schedule %q: restricts both day fields (cron runs when either matches; systemd needs both); use the daemon (`cairn agent install --daemon`)", s.spec)
	}
	list := func(bits uint64, lo, hi int, names []string) string {
		if bits == (uint64(1)<<(hi+1))-(uint64(1)<<lo) {
			return "*"
		}
		var parts []string
		for v := lo; v <= hi; v++ {
			if bits&(1<<v) != 0 {
				if names != nil {
					parts = append(parts, names[v])
				} else {
					parts = append(parts, fmt.Sprintf("%02d", v))
				}
			}
		}
		return strings.Join(parts, ",")
	}
	var b strings.Builder
	if !s.dowStar {
		days := []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
		b.WriteString(list(s.dow, 0, 6, days) + " ")
	}
	fmt.Fprintf(&b, "*-%s-%s %s:%s:00", list(s.month, 1, 12, nil), list(s.dom, 1, 31, nil), list(s.hour, 0, 23, nil), list(s.minute, 0, 59, nil))
	if s.loc != nil && s.loc != time.Local && s.loc.String() != "Local" {
		b.WriteString(" " + s.loc.String())
	}
	return b.String(), nil
}
