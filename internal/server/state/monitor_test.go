package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) *State {
	t.Helper()
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func ptrTo[T any](v T) *T { return &v }

// UpdateClient changes only what it is given, keeps the history, and
// refuses thresholds that alert before they warn without changing
// anything.
func TestUpdateClient(t *testing.T) {
	ctx := context.Background()
	st := openTest(t)
	if err := st.AddClient(ctx, Client{Name: "alice", Hash: "h", AppendOnly: true, Created: time.Unix(100, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSnapshot(ctx, "alice", time.Unix(200, 0)); err != nil {
		t.Fatal(err)
	}
	const w, a = 24 * time.Hour, 28 * time.Hour
	err := st.UpdateClient(ctx, "alice", ClientChange{Quota: ptrTo(int64(4096)), MinInterval: ptrTo(time.Hour), WarnAfter: ptrTo(2 * time.Hour), AlertAfter: ptrTo(3 * time.Hour)}, w, a)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Client(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if c.Quota != 4096 || c.MinInterval != time.Hour || !c.AppendOnly || c.Snapshots != 1 || c.LastSnapshot.Unix() != 200 || c.Hash != "h" {
		t.Fatalf("after update: %+v", c)
	}
	th, err := st.Thresholds(ctx)
	if err != nil || th["alice"] != (Thresholds{2 * time.Hour, 3 * time.Hour}) {
		t.Fatalf("thresholds %v %v", th, err)
	}
	// Warning after the alert: refused, nothing changed (the quota
	// neither).
	err = st.UpdateClient(ctx, "alice", ClientChange{Quota: ptrTo(int64(1)), WarnAfter: ptrTo(5 * time.Hour)}, w, a)
	if !errors.Is(err, ErrBadThresholds) {
		t.Fatalf("warn after alert: %v", err)
	}
	// A default alert (28h) below a set warning (30h) is refused too.
	if err := st.UpdateClient(ctx, "alice", ClientChange{WarnAfter: ptrTo(30 * time.Hour), AlertAfter: ptrTo(time.Duration(0))}, w, a); !errors.Is(err, ErrBadThresholds) {
		t.Fatalf("warn after the default alert: %v", err)
	}
	if c, _ := st.Client(ctx, "alice"); c.Quota != 4096 {
		t.Fatalf("a refused update changed the quota to %d", c.Quota)
	}
	if err := st.UpdateClient(ctx, "alice", ClientChange{AppendOnly: ptrTo(false), Quota: ptrTo(int64(0))}, w, a); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Client(ctx, "alice"); c.AppendOnly || c.Quota != 0 {
		t.Fatalf("append-only/quota not changed: %+v", c)
	}
	if err := st.UpdateClient(ctx, "nobody", ClientChange{Quota: ptrTo(int64(1))}, w, a); !errors.Is(err, ErrNoClient) {
		t.Fatalf("unknown client: %v", err)
	}
}
