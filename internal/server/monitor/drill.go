package monitor

// Restore drills: when each repository was last proven restorable
// (`cairn drill`, recorded by the server from an owner-signed record) and
// the alert when that is older than the client's drill-age limit.

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// DefaultDrillAfter is how old a client's last restore drill may grow
// before it alerts (per client: `cairn server client set --drill-after`).
const DefaultDrillAfter = 35 * 24 * time.Hour

// DrillSubject is the alert subject of a client's restore drills.
func DrillSubject(client string) string { return "restore drill of client " + client }

// RepoDrill is one repository's last restore drill, in `cairn server
// status --json`. A repository never drilled has no snapshot and a zero
// time.
type RepoDrill struct {
	Repo     string    `json:"repo"`
	Snapshot string    `json:"snapshot,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Files    int64     `json:"files"`
	Bytes    int64     `json:"bytes"`
	Result   string    `json:"result,omitempty"`
}

// drills is what the drill rule reads from the state database.
type drills struct {
	last  map[string][]RepoDrill // by client: every known repository, drilled or not
	after map[string]time.Duration
}

func loadDrills(ctx context.Context, st *state.State, clients []state.Client) (drills, error) {
	d := drills{last: map[string][]RepoDrill{}}
	all, err := st.Drills(ctx)
	if err != nil {
		return d, err
	}
	if d.after, err = st.DrillAfter(ctx); err != nil {
		return d, err
	}
	byRepo := map[string]reports.Drill{}
	for _, r := range all {
		byRepo[r.Repo] = r
	}
	for _, c := range clients {
		repos, err := st.Repos(ctx, c.Name)
		if err != nil {
			return d, err
		}
		seen := map[string]bool{}
		for _, r := range repos {
			seen[r] = true
		}
		for _, r := range all {
			if r.Client == c.Name && !seen[r.Repo] {
				repos = append(repos, r.Repo)
			}
		}
		out := []RepoDrill{}
		for _, r := range repos {
			rd := RepoDrill{Repo: r}
			if x, ok := byRepo[r]; ok {
				rd.Snapshot, rd.At, rd.Files, rd.Bytes, rd.Result = x.Snapshot, x.At, x.Files, x.Bytes, x.Result
			}
			out = append(out, rd)
		}
		d.last[c.Name] = out
	}
	return d, nil
}

func (d drills) limit(client string) time.Duration {
	if a := d.after[client]; a > 0 {
		return a
	}
	return DefaultDrillAfter
}

// DrillLevel is the drill-age rule for one client: ALERT when the oldest
// of its repositories' last drills is older than after; a repository (or
// a client without any) never drilled is aged from the client's
// enrolment. It returns the level, the reason, and the time that
// governs (zero: never drilled).
func DrillLevel(c state.Client, repos []RepoDrill, after time.Duration, now time.Time) (alert.Level, string, time.Time) {
	var oldest time.Time
	never, what := len(repos) == 0, ""
	for _, r := range repos {
		switch {
		case r.At.IsZero():
			if !never {
				never, what = true, r.Repo
			}
		case !never && (oldest.IsZero() || r.At.Before(oldest)):
			oldest, what = r.At, r.Repo
		}
	}
	since, reason := oldest, ""
	if never {
		since, oldest = c.Created, time.Time{}
		reason = fmt.Sprintf("never drilled; enrolled %s ago", roundDur(now.Sub(since)))
		if what != "" {
			reason = fmt.Sprintf("%s never drilled; client enrolled %s ago", what, roundDur(now.Sub(since)))
		}
	} else {
		reason = fmt.Sprintf("last restore drill %s ago (%s)", roundDur(now.Sub(since)), what)
	}
	if now.Sub(since) > after {
		return alert.Alert, reason + fmt.Sprintf(", limit %s; run `cairn drill` with the owner key", roundDur(after)), oldest
	}
	return alert.OK, reason, oldest
}

func roundDur(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
	if d > time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}
