package retention

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses restic's keep-within form ("1y2m3d4h": years of
// 365 days, months of 30 days, days, hours) or a Go duration ("36h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		return d, nil
	}
	var total time.Duration
	num := ""
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			num += string(c)
			continue
		case num == "":
			return 0, fmt.Errorf("duration %q: a number must come before %q (want e.g. 1y2m3d4h)", s, c)
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %v", s, err)
		}
		num = ""
		unit := map[rune]time.Duration{'y': 365 * Day, 'm': 30 * Day, 'w': 7 * Day, 'd': Day, 'h': time.Hour}[c]
		if unit == 0 {
			return 0, fmt.Errorf("duration %q: unknown unit %q (want y, m, w, d or h)", s, c)
		}
		total += time.Duration(n) * unit
	}
	if num != "" {
		return 0, fmt.Errorf("duration %q: %s has no unit (want e.g. 30d)", s, num)
	}
	return total, nil
}

// Day is 24 hours.
const Day = 24 * time.Hour

// FormatDuration renders d in ParseDuration's day/hour form.
func FormatDuration(d time.Duration) string {
	days, rest := d/Day, d%Day
	switch {
	case rest == 0:
		return fmt.Sprintf("%dd", days)
	case days == 0 && rest%time.Hour == 0:
		return fmt.Sprintf("%dh", rest/time.Hour)
	}
	return d.String()
}

// Config is a named, readable retention policy, as in a config file:
//
//	keep: {daily: 30, weekly: 5, monthly: 12, yearly: 10}
//	group_by: host,paths
//
// or the same as JSON ({"keep": {"daily": 30}, "group_by": "host"}), or
// with keep's fields on indented lines below "keep:".
type Config struct {
	Keep    Policy
	GroupBy string
	// Importance keeps the N most important snapshots per group (0: off).
	Importance int
}

type jsonConfig struct {
	Keep struct {
		Policy
		Within string `json:"within,omitempty"`
	} `json:"keep"`
	GroupBy    *string `json:"group_by,omitempty"`
	Importance int     `json:"importance,omitempty"`
}

// ParseConfig parses a policy file; errors name the line and the key.
func ParseConfig(src []byte) (*Config, error) {
	c := &Config{GroupBy: "host,paths"}
	if t := strings.TrimSpace(string(src)); strings.HasPrefix(t, "{") {
		var j jsonConfig
		dec := json.NewDecoder(strings.NewReader(t))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		c.Keep = j.Keep.Policy
		if j.Keep.Within != "" {
			d, err := ParseDuration(j.Keep.Within)
			if err != nil {
				return nil, fmt.Errorf("policy: keep.within: %w", err)
			}
			c.Keep.Within = d
		}
		if j.GroupBy != nil {
			c.GroupBy = *j.GroupBy
		}
		c.Importance = j.Importance
		return c, c.validate()
	}
	sc := bufio.NewScanner(strings.NewReader(string(src)))
	line := 0
	inKeep := false
	for sc.Scan() {
		line++
		raw := sc.Text()
		if i := strings.IndexByte(raw, '#'); i >= 0 {
			raw = raw[:i]
		}
		if strings.TrimSpace(raw) == "" {
			continue
		}
		indented := raw[0] == ' ' || raw[0] == '\t'
		key, val, ok := strings.Cut(strings.TrimSpace(raw), ":")
		if !ok {
			return nil, fmt.Errorf("policy line %d: want \"key: value\", got %q", line, strings.TrimSpace(raw))
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if indented {
			if !inKeep {
				return nil, fmt.Errorf("policy line %d: indented %q outside keep", line, key)
			}
			if err := c.setKeep(key, val); err != nil {
				return nil, fmt.Errorf("policy line %d: %w", line, err)
			}
			continue
		}
		inKeep = false
		switch key {
		case "keep":
			if val == "" {
				inKeep = true
				continue
			}
			if !strings.HasPrefix(val, "{") || !strings.HasSuffix(val, "}") {
				return nil, fmt.Errorf("policy line %d: keep: want {daily: 30, …} or fields on indented lines", line)
			}
			for _, f := range strings.Split(strings.Trim(val, "{}"), ",") {
				if strings.TrimSpace(f) == "" {
					continue
				}
				k, v, ok := strings.Cut(f, ":")
				if !ok {
					return nil, fmt.Errorf("policy line %d: keep: want name: value, got %q", line, strings.TrimSpace(f))
				}
				if err := c.setKeep(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
					return nil, fmt.Errorf("policy line %d: %w", line, err)
				}
			}
		case "group_by":
			c.GroupBy = strings.Trim(val, `"'`)
		case "importance":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("policy line %d: importance: want a count, got %q", line, val)
			}
			c.Importance = n
		default:
			return nil, fmt.Errorf("policy line %d: unknown key %q (want keep, group_by or importance)", line, key)
		}
	}
	return c, c.validate()
}

func (c *Config) setKeep(k, v string) error {
	v = strings.Trim(v, `"'`)
	if k == "within" {
		d, err := ParseDuration(v)
		if err != nil {
			return fmt.Errorf("keep.within: %w", err)
		}
		c.Keep.Within = d
		return nil
	}
	if k == "tag" || k == "tags" {
		c.Keep.Tags = append(c.Keep.Tags, v)
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("keep.%s: want a count, got %q", k, v)
	}
	p := &c.Keep
	dst := map[string]*int{"last": &p.Last, "hourly": &p.Hourly, "daily": &p.Daily, "weekly": &p.Weekly,
		"monthly": &p.Monthly, "yearly": &p.Yearly}[k]
	if dst == nil {
		return fmt.Errorf("unknown keep rule %q (want last, hourly, daily, weekly, monthly, yearly, within or tag)", k)
	}
	*dst = n
	return nil
}

func (c *Config) validate() error {
	if _, err := ParseGroupBy(c.GroupBy); err != nil {
		return fmt.Errorf("policy: group_by: %w", err)
	}
	if c.Keep.Empty() && c.Importance == 0 {
		return fmt.Errorf("policy: no keep rule; it would remove every snapshot")
	}
	return nil
}
