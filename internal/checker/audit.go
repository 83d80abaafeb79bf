package checker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/units"
)

// Subset chooses part of the packs for a rolling data audit. Exactly one
// of its fields is set.
type Subset struct {
	// Of: verify 1/Of of the packs per run, so Of runs verify every pack
	// once (a cycle). N/Of is N of Of.
	N, Of int
	// Percent of the packs per run, longest unverified first.
	Percent float64
	// Bytes of packs per run, longest unverified first (at least one).
	Bytes int64
}

func (s Subset) String() string {
	switch {
	case s.Of > 0:
		return fmt.Sprintf("%d/%d", s.N, s.Of)
	case s.Percent > 0:
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	default:
		return fmt.Sprintf("%d bytes", s.Bytes)
	}
}

// ParseSubset parses "1/30", "5%" or a size ("500M", "2GiB", "1048576").
func ParseSubset(s string) (Subset, error) {
	bad := fmt.Errorf("read-data subset %q: want N/M (1/30), a percentage (5%%) or a size (500MiB)", s)
	s = strings.TrimSpace(s)
	if a, b, ok := strings.Cut(s, "/"); ok {
		n, err1 := strconv.Atoi(a)
		m, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || n < 1 || m < 1 || n > m {
			return Subset{}, bad
		}
		return Subset{N: n, Of: m}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return Subset{}, bad
		}
		return Subset{Percent: f}, nil
	}
	n, err := units.ParseSize(s)
	if err != nil || n == 0 || n > math.MaxInt64/2 {
		return Subset{}, bad
	}
	return Subset{Bytes: int64(n)}, nil
}

// auditState is what the check remembers between runs: when each pack was
// last verified whole, the current N/M cycle, and each writer's newest
// statement seen (R17: a repository must never go behind it).
type auditState struct {
	Packs   map[string]time.Time            `json:"packs"`
	Cycle   cycle                           `json:"cycle"`
	Writers map[string]repository.Committed `json:"writers"`
}

type cycle struct {
	Subset string    `json:"subset"`
	Start  time.Time `json:"start"`
	Runs   int       `json:"runs"`
}

// Audit is the coverage of the rolling data audit.
type Audit struct {
	Subset   string   `json:"subset,omitempty"`
	Verified []string `json:"verified"` // packs read this run
	Packs    int      `json:"packs"`
	// Within counts the packs verified in the last WithinDays days.
	Within     int `json:"verified_within"`
	WithinDays int `json:"within_days"`
	Never      int `json:"never_verified"`
	// OldestAge is the time since the least recently verified pack was
	// verified (0 when some pack never was: see Never).
	OldestAge time.Duration `json:"oldest_age_ns"`
	StateFile string        `json:"state_file,omitempty"`
}

func (c *checker) statePath() string {
	if c.opts.StateFile != "" {
		return c.opts.StateFile
	}
	if d := c.repo.Cache().Dir(); d != "" {
		return filepath.Join(d, "check-state.json")
	}
	return ""
}

func (c *checker) loadState() error {
	c.state = &auditState{Packs: map[string]time.Time{}, Writers: map[string]repository.Committed{}}
	p := c.statePath()
	if p == "" {
		return nil
	}
	buf, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check state: %w", err)
	}
	if err := json.Unmarshal(buf, c.state); err != nil {
		c.rep.Notes = append(c.rep.Notes, fmt.Sprintf("check state %s is damaged (%v); starting afresh", p, err))
		c.state = &auditState{}
	}
	if c.state.Packs == nil {
		c.state.Packs = map[string]time.Time{}
	}
	if c.state.Writers == nil {
		c.state.Writers = map[string]repository.Committed{}
	}
	return nil
}

func (c *checker) saveState() error {
	p := c.statePath()
	if p == "" {
		return nil
	}
	for w, f := range c.chainFacts {
		if f.Seq >= c.state.Writers[w].Seq {
			c.state.Writers[w] = f
		}
	}
	for name := range c.state.Packs {
		id, err := blob.ParseID(name)
		if _, ok := c.indexed[id]; err != nil || !ok {
			delete(c.state.Packs, name) // gone: pruned or dropped by repair
		}
	}
	buf, err := json.MarshalIndent(c.state, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("check state: %w", err)
	}
	if err := repository.WriteFileAtomic(p, buf); err != nil {
		return fmt.Errorf("check state: %w", err)
	}
	return nil
}

// selectPacks picks the packs to read this run: all of them without a
// subset; otherwise the least recently verified first (never verified
// before any), ties by name. N/M runs in cycles of M/N runs; each run takes
// its share of what the cycle has not yet verified (packs added meanwhile
// included), so the runs of one cycle verify every pack exactly once.
func (c *checker) selectPacks(now time.Time) []blob.ID {
	var ids []blob.ID
	for id := range c.packFiles {
		if _, ok := c.indexed[id]; ok {
			ids = append(ids, id)
		}
	}
	last := func(id blob.ID) time.Time { return c.state.Packs[id.String()] }
	sort.Slice(ids, func(i, j int) bool {
		a, b := last(ids[i]), last(ids[j])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return bytes.Compare(ids[i][:], ids[j][:]) < 0
	})
	s := c.opts.Subset
	switch {
	case s == nil:
		return ids
	case s.Of > 0:
		runs := (s.Of + s.N - 1) / s.N
		cy := &c.state.Cycle
		pending := func() int {
			n := 0
			for _, id := range ids {
				if last(id).Before(cy.Start) || last(id).IsZero() {
					n++
				}
			}
			return n
		}
		if cy.Subset != s.String() || cy.Runs >= runs {
			*cy = cycle{Subset: s.String(), Start: now}
		}
		p := pending()
		take := (p + runs - cy.Runs - 1) / (runs - cy.Runs)
		cy.Runs++
		return ids[:take]
	case s.Percent > 0:
		return ids[:min(len(ids), int(math.Ceil(float64(len(ids))*s.Percent/100)))]
	default:
		var sum int64
		for i, id := range ids {
			sum += c.packFiles[id]
			if sum >= s.Bytes {
				return ids[:i+1]
			}
		}
		return ids
	}
}

// coverage fills in the audit report after the run.
func (c *checker) coverage(now time.Time, verified []blob.ID) {
	a := &Audit{Verified: []string{}, StateFile: c.statePath(), WithinDays: 30}
	if s := c.opts.Subset; s != nil {
		a.Subset = s.String()
		if s.Of > 0 {
			a.WithinDays = (s.Of + s.N - 1) / s.N
		}
	}
	for _, id := range verified {
		a.Verified = append(a.Verified, id.String())
	}
	sort.Strings(a.Verified)
	window := time.Duration(a.WithinDays) * 24 * time.Hour
	var oldest time.Time
	for id := range c.indexed {
		if _, ok := c.packFiles[id]; !ok {
			continue
		}
		a.Packs++
		t, ok := c.state.Packs[id.String()]
		switch {
		case !ok:
			a.Never++
			continue
		case now.Sub(t) <= window:
			a.Within++
		}
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if a.Never == 0 && !oldest.IsZero() {
		a.OldestAge = now.Sub(oldest)
	}
	c.rep.Audit = a
}
