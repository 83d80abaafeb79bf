package alert

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)

func TestAge(t *testing.T) {
	for _, tt := range []struct {
		last, enrolled time.Time
		now            time.Time
		want           Level
		reason         string
	}{
		{t0, t0, t0.Add(23 * time.Hour), OK, "last backup 23h0m0s ago"},
		{t0, t0, t0.Add(25 * time.Hour), Warning, "last backup 25h0m0s ago"},
		{t0, t0, t0.Add(29 * time.Hour), Alert, "last backup 29h0m0s ago"},
		{time.Time{}, t0, t0.Add(time.Hour), OK, "never backed up; enrolled 1h0m0s ago"},
		{time.Time{}, t0, t0.Add(30 * time.Hour), Alert, "never backed up"},
	} {
		got, reason := Age(tt.last, tt.enrolled, tt.now, 0, 0)
		if got != tt.want || !strings.Contains(reason, tt.reason) {
			t.Errorf("Age(%v, %v, %v) = %v %q, want %v %q", tt.last, tt.enrolled, tt.now, got, reason, tt.want, tt.reason)
		}
	}
	if got, _ := Age(t0, t0, t0.Add(2*time.Hour), time.Hour, 3*time.Hour); got != Warning {
		t.Errorf("per-client thresholds ignored: %v", got)
	}
}

// A client stops backing up: WARNING once, ALERT once, a repeat every
// Repeat while it stands, then one recovery notice.
func TestTrackerNotifiesOnceRepeatsAndRecovers(t *testing.T) {
	tr := &Tracker{Repeat: 6 * time.Hour}
	type step struct {
		at   time.Duration
		lvl  Level
		want Kind // "" = no event
	}
	steps := []step{
		{0, OK, ""},
		{25 * time.Hour, Warning, Raised},
		{26 * time.Hour, Warning, ""},
		{29 * time.Hour, Alert, Raised},
		{30 * time.Hour, Alert, ""},
		{34 * time.Hour, Alert, ""},
		{35 * time.Hour, Alert, Repeated},
		{36 * time.Hour, Alert, ""},
		{41 * time.Hour, Alert, Repeated},
		{42 * time.Hour, OK, Cleared},
		{43 * time.Hour, OK, ""},
	}
	var since time.Time
	for _, s := range steps {
		ev, ok := tr.Observe("client alice", s.lvl, "reason", t0.Add(s.at))
		if ok != (s.want != "") || ev.Kind != s.want {
			t.Fatalf("at +%v level %v: event %v %q, want %q", s.at, s.lvl, ok, ev.Kind, s.want)
		}
		if ok && s.want == Raised && since.IsZero() {
			since = ev.Since
		}
		if ok && !ev.Since.Equal(since) {
			t.Fatalf("at +%v: since %v, want the first raise %v", s.at, ev.Since, since)
		}
	}
	if len(tr.Standing()) != 0 {
		t.Fatal("a cleared condition still stands")
	}
}

// A restart (state saved and loaded) neither repeats early nor forgets.
func TestTrackerStateSurvivesRestart(t *testing.T) {
	tr := &Tracker{Repeat: 6 * time.Hour}
	if _, ok := tr.Observe("client bob", Alert, "old", t0); !ok {
		t.Fatal("no raise")
	}
	saved, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	var again Tracker
	again.Repeat = 6 * time.Hour
	if err := json.Unmarshal(saved, &again); err != nil {
		t.Fatal(err)
	}
	if _, ok := again.Observe("client bob", Alert, "old", t0.Add(time.Hour)); ok {
		t.Fatal("a restart re-raised a standing alert")
	}
	if ev, ok := again.Observe("client bob", OK, "fine", t0.Add(2*time.Hour)); !ok || ev.Kind != Cleared || ev.Was != Alert {
		t.Fatalf("recovery after restart: %v %+v", ok, ev)
	}
	if err := json.Unmarshal([]byte(`{"x":{"level":"BAD"}}`), &again); err == nil {
		t.Fatal("a corrupt state was accepted")
	}
}

func TestStandingWorstFirst(t *testing.T) {
	tr := &Tracker{}
	tr.Observe("client b", Warning, "w", t0)
	tr.Observe("client a", Alert, "a", t0)
	tr.Observe("client c", Warning, "w", t0)
	got := tr.Standing()
	if len(got) != 3 || got[0].Subject != "client a" || got[1].Subject != "client b" || got[2].Subject != "client c" {
		t.Fatalf("standing: %+v", got)
	}
	tr.Forget("client a")
	if len(tr.Standing()) != 2 {
		t.Fatal("Forget")
	}
}

// A notice that could not be delivered is tried again at the next
// observation, not a Repeat later; one that was delivered is not.
func TestTrackerRetry(t *testing.T) {
	tr := &Tracker{Repeat: 6 * time.Hour}
	if _, ok := tr.Observe("client alice", Alert, "r", t0); !ok {
		t.Fatal("no raise")
	}
	if _, ok := tr.Observe("client alice", Alert, "r", t0.Add(time.Minute)); ok {
		t.Fatal("a delivered notice repeated within Repeat")
	}
	tr.Retry("client alice")
	tr.Retry("client nobody") // no state: nothing to do
	ev, ok := tr.Observe("client alice", Alert, "r", t0.Add(2*time.Minute))
	if !ok || ev.Kind != Repeated || !ev.Since.Equal(t0) {
		t.Fatalf("after Retry: %+v %v, want a repeat since %v", ev, ok, t0)
	}
	if _, ok := tr.Observe("client alice", Alert, "r", t0.Add(3*time.Minute)); ok {
		t.Fatal("repeated again right after the retry")
	}
	if len(tr.Standing()) != 1 {
		t.Fatalf("standing %v", tr.Standing())
	}
}
