package monitor

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// DefaultCheckEvery is how often a Watcher checks backup ages.
const DefaultCheckEvery = time.Minute

// Watcher checks every client's backup age on its clock and notifies.
// Each notifier has its own tracker, so each gets every alert once, its
// own repeats, and the recovery; a notifier added while an alert stands
// hears of it at the next check. The trackers and each notifier's health
// are saved in the state database after every check, so a restart
// neither repeats nor forgets, and `cairn server status` sees them.
type Watcher struct {
	State  *state.State
	Log    *slog.Logger
	Now    func() time.Time // default time.Now
	Server string           // names the server in events (its host name)

	disp   *alert.Dispatcher
	saved  saved
	known  map[string]bool // notifiers in the dispatcher
	loaded bool
}

// Run checks at once and then at every tick until ctx ends.
func (w *Watcher) Run(ctx context.Context, ticks <-chan time.Time) {
	for {
		if err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.Log.Error("monitor: check backup ages", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}

func (w *Watcher) now() time.Time {
	if w.Now == nil {
		return time.Now()
	}
	return w.Now()
}

func (w *Watcher) load(ctx context.Context) error {
	if w.loaded {
		return nil
	}
	s, err := loadSaved(ctx, w.State)
	if err != nil {
		return err
	}
	w.saved, w.known, w.disp, w.loaded = s, map[string]bool{}, alert.NewDispatcher(w.now), true
	return nil
}

type active struct {
	n       alert.Notifier
	tracker *alert.Tracker
}

// notifiers brings the dispatcher in line with the configured notifiers
// (added, changed or removed since the last check, also by another
// process) and returns them by name.
func (w *Watcher) notifiers(ctx context.Context) (map[string]active, error) {
	ns, err := w.State.Notifiers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]active{}
	for _, n := range ns {
		cfg, err := ParseConfig(n)
		var nt alert.Notifier
		if err == nil {
			nt, err = cfg.Notifier()
		}
		if err != nil {
			w.Log.Error("monitor: notifier unusable", "notifier", n.Name, "err", err)
			nt = broken{err}
		}
		// The database has the last word on health: `notify test` in
		// another process may have recorded a delivery since.
		if n.Health != "" {
			var h alert.NotifierStatus
			if json.Unmarshal([]byte(n.Health), &h) == nil {
				h.Name = n.Name
				w.disp.Restore(h)
			}
		}
		w.known[n.Name] = true
		w.disp.Set(n.Name, nt)
		tr := w.saved.Notifiers[n.Name]
		if tr == nil {
			tr = &alert.Tracker{}
			w.saved.Notifiers[n.Name] = tr
		}
		tr.Repeat = repeatOf(n)
		out[n.Name] = active{nt, tr}
	}
	for name := range w.known {
		if _, ok := out[name]; !ok {
			delete(w.known, name)
			delete(w.saved.Notifiers, name)
			w.disp.Remove(name)
		}
	}
	for name := range w.saved.Notifiers {
		if _, ok := out[name]; !ok {
			delete(w.saved.Notifiers, name)
		}
	}
	return out, nil
}

// broken stands for a notifier whose settings cannot be used: every
// delivery fails with why, so it shows as failing.
type broken struct{ err error }

func (b broken) Notify(context.Context, alert.Event) error { return b.err }

// Check evaluates every client once, sends what that calls for, and saves
// the alert state and notifier health.
func (w *Watcher) Check(ctx context.Context) error {
	if err := w.load(ctx); err != nil {
		return err
	}
	ns, err := w.notifiers(ctx)
	if err != nil {
		return err
	}
	clients, err := w.State.Clients(ctx)
	if err != nil {
		return err
	}
	ths, err := w.State.Thresholds(ctx)
	if err != nil {
		return err
	}
	dr, err := loadDrills(ctx, w.State, clients)
	if err != nil {
		return err
	}
	audits, err := w.State.AuditStatuses(ctx)
	if err != nil {
		return err
	}
	runs, err := w.State.LastAgentRuns(ctx)
	if err != nil {
		return err
	}
	now := w.now()
	watched, tried := map[string]bool{}, map[string]bool{}
	for _, c := range clients {
		if c.Disabled {
			continue
		}
		level, reason := ClientLevel(c, ths[c.Name], now)
		w.observe(ctx, ns, tried, c.Name, Subject(c.Name), level, reason, now)
		watched[Subject(c.Name)] = true
		dl, dreason, _ := DrillLevel(c, dr.last[c.Name], dr.limit(c.Name), now)
		w.observe(ctx, ns, tried, c.Name, DrillSubject(c.Name), dl, dreason, now)
		watched[DrillSubject(c.Name)] = true
		if a, ok := audits[c.Name]; ok {
			al, areason := AuditLevel(a)
			w.observe(ctx, ns, tried, c.Name, AuditSubject(c.Name), al, areason, now)
			watched[AuditSubject(c.Name)] = true
		}
		if run, ok := runs[c.Name]; ok {
			gl, greason := AgentLevel(c, run, ok)
			w.observe(ctx, ns, tried, c.Name, AgentSubject(c.Name), gl, greason, now)
			watched[AgentSubject(c.Name)] = true
		}
		// The history behind the web page's chart: a sample whenever
		// what the client stores changed.
		if err := w.State.NoteHistory(ctx, c.Name, reports.Sample{At: now, Last: c.LastSnapshot, Snapshots: c.Snapshots, Stored: c.BytesStored}); err != nil {
			w.Log.Error("monitor: history", "client", c.Name, "err", err)
		}
	}
	// Removed or disabled clients are no longer watched: their alerts end
	// without a recovery notice.
	for _, tr := range append([]*alert.Tracker{w.saved.Open}, trackers(ns)...) {
		for _, ev := range tr.Standing() {
			if !watched[ev.Subject] {
				tr.Forget(ev.Subject)
			}
		}
	}
	return w.save(ctx, tried)
}

// observe feeds one subject's level to the open alerts and to every
// notifier's tracker, sending what that calls for.
func (w *Watcher) observe(ctx context.Context, ns map[string]active, tried map[string]bool, client, subj string, level alert.Level, reason string, now time.Time) {
	if ev, ok := w.saved.Open.Observe(subj, level, reason, now); ok {
		w.Log.Warn("monitor: "+string(ev.Kind), "client", client, "subject", subj, "level", ev.Level.String(), "reason", ev.Reason)
	}
	for name, a := range ns {
		ev, ok := a.tracker.Observe(subj, level, reason, now)
		if !ok {
			continue
		}
		ev.Server = w.Server
		tried[name] = true
		if err := w.disp.SendTo(ctx, name, a.n, ev); err != nil {
			w.Log.Error("monitor: notify", "notifier", name, "client", client, "kind", string(ev.Kind), "err", err)
			if ev.Kind != alert.Cleared {
				a.tracker.Retry(subj)
			}
		}
	}
}

func trackers(ns map[string]active) []*alert.Tracker {
	out := make([]*alert.Tracker, 0, len(ns))
	for _, a := range ns {
		out = append(out, a.tracker)
	}
	return out
}

// save records the alert state, and the health of the notifiers tried
// in this check (others keep what the database has).
func (w *Watcher) save(ctx context.Context, tried map[string]bool) error {
	b, err := json.Marshal(w.saved)
	if err != nil {
		return err
	}
	if err := w.State.SetAlerts(ctx, string(b)); err != nil {
		return err
	}
	for _, h := range w.disp.Status() {
		if !tried[h.Name] {
			continue
		}
		b, err := json.Marshal(h)
		if err != nil {
			return err
		}
		if err := w.State.SetNotifierHealth(ctx, h.Name, string(b)); err != nil {
			return err
		}
	}
	return nil
}

// Test sends a test event to the named notifier now and records its
// health; it returns the delivery's error.
func Test(ctx context.Context, st *state.State, name, server string, now time.Time) error {
	n, err := st.Notifier(ctx, name)
	if err != nil {
		return err
	}
	cfg, err := ParseConfig(n)
	if err != nil {
		return err
	}
	nt, err := cfg.Notifier()
	if err != nil {
		return err
	}
	d := alert.NewDispatcher(func() time.Time { return now })
	if n.Health != "" {
		var h alert.NotifierStatus
		if json.Unmarshal([]byte(n.Health), &h) == nil {
			h.Name = name
			d.Restore(h)
		}
	}
	ev := alert.Event{Version: alert.EventVersion, Kind: alert.Test, Subject: "notifier " + name, Level: alert.OK,
		Reason: "a test notice from `cairn server notify test`", Since: now, At: now, Server: server}
	sendErr := d.SendTo(ctx, name, nt, ev)
	for _, h := range d.Status() {
		b, _ := json.Marshal(h)
		if err := st.SetNotifierHealth(ctx, h.Name, string(b)); err != nil {
			return err
		}
	}
	return sendErr
}
