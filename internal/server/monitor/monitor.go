// Package monitor answers "is everyone backed up?" for a cairn server:
// Evaluate computes each client's backup age and level from the state
// database (for `cairn server status`, the metrics and, later, the web
// page), and a Watcher, run by `cairn server run`, checks them on a clock
// and sends alerts through package alert: once when raised, again at each
// notifier's repeat interval while standing, once when cleared. Restore
// drills (drill.go) are watched the same way, as their own subject.
package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// ClockEnv names a file holding an RFC 3339 time that replaces the system
// clock for backup ages and the rolling audit's periods (tests and drills
// of the alerting: advance the file, watch the alerts). Nothing else on
// the server uses it.
const ClockEnv = "CAIRN_TEST_MONITOR_CLOCK"

// Clock returns the clock backup ages are measured on: time.Now, or the
// time in the file $CAIRN_TEST_MONITOR_CLOCK names, read at each call (a
// missing or unreadable file falls back to time.Now).
func Clock() func() time.Time {
	path := os.Getenv(ClockEnv)
	if path == "" {
		return time.Now
	}
	return func() time.Time {
		b, err := os.ReadFile(path)
		if err != nil {
			return time.Now()
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
		if err != nil {
			return time.Now()
		}
		return t
	}
}

// Subject is the alert subject of a client's backup age.
func Subject(client string) string { return "client " + client }

// AuditSubject is the alert subject of a client's stored files: the
// rolling audit (internal/server/audit) found a bad or missing file.
func AuditSubject(client string) string { return "audit " + client }

// AuditLevel is the audit rule: ALERT while the last audit left damage it
// could not heal, WARNING when it found damage and healed it all (until
// the next audit finds the client whole), OK otherwise.
func AuditLevel(a replicas.AuditStatus) (alert.Level, string) {
	switch {
	case a.Unhealed > 0:
		return alert.Alert, fmt.Sprintf("audit at %s: %d bad or missing files not healed (%s)", a.At.UTC().Format(time.RFC3339), a.Unhealed, a.Note)
	case a.Bad > 0:
		return alert.Warning, fmt.Sprintf("audit at %s: %s", a.At.UTC().Format(time.RFC3339), a.Note)
	}
	return alert.OK, "audit found every file sound"
}

// AuditSummary is a client's last audit in its status.
type AuditSummary struct {
	At       time.Time `json:"at"`
	Coverage float64   `json:"coverage"` // share of stored files re-hashed within the audit cycle
	Files    int64     `json:"files"`
	Bad      int64     `json:"bad"`
	Healed   int64     `json:"healed"`
	Unhealed int64     `json:"unhealed"`
	Note     string    `json:"note,omitempty"`
}

// ClientStatus is one client's backup health. Its JSON form is part of
// `cairn server status --json` (docs/commands.md).
type ClientStatus struct {
	Name string `json:"name"`
	// Level is OK, WARNING or ALERT; a disabled client is not watched
	// and is always OK.
	Level alert.Level `json:"level"`
	// State is what a person reads: "OK", "WARNING", "ALERT", "never
	// backed up" (any level) or "disabled".
	State      string        `json:"state"`
	Reason     string        `json:"reason"`
	LastBackup time.Time     `json:"last_backup,omitzero"`
	Age        time.Duration `json:"-"`
	AgeSeconds int64         `json:"age_seconds"` // since the last backup, or enrolment when never
	Never      bool          `json:"never_backed_up"`
	Enrolled   time.Time     `json:"enrolled"`
	Disabled   bool          `json:"disabled"`
	WarnAfter  time.Duration `json:"-"`
	AlertAfter time.Duration `json:"-"`
	WarnSecs   int64         `json:"warn_after_seconds"`
	AlertSecs  int64         `json:"alert_after_seconds"`
	Snapshots  int64         `json:"snapshots"`
	Stored     int64         `json:"stored_bytes"`
	Quota      int64         `json:"quota_bytes"`          // 0: unlimited
	QuotaUsed  float64       `json:"quota_used,omitempty"` // stored / quota
	Alerts     []alert.Event `json:"alerts"`               // open alerts on this client
	// Audit is the client's last audit; nil if never audited.
	Audit *AuditSummary `json:"audit"`
	// AgentRun is the last attempt the client's agent reported; nil if
	// none (agent.go). While it failed, Level is at least WARNING.
	AgentRun *AgentRunSummary `json:"last_agent_run"`

	// Restore drills (drill.go): DrillLevel is OK or ALERT, DrillState
	// "OK", "ALERT", "never drilled" (any level) or "disabled";
	// LastDrill is the oldest of the repositories' last drills (zero when
	// one was never drilled).
	DrillLevel     alert.Level   `json:"drill_level"`
	DrillState     string        `json:"drill_state"`
	DrillReason    string        `json:"drill_reason"`
	LastDrill      time.Time     `json:"last_drill,omitzero"`
	DrillAfter     time.Duration `json:"-"`
	DrillAfterSecs int64         `json:"drill_after_seconds"`
	Drills         []RepoDrill   `json:"drills"`
}

// NotifierStatus is one notifier's configuration and health.
type NotifierStatus struct {
	alert.NotifierStatus
	Kind          string        `json:"kind"`
	Target        string        `json:"target"` // URL without query or credentials, or relay and recipients
	Repeat        time.Duration `json:"-"`
	RepeatSeconds int64         `json:"repeat_seconds"`
}

// Report is the whole server's status.
type Report struct {
	At        time.Time        `json:"at"`
	Clients   []ClientStatus   `json:"clients"`
	Notifiers []NotifierStatus `json:"notifiers"`
	Alerts    []alert.Event    `json:"alerts"` // every open alert, worst first
}

// Stored measures what a client stores; nil or an error leaves the
// figure the state database recorded last.
type Stored func(client string) (int64, error)

// ClientLevel is the backup-age rule for one client.
func ClientLevel(c state.Client, th state.Thresholds, now time.Time) (alert.Level, string) {
	return alert.Age(c.LastSnapshot, c.Created, now, th.WarnAfter, th.AlertAfter)
}

// Evaluate reports every client (or only the named one, if only is not
// empty: state.ErrNoClient if there is none) at now, with the open alerts
// and notifier health the running server last recorded.
func Evaluate(ctx context.Context, st *state.State, stored Stored, now time.Time, only string) (Report, error) {
	clients, err := selectClients(ctx, st, only)
	if err != nil {
		return Report{}, err
	}
	ths, err := st.Thresholds(ctx)
	if err != nil {
		return Report{}, err
	}
	saved, err := loadSaved(ctx, st)
	if err != nil {
		return Report{}, err
	}
	open := saved.Open.Standing()
	dr, err := loadDrills(ctx, st, clients)
	if err != nil {
		return Report{}, err
	}
	audits, err := st.AuditStatuses(ctx)
	if err != nil {
		return Report{}, err
	}
	runs, err := st.LastAgentRuns(ctx)
	if err != nil {
		return Report{}, err
	}
	r := Report{At: now, Clients: []ClientStatus{}, Alerts: []alert.Event{}}
	for _, c := range clients {
		cs := backupStatus(c, ths[c.Name], now)
		drillStatus(&cs, c, dr, now)
		run, ok := runs[c.Name]
		agentStatus(&cs, c, run, ok)
		if stored != nil {
			if n, err := stored(c.Name); err == nil {
				cs.Stored = n
			}
		}
		if c.Quota > 0 {
			cs.QuotaUsed = float64(cs.Stored) / float64(c.Quota)
		}
		if a, ok := audits[c.Name]; ok {
			cs.Audit = &AuditSummary{At: a.At, Coverage: a.Coverage(), Files: a.Files, Bad: a.Bad, Healed: a.Healed, Unhealed: a.Unhealed, Note: a.Note}
		}
		for _, ev := range open {
			if concerns(ev, c.Name) {
				cs.Alerts = append(cs.Alerts, ev)
			}
		}
		r.Clients = append(r.Clients, cs)
	}
	for _, ev := range open {
		if only == "" || concerns(ev, only) {
			r.Alerts = append(r.Alerts, ev)
		}
	}
	if r.Notifiers, err = Notifiers(ctx, st); err != nil {
		return Report{}, err
	}
	return r, nil
}

// selectClients returns every client, or only the named one if only is
// not empty (state.ErrNoClient if there is none).
func selectClients(ctx context.Context, st *state.State, only string) ([]state.Client, error) {
	if only == "" {
		return st.Clients(ctx)
	}
	c, err := st.Client(ctx, only)
	if err != nil {
		return nil, err
	}
	return []state.Client{c}, nil
}

// backupStatus starts a client's status: its figures from the state and
// its backup age, level and state at now under its thresholds.
func backupStatus(c state.Client, th state.Thresholds, now time.Time) ClientStatus {
	cs := ClientStatus{Name: c.Name, LastBackup: c.LastSnapshot, Never: c.LastSnapshot.IsZero(), Enrolled: c.Created,
		Disabled: c.Disabled, Snapshots: c.Snapshots, Quota: c.Quota, Stored: c.BytesStored, Alerts: []alert.Event{}}
	cs.WarnAfter, cs.AlertAfter = effective(th)
	cs.WarnSecs, cs.AlertSecs = int64(cs.WarnAfter/time.Second), int64(cs.AlertAfter/time.Second)
	since := c.LastSnapshot
	if cs.Never {
		since = c.Created
	}
	cs.Age = now.Sub(since)
	cs.AgeSeconds = int64(cs.Age / time.Second)
	cs.Level, cs.Reason = ClientLevel(c, th, now)
	cs.State = cs.Level.String()
	switch {
	case c.Disabled:
		cs.Level, cs.State, cs.Reason = alert.OK, "disabled", "disabled: not watched"
	case cs.Never:
		cs.State = "never backed up"
	}
	return cs
}

// drillStatus fills in a client's restore-drill level and state at now.
func drillStatus(cs *ClientStatus, c state.Client, dr drills, now time.Time) {
	cs.Drills, cs.DrillAfter = dr.last[c.Name], dr.limit(c.Name)
	cs.DrillAfterSecs = int64(cs.DrillAfter / time.Second)
	cs.DrillLevel, cs.DrillReason, cs.LastDrill = DrillLevel(c, cs.Drills, cs.DrillAfter, now)
	cs.DrillState = cs.DrillLevel.String()
	switch {
	case c.Disabled:
		cs.DrillLevel, cs.DrillState = alert.OK, "disabled"
	case cs.LastDrill.IsZero():
		cs.DrillState = "never drilled"
	}
}

// concerns reports whether an alert is about the named client: its
// backups, its restore drills, its audit or its agent runs.
func concerns(ev alert.Event, client string) bool {
	return ev.Subject == Subject(client) || ev.Subject == DrillSubject(client) || ev.Subject == AuditSubject(client) || ev.Subject == AgentSubject(client)
}

func effective(th state.Thresholds) (warn, alrt time.Duration) {
	warn, alrt = th.WarnAfter, th.AlertAfter
	if warn <= 0 {
		warn = alert.DefaultWarnAfter
	}
	if alrt <= 0 {
		alrt = alert.DefaultAlertAfter
	}
	return warn, alrt
}

// Notifiers lists the configured notifiers with the health the running
// server (or the last `notify test`) recorded.
func Notifiers(ctx context.Context, st *state.State) ([]NotifierStatus, error) {
	ns, err := st.Notifiers(ctx)
	if err != nil {
		return nil, err
	}
	out := []NotifierStatus{}
	for _, n := range ns {
		s := NotifierStatus{Kind: n.Kind, Repeat: repeatOf(n), RepeatSeconds: int64(repeatOf(n) / time.Second)}
		if n.Health != "" {
			_ = json.Unmarshal([]byte(n.Health), &s.NotifierStatus) // a bad record reads as no record
		}
		s.Name = n.Name
		cfg, err := ParseConfig(n)
		if err != nil {
			s.Target = "(" + err.Error() + ")"
		} else {
			s.Target = cfg.Target()
		}
		out = append(out, s)
	}
	return out, nil
}

func repeatOf(n reports.Notifier) time.Duration {
	if n.Repeat <= 0 {
		return alert.DefaultRepeat
	}
	return n.Repeat
}

// saved is the alert state the running server keeps in the state
// database: the open alerts, and what each notifier was last told.
type saved struct {
	Open      *alert.Tracker            `json:"open"`
	Notifiers map[string]*alert.Tracker `json:"notifiers"`
}

func loadSaved(ctx context.Context, st *state.State) (saved, error) {
	s := saved{Open: &alert.Tracker{Repeat: -1}, Notifiers: map[string]*alert.Tracker{}}
	raw, err := st.Alerts(ctx)
	if err != nil || raw == "" {
		return s, err
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return saved{}, fmt.Errorf("the alert state in the state database: %w", err)
	}
	if s.Open == nil {
		s.Open = &alert.Tracker{}
	}
	s.Open.Repeat = -1
	if s.Notifiers == nil {
		s.Notifiers = map[string]*alert.Tracker{}
	}
	return s, nil
}
