// Package policy is a retention policy as the server keeps it: for a
// client's repositories (package state) or a replication destination's
// replicas (package replicas), with its defaults, its validation and its
// rendering in flags.
package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/retention"
)

// Policy is a client's retention policy, applied by the server to each of
// the client's cairn repositories every Every.
type Policy struct {
	Keep       retention.Policy `json:"keep"`
	Within     time.Duration    `json:"within,omitempty"` // Keep.Within, which Policy's JSON leaves out
	GroupBy    string           `json:"group_by"`
	Importance int              `json:"importance,omitempty"`
	// MaxSize makes the policy space-driven: each repository of the client
	// is kept within MaxSize bytes by deleting its least important
	// snapshots, never a floor snapshot.
	MaxSize int64         `json:"max_size,omitempty"`
	Grace   time.Duration `json:"grace"`
	Every   time.Duration `json:"every"`
}

// Policy defaults.
const (
	DefaultEvery   = time.Hour
	DefaultGroupBy = "host,paths"
)

// DefaultPolicy is a policy with no rules and the default schedule.
func DefaultPolicy() Policy {
	return Policy{GroupBy: DefaultGroupBy, Grace: prune.DefaultGrace, Every: DefaultEvery}
}

// Validate checks a policy; errors name the flag of `cairn server client
// policy` that sets the wrong value.
func (p Policy) Validate() error {
	for _, f := range []struct {
		flag string
		n    int
	}{{"--keep-last", p.Keep.Last}, {"--keep-hourly", p.Keep.Hourly}, {"--keep-daily", p.Keep.Daily},
		{"--keep-weekly", p.Keep.Weekly}, {"--keep-monthly", p.Keep.Monthly}, {"--keep-yearly", p.Keep.Yearly},
		{"--importance", p.Importance}} {
		if f.n < 0 {
			return fmt.Errorf("%s %d: must not be negative", f.flag, f.n)
		}
	}
	switch {
	case p.Within < 0:
		return fmt.Errorf("--keep-within %v: must not be negative", p.Within)
	case p.MaxSize < 0:
		return fmt.Errorf("--max-size %d: must not be negative", p.MaxSize)
	case p.Grace < 0:
		return fmt.Errorf("--grace %v: must not be negative", p.Grace)
	case p.Every < time.Second:
		return fmt.Errorf("--every %v: must be at least 1s", p.Every)
	}
	if _, err := retention.ParseGroupBy(p.GroupBy); err != nil {
		return err
	}
	rules := !p.keep().Empty()
	n := 0
	for _, b := range []bool{rules, p.Importance > 0, p.MaxSize > 0} {
		if b {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("no rule: give --keep-* rules, --importance N or --max-size SIZE (a policy without rules would remove every snapshot)")
	case n > 1:
		return errors.New("--keep-* rules, --importance and --max-size are alternatives: give one kind (--max-size already keeps the most important snapshots and the floors)")
	}
	return nil
}

func (p Policy) keep() retention.Policy {
	k := p.Keep
	k.Within = p.Within
	return k
}

// RepoPolicy is the policy in retention's terms.
func (p Policy) RepoPolicy() (forget.Policy, error) {
	gb, err := retention.ParseGroupBy(p.GroupBy)
	if err != nil {
		return forget.Policy{}, err
	}
	return forget.Policy{Keep: p.keep(), GroupBy: gb, Importance: p.Importance, MaxSize: uint64(p.MaxSize)}, nil
}

// String renders the policy in its flags.
func (p Policy) String() string {
	var parts []string
	if !p.keep().Empty() {
		parts = append(parts, p.keep().String())
	}
	if p.Importance > 0 {
		parts = append(parts, fmt.Sprintf("importance %d", p.Importance))
	}
	if p.MaxSize > 0 {
		parts = append(parts, fmt.Sprintf("max size %d bytes", p.MaxSize))
	}
	parts = append(parts, "group by "+p.GroupBy, "grace "+p.Grace.String(), "every "+p.Every.String())
	return strings.Join(parts, "; ")
}
