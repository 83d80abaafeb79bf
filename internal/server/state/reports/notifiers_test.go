package reports_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

func TestNotifiers(t *testing.T) {
	ctx := context.Background()
	st := openTest(t)
	n := reports.Notifier{Name: "hook", Kind: reports.NotifierWebhook, Config: `{"webhook":{}}`, Repeat: time.Hour, Created: time.Unix(5, 0)}
	if err := st.AddNotifier(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := st.AddNotifier(ctx, n); !errors.Is(err, reports.ErrNotifierExists) {
		t.Fatalf("second add: %v", err)
	}
	if err := st.SetNotifierHealth(ctx, "hook", `{"failing":true}`); err != nil {
		t.Fatal(err)
	}
	if err := st.SetNotifierHealth(ctx, "gone", `{}`); err != nil {
		t.Fatalf("health of a removed notifier: %v", err)
	}
	got, err := st.Notifier(ctx, "hook")
	if err != nil || got.Repeat != time.Hour || got.Health != `{"failing":true}` || got.Kind != reports.NotifierWebhook || got.Created.Unix() != 5 {
		t.Fatalf("notifier %+v %v", got, err)
	}
	if err := st.RemoveNotifier(ctx, "hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Notifier(ctx, "hook"); !errors.Is(err, reports.ErrNoNotifier) {
		t.Fatalf("removed notifier: %v", err)
	}
	if err := st.RemoveNotifier(ctx, "hook"); !errors.Is(err, reports.ErrNoNotifier) {
		t.Fatalf("remove twice: %v", err)
	}
	if err := st.SetAlerts(ctx, `{"open":{}}`); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Alerts(ctx); err != nil || v != `{"open":{}}` {
		t.Fatalf("alerts %q %v", v, err)
	}
}
