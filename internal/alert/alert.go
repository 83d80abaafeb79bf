// Package alert decides when a condition the server watches (a client's
// backup age, a failed audit, a notifier that cannot deliver) becomes a
// notification, and delivers it by webhook or e-mail. It knows nothing of
// repositories: the server reports levels, the Tracker turns their changes
// into events (once when raised, again at an interval while standing, once
// when cleared), and a Dispatcher hands each event to every notifier and
// remembers which of them failed.
package alert

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Level is how bad a condition is.
type Level int

// The levels, in order of severity.
const (
	OK Level = iota
	Warning
	Alert
)

func (l Level) String() string {
	switch l {
	case OK:
		return "OK"
	case Warning:
		return "WARNING"
	case Alert:
		return "ALERT"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// MarshalText makes levels read as words in JSON.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (l *Level) UnmarshalText(b []byte) error {
	for _, c := range []Level{OK, Warning, Alert} {
		if c.String() == string(b) {
			*l = c
			return nil
		}
	}
	return fmt.Errorf("alert: unknown level %q", b)
}

// Default thresholds for a client's backup age.
const (
	DefaultWarnAfter  = 24 * time.Hour
	DefaultAlertAfter = 28 * time.Hour
	DefaultRepeat     = 6 * time.Hour
)

// Age is the backup-age rule: a client whose newest snapshot arrived more
// than warnAfter ago is WARNING, more than alertAfter ago ALERT. A client
// that never backed up is aged from its enrolment. Zero thresholds take
// the defaults.
func Age(last, enrolled, now time.Time, warnAfter, alertAfter time.Duration) (Level, string) {
	if warnAfter <= 0 {
		warnAfter = DefaultWarnAfter
	}
	if alertAfter <= 0 {
		alertAfter = DefaultAlertAfter
	}
	since, what := last, "last backup"
	if last.IsZero() {
		since, what = enrolled, "never backed up; enrolled"
	}
	age := now.Sub(since)
	reason := fmt.Sprintf("%s %s ago", what, roundAge(age))
	switch {
	case age > alertAfter:
		return Alert, reason
	case age > warnAfter:
		return Warning, reason
	}
	return OK, reason
}

func roundAge(d time.Duration) time.Duration {
	if d > time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

// Kind says why an event is sent.
type Kind string

// Event kinds.
const (
	Raised   Kind = "raised"   // the condition became WARNING or ALERT, or got worse
	Repeated Kind = "repeated" // it still stands, Repeat after the last notice
	Cleared  Kind = "cleared"  // it is OK again
	Test     Kind = "test"     // `cairn server notify test`: no condition behind it
)

// Event is one notification. Its JSON form is the webhook body; Version
// changes when a field changes meaning.
type Event struct {
	Version int       `json:"version"`
	Kind    Kind      `json:"kind"`
	Subject string    `json:"subject"` // e.g. "client alice" or "repository alice/laptop"
	Level   Level     `json:"level"`   // the level now (OK for Cleared)
	Was     Level     `json:"was"`     // the level before this event
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"` // when the condition was first raised
	At      time.Time `json:"at"`
	Server  string    `json:"server,omitempty"`
}

// EventVersion is the webhook schema's version.
const EventVersion = 1

type state struct {
	Level    Level     `json:"level"`
	Since    time.Time `json:"since"`
	Notified time.Time `json:"notified"`
	Reason   string    `json:"reason"`
}

// Tracker turns observed levels into events. It is safe for concurrent
// use; its state can be saved and restored so a restart neither repeats
// nor forgets a standing alert.
type Tracker struct {
	// Repeat is how often a standing condition is notified again
	// (DefaultRepeat if zero; negative: never).
	Repeat time.Duration

	mu    sync.Mutex
	state map[string]state
}

// Observe records subject's level at now and returns the event it calls
// for, if any.
func (t *Tracker) Observe(subject string, level Level, reason string, now time.Time) (Event, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == nil {
		t.state = map[string]state{}
	}
	repeat := t.Repeat
	if repeat == 0 {
		repeat = DefaultRepeat
	}
	old, known := t.state[subject]
	ev := Event{Version: EventVersion, Subject: subject, Level: level, Was: old.Level, Reason: reason, At: now}
	switch {
	case level == OK:
		delete(t.state, subject)
		if !known || old.Level == OK {
			return Event{}, false
		}
		ev.Kind, ev.Since = Cleared, old.Since
	case !known || level > old.Level:
		since := now
		if known {
			since = old.Since
		}
		t.state[subject] = state{Level: level, Since: since, Notified: now, Reason: reason}
		ev.Kind, ev.Since = Raised, since
	default:
		// Standing (or eased from ALERT to WARNING: not worth a mail).
		st := old
		st.Level, st.Reason = level, reason
		if repeat < 0 || now.Sub(old.Notified) < repeat {
			t.state[subject] = st
			return Event{}, false
		}
		st.Notified = now
		t.state[subject] = st
		ev.Kind, ev.Since = Repeated, old.Since
	}
	return ev, true
}

// Standing lists the conditions currently raised, worst first.
func (t *Tracker) Standing() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Event, 0, len(t.state))
	for s, st := range t.state {
		out = append(out, Event{Version: EventVersion, Subject: s, Level: st.Level, Reason: st.Reason, Since: st.Since, At: st.Notified})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Level != out[j].Level {
			return out[i].Level > out[j].Level
		}
		return out[i].Subject < out[j].Subject
	})
	return out
}

// Forget drops subject's state without an event (a removed client).
func (t *Tracker) Forget(subject string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.state, subject)
}

// MarshalJSON saves the tracker's state.
func (t *Tracker) MarshalJSON() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return json.Marshal(t.state)
}

// UnmarshalJSON restores what MarshalJSON saved.
func (t *Tracker) UnmarshalJSON(b []byte) error {
	m := map[string]state{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("alert: tracker state: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state = m
	return nil
}

// Retry makes subject's next Observe notify again at once (as Repeated)
// when it still stands: for a notice that could not be delivered, so the
// next check tries again instead of waiting out Repeat.
func (t *Tracker) Retry(subject string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.state[subject]; ok {
		st.Notified = time.Time{}
		t.state[subject] = st
	}
}
