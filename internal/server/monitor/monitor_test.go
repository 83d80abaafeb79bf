package monitor

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

var t0 = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)

// receiver is a webhook endpoint that records events, or fails with
// status fail when it is not zero.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []alert.Event
	fail   int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail != 0 {
			http.Error(w, "down", r.fail)
			return
		}
		var ev alert.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		r.events = append(r.events, ev)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) take() []alert.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func setup(t *testing.T) (*state.State, *time.Time) {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.AddClient(ctx, state.Client{Name: "alice", Hash: "h", Created: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSnapshot(ctx, "alice", t0); err != nil {
		t.Fatal(err)
	}
	now := t0
	return st, &now
}

func addHook(t *testing.T, st *state.State, name, url string, repeat time.Duration) {
	t.Helper()
	cfg := Config{Webhook: &WebhookConfig{URL: url, Secret: hex.EncodeToString([]byte("0123456789abcdef"))}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	if err := st.AddNotifier(context.Background(), reports.Notifier{Name: name, Kind: cfg.Kind(), Config: string(b), Repeat: repeat, Created: t0}); err != nil {
		t.Fatal(err)
	}
}

func kinds(evs []alert.Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, string(ev.Kind)+" "+ev.Level.String())
	}
	return strings.Join(s, ", ")
}

// A client stops backing up: WARNING then ALERT, a repeat at the
// notifier's interval, and the recovery once it backs up again; a restart
// in the middle repeats nothing.
func TestWatcherNotifiesOnceRepeatsAndRecovers(t *testing.T) {
	ctx := context.Background()
	st, now := setup(t)
	rec := newReceiver(t)
	addHook(t, st, "hook", rec.srv.URL, 2*time.Hour)
	newWatcher := func() *Watcher {
		return &Watcher{State: st, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return *now }, Server: "test"}
	}
	w := newWatcher()
	for _, step := range []struct {
		at   time.Duration
		want string
	}{
		{time.Hour, ""},
		{25 * time.Hour, "raised WARNING"},
		{26 * time.Hour, ""},
		{29 * time.Hour, "raised ALERT"},
		{30 * time.Hour, ""},
		{31*time.Hour + time.Minute, "repeated ALERT"},
		{32 * time.Hour, ""},
	} {
		*now = t0.Add(step.at)
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if got := kinds(rec.take()); got != step.want {
			t.Fatalf("at +%v: got %q, want %q", step.at, got, step.want)
		}
		if step.at == 30*time.Hour {
			w = newWatcher() // a restart: the state database remembers
		}
	}
	r, err := Evaluate(ctx, st, nil, *now, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Clients) != 1 || r.Clients[0].Level != alert.Alert || len(r.Clients[0].Alerts) != 1 || !r.Clients[0].Alerts[0].Since.Equal(t0.Add(25*time.Hour)) {
		t.Fatalf("report: %+v", r.Clients)
	}
	if len(r.Notifiers) != 1 || r.Notifiers[0].Sent != 3 || r.Notifiers[0].Failing {
		t.Fatalf("notifiers: %+v", r.Notifiers)
	}
	if err := st.RecordSnapshot(ctx, "alice", t0.Add(32*time.Hour)); err != nil {
		t.Fatal(err)
	}
	*now = t0.Add(32*time.Hour + time.Minute)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	evs := rec.take()
	if kinds(evs) != "cleared OK" || evs[0].Was != alert.Alert || evs[0].Server != "test" || evs[0].Subject != "client alice" {
		t.Fatalf("recovery: %+v", evs)
	}
	if r, _ := Evaluate(ctx, st, nil, *now, ""); len(r.Alerts) != 0 || r.Clients[0].Level != alert.OK {
		t.Fatalf("after recovery: %+v", r)
	}
}

