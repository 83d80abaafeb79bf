package replicas_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server/state"
)

func TestAuditFilesFollowTheListing(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := func(n string) backend.Handle { return backend.Handle{Type: backend.Data, Name: n} }
	t1 := time.Unix(1000, 0)
	t2 := t1.Add(24 * time.Hour)
	rec, err := st.AuditFiles(ctx, "", "bob/laptop", []backend.Handle{h("a"), h("b")}, t1)
	if err != nil || len(rec) != 2 || !rec[h("a")].FirstSeen.Equal(t1) || !rec[h("a")].Audited.IsZero() {
		t.Fatalf("first listing: %v %v", rec, err)
	}
	if err := st.MarkAudited(ctx, "", "bob/laptop", []backend.Handle{h("a")}, t2); err != nil {
		t.Fatal(err)
	}
	// b was pruned, c added; another copy's records are apart.
	rec, err = st.AuditFiles(ctx, "", "bob/laptop", []backend.Handle{h("a"), h("c")}, t2)
	if err != nil || len(rec) != 2 || !rec[h("a")].Audited.Equal(t2) || !rec[h("a")].FirstSeen.Equal(t1) || !rec[h("c")].FirstSeen.Equal(t2) {
		t.Fatalf("second listing: %v %v", rec, err)
	}
	rec, err = st.AuditFiles(ctx, "disk", "bob/laptop", []backend.Handle{h("a")}, t2)
	if err != nil || !rec[h("a")].Audited.IsZero() {
		t.Fatalf("the replica's records: %v %v", rec, err)
	}
	rec, _ = st.AuditFiles(ctx, "", "bob/laptop", []backend.Handle{h("a"), h("b"), h("c")}, t2)
	if !rec[h("b")].FirstSeen.Equal(t2) {
		t.Fatalf("a file listed again after it was gone is new: %v", rec[h("b")])
	}
}
