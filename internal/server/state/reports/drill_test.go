package reports_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

func TestDrillsAndHistory(t *testing.T) {
	ctx := context.Background()
	st := openTest(t)
	if err := st.AddClient(ctx, state.Client{Name: "alice", Hash: "h", Created: time.Unix(100, 0)}); err != nil {
		t.Fatal(err)
	}
	d := reports.Drill{Client: "alice", Repo: "alice/main", Snapshot: "ab", At: time.Unix(300, 0), Received: time.Unix(301, 0), Files: 2, Bytes: 10, Total: 5, Result: "ok"}
	if err := st.RecordDrill(ctx, d); err != nil {
		t.Fatal(err)
	}
	d.Snapshot, d.At = "cd", time.Unix(400, 0)
	if err := st.RecordDrill(ctx, d); err != nil {
		t.Fatal(err)
	}
	ds, err := st.Drills(ctx)
	if err != nil || len(ds) != 1 || ds[0].Snapshot != "cd" || ds[0].At.Unix() != 400 || ds[0].Files != 2 {
		t.Fatalf("drills %+v %v: want the last one only", ds, err)
	}
	if err := st.SetDrillAfter(ctx, "alice", 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDrillAfter(ctx, "bob", time.Hour); !errors.Is(err, state.ErrNoClient) {
		t.Fatalf("drill-after of a missing client: %v", err)
	}
	if m, err := st.DrillAfter(ctx); err != nil || m["alice"] != 48*time.Hour {
		t.Fatalf("drill-after %v %v", m, err)
	}
	for i, p := range []reports.Sample{{At: time.Unix(1, 0), Snapshots: 1, Stored: 10}, {At: time.Unix(2, 0), Snapshots: 1, Stored: 10}, {At: time.Unix(3, 0), Snapshots: 2, Stored: 30}} {
		if err := st.NoteHistory(ctx, "alice", p); err != nil {
			t.Fatal(i, err)
		}
	}
	h, err := st.History(ctx, "alice", 10)
	if err != nil || len(h) != 2 || h[0].At.Unix() != 1 || h[1].Stored != 30 {
		t.Fatalf("history %+v %v: want 2 samples (the repeat dropped), oldest first", h, err)
	}
	if h, _ := st.History(ctx, "alice", 1); len(h) != 1 || h[0].Stored != 30 {
		t.Fatalf("last sample %+v", h)
	}
}

func openTest(t *testing.T) *state.State {
	t.Helper()
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