// A notifier that cannot deliver shows as failing (status and metrics)
// and gets the notice at the next check, not a repeat interval later; a
// notifier added while an alert stands hears of it.
func TestWatcherFailingNotifier(t *testing.T) {
	ctx := context.Background()
	st, now := setup(t)
	bad := newReceiver(t)
	bad.fail = http.StatusBadGateway
	addHook(t, st, "bad", bad.srv.URL, 6*time.Hour)
	w := &Watcher{State: st, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return *now }}
	*now = t0.Add(30 * time.Hour)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	ns, err := Notifiers(ctx, st)
	if err != nil || len(ns) != 1 || !ns[0].Failing || !strings.Contains(ns[0].LastError, "502") || ns[0].Failed != 1 {
		t.Fatalf("failing notifier: %+v %v", ns, err)
	}
	c := &Collector{State: st, Now: func() time.Time { return *now }, Log: slog.New(slog.DiscardHandler)}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[f.GetName()+"/"+m.GetLabel()[0].GetValue()] = v
		}
	}
	for k, v := range map[string]float64{"cairn_server_client_backup_state/alice": 2, "cairn_server_notifier_failing/bad": 1, "cairn_server_notifier_failures_total/bad": 1} {
		if got[k] != v {
			t.Errorf("metric %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	good := newReceiver(t)
	addHook(t, st, "good", good.srv.URL, 6*time.Hour)
	bad.mu.Lock()
	bad.fail = 0
	bad.mu.Unlock()
	*now = now.Add(time.Minute)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kinds(bad.take()); got != "repeated ALERT" {
		t.Fatalf("the failed notice was not retried: %q", got)
	}
	if got := kinds(good.take()); got != "raised ALERT" {
		t.Fatalf("a new notifier: %q", got)
	}
	if ns, _ := Notifiers(ctx, st); ns[0].Failing || ns[0].Sent != 1 || ns[0].Failed != 1 {
		t.Fatalf("recovered notifier: %+v", ns[0])
	}
	// A removed notifier is dropped; a disabled client's alert ends
	// without a notice.
	if err := st.RemoveNotifier(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(7 * time.Hour)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kinds(good.take()); got != "" {
		t.Fatalf("disabled client: %q", got)
	}
	if r, _ := Evaluate(ctx, st, nil, *now, ""); len(r.Alerts) != 0 || r.Clients[0].State != "disabled" || len(r.Notifiers) != 1 {
		t.Fatalf("report %+v", r)
	}
}

func TestEvaluateNeverAndOnly(t *testing.T) {
	ctx := context.Background()
	st, _ := setup(t)
	if err := st.AddClient(ctx, state.Client{Name: "bob", Hash: "h", Created: t0, Quota: 1000}); err != nil {
		t.Fatal(err)
	}
	stored := func(string) (int64, error) { return 250, nil }
	r, err := Evaluate(ctx, st, stored, t0.Add(25*time.Hour), "bob")
	if err != nil {
		t.Fatal(err)
	}
	b := r.Clients[0]
	if len(r.Clients) != 1 || b.Name != "bob" || !b.Never || b.State != "never backed up" || b.Level != alert.Warning || b.QuotaUsed != 0.25 || b.AgeSeconds != 25*3600 {
		t.Fatalf("bob: %+v", b)
	}
	if _, err := Evaluate(ctx, st, nil, t0, "carol"); err == nil {
		t.Fatal("unknown client accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	secret := hex.EncodeToString([]byte("0123456789abcdef"))
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "either"},
		{Config{Webhook: &WebhookConfig{URL: "ftp://x/", Secret: secret}}, "http"},
		{Config{Webhook: &WebhookConfig{URL: "https://x/", Secret: "ab"}}, "secret"},
		{Config{SMTP: &SMTPConfig{Addr: "mail", From: "a@b", To: []string{"c@d"}}}, "HOST:PORT"},
		{Config{SMTP: &SMTPConfig{Addr: "mail:25", From: "a@b", To: []string{"c@d\r\nBcc: x@y"}}}, "recipient"},
		{Config{SMTP: &SMTPConfig{Addr: "mail:25", From: "a@b", To: []string{"c@d"}, User: "u"}}, "password"},
		{Config{SMTP: &SMTPConfig{Addr: "mail:25", From: "a@b", To: []string{"c@d"}}}, ""},
	} {
		err := c.cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if got := (Config{Webhook: &WebhookConfig{URL: "https://u:p@h/x?token=1"}}).Target(); got != "https://h/x" {
		t.Errorf("target %q", got)
	}
}

// `notify test` in another process records a delivery; the running
// watcher neither overwrites it with its older view nor loses its counts.
func TestWatcherKeepsHealthFromNotifyTest(t *testing.T) {
	ctx := context.Background()
	st, now := setup(t)
	rec := newReceiver(t)
	rec.fail = http.StatusServiceUnavailable
	addHook(t, st, "hook", rec.srv.URL, time.Hour)
	w := &Watcher{State: st, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return *now }}
	*now = t0.Add(30 * time.Hour)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if ns, _ := Notifiers(ctx, st); !ns[0].Failing {
		t.Fatalf("not failing: %+v", ns[0])
	}
	rec.mu.Lock()
	rec.fail = 0
	rec.mu.Unlock()
	if err := Test(ctx, st, "hook", "test", *now); err != nil {
		t.Fatal(err)
	}
	// The watcher retries its undelivered ALERT at the next check: two
	// deliveries after the failure.
	*now = now.Add(time.Minute)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Minute)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	ns, _ := Notifiers(ctx, st)
	if ns[0].Failing || ns[0].Sent != 2 || ns[0].Failed != 1 {
		t.Fatalf("health after notify test and a retry: %+v", ns[0])
	}
	if got := kinds(rec.take()); got != "test OK, repeated ALERT" {
		t.Fatalf("received %q", got)
	}
	if err := Test(ctx, st, "nobody", "test", *now); !errors.Is(err, reports.ErrNoNotifier) {
		t.Fatalf("test of an unknown notifier: %v", err)
	}
}
