package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestRunNowRequests(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddClient(ctx, Client{Name: "alice", Hash: "h", Created: time.Unix(100, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := st.RequestRunNow(ctx, "nobody", time.Unix(1000, 0)); !errors.Is(err, ErrNoClient) {
		t.Fatalf("a request for no client: %v", err)
	}
	if at, err := st.RunNow(ctx, "alice"); err != nil || !at.IsZero() {
		t.Fatalf("before any request: %v %v", at, err)
	}
	// A second request while one is pending keeps the first time.
	for _, s := range []int64{1000, 2000} {
		if err := st.RequestRunNow(ctx, "alice", time.Unix(s, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if at, _ := st.RunNow(ctx, "alice"); !at.Equal(time.Unix(1000, 0)) {
		t.Fatalf("pending since %v", at)
	}
	// A report of a run before the request leaves it; a later one clears it.
	st.ClearRunNow(ctx, "alice", time.Unix(999, 0))
	if at, _ := st.RunNow(ctx, "alice"); at.IsZero() {
		t.Fatal("cleared by an earlier report")
	}
	st.ClearRunNow(ctx, "alice", time.Unix(1500, 0))
	if at, _ := st.RunNow(ctx, "alice"); !at.IsZero() {
		t.Fatalf("still pending since %v", at)
	}

	if _, ok, err := st.Pacing(ctx); ok || err != nil {
		t.Fatalf("pacing before any record: %v %v", ok, err)
	}
	want := Pacing{Limit: 4, Running: 2, Queued: []string{"alice", "bob"}, Peak: 4, PeakAt: time.Unix(50, 0).UTC(), Started: time.Unix(10, 0).UTC(), Updated: time.Unix(60, 0).UTC()}
	if err := st.SetPacing(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := st.Pacing(ctx)
	if err != nil || !ok || got.Limit != 4 || got.Running != 2 || len(got.Queued) != 2 || got.Queued[1] != "bob" || !got.PeakAt.Equal(want.PeakAt) || !got.Updated.Equal(want.Updated) {
		t.Fatalf("pacing %+v %v %v", got, ok, err)
	}
}
