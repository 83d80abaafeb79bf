package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
// in any YAML form (flow, block, or JSON, which is YAML too). Unknown keys
// are refused; errors name the line and the key.
type Config struct {
	Keep    Policy
	GroupBy string
	// Importance keeps the N most important snapshots per group (0: off).
	Importance int
}

// ParseConfig parses a policy file.
func ParseConfig(src []byte) (*Config, error) {
	c := &Config{GroupBy: "host,paths"}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("policy: the file is empty")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("policy line %d: want keys keep, group_by and importance", root.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, fmt.Errorf("policy line %d: %q given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "keep":
			if v.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("policy line %d: keep: want {daily: 30, …} or fields on indented lines", v.Line)
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				kk, vv := v.Content[j], v.Content[j+1]
				if err := c.setKeep(kk.Value, vv); err != nil {
					return nil, fmt.Errorf("policy line %d: %w", vv.Line, err)
				}
			}
		case "group_by":
			if v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("policy line %d: group_by: want e.g. host,paths", v.Line)
			}
			c.GroupBy = v.Value
		case "importance":
			n, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || n < 0 {
				return nil, fmt.Errorf("policy line %d: importance: want a count, got %q", v.Line, v.Value)
			}
			c.Importance = n
		default:
			return nil, fmt.Errorf("policy line %d: unknown key %q (want keep, group_by or importance)", k.Line, k.Value)
		}
	}
	return c, c.validate()
}

func (c *Config) setKeep(k string, v *yaml.Node) error {
	if k == "tag" || k == "tags" {
		switch v.Kind {
		case yaml.ScalarNode:
			c.Keep.Tags = append(c.Keep.Tags, v.Value)
		case yaml.SequenceNode:
			for _, t := range v.Content {
				if t.Kind != yaml.ScalarNode {
					return fmt.Errorf("keep.%s: want tag names", k)
				}
				c.Keep.Tags = append(c.Keep.Tags, t.Value)
			}
		default:
			return fmt.Errorf("keep.%s: want a tag or a list of tags", k)
		}
		return nil
	}
	if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("keep.%s: want a single value", k)
	}
	if k == "within" {
		d, err := ParseDuration(v.Value)
		if err != nil {
			return fmt.Errorf("keep.within: %w", err)
		}
		c.Keep.Within = d
		return nil
	}
	p := &c.Keep
	dst := map[string]*int{"last": &p.Last, "hourly": &p.Hourly, "daily": &p.Daily, "weekly": &p.Weekly,
		"monthly": &p.Monthly, "yearly": &p.Yearly}[k]
	if dst == nil {
		return fmt.Errorf("unknown keep rule %q (want last, hourly, daily, weekly, monthly, yearly, within or tag)", k)
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil {
		return fmt.Errorf("keep.%s: want a count, got %q", k, v.Value)
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
