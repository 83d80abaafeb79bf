package replicas_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

func TestReplicationRecords(t *testing.T) {
	ctx := context.Background()
	s, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []string{"bob", "bo"} {
		if err := s.AddClient(ctx, state.Client{Name: c, Hash: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	all := replicas.Destination{Name: "all", Location: "/r1", Concurrency: 4, ReconcileEvery: time.Hour}
	some := replicas.Destination{Name: "some", Location: "/r2", Clients: []string{"bob", "carol"}, Bandwidth: 1 << 20, Concurrency: 2, ReconcileEvery: time.Minute}
	for _, d := range []replicas.Destination{all, some} {
		if err := s.AddDestination(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddDestination(ctx, all); !errors.Is(err, replicas.ErrDestinationExists) {
		t.Fatalf("a second destination of one name: %v", err)
	}
	got, err := s.Destination(ctx, "some")
	if err != nil || got.Bandwidth != 1<<20 || len(got.Clients) != 2 || !got.Covers("carol") || got.Covers("bo") {
		t.Fatalf("destination: %+v %v", got, err)
	}

	// A commit of "bo" is pending on "all" only: "some" names bob, not bo.
	t1 := time.Unix(1000, 0)
	if err := s.NoteCommit(ctx, "bo", "bo/x", "s1", t1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.ReplicaStatusOf(ctx, "some", "bo/x"); ok {
		t.Fatal("a commit of bo is pending on a destination of bob and carol")
	}
	if r, ok, _ := s.ReplicaStatusOf(ctx, "all", "bo/x"); !ok || !r.PendingSince.Equal(t1) {
		t.Fatalf("pending on all: %+v %v", r, ok)
	}
	// A later commit keeps the oldest pending time.
	if err := s.NoteCommit(ctx, "bo", "bo/x", "s2", t1.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := s.ReplicaStatusOf(ctx, "all", "bo/x"); !r.PendingSince.Equal(t1) {
		t.Fatalf("pending after a second commit: %v", r.PendingSince)
	}
	// A failed pass counts and keeps it; a pass that ended keeps only
	// what it may have missed.
	if err := s.PassFailed(ctx, "all", "bo/x", t1.Add(2*time.Minute), "boom", 42, t1.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r, _, _ := s.ReplicaStatusOf(ctx, "all", "bo/x")
	if r.Failures != 1 || r.LastError != "boom" || r.LagBytes != 42 || !r.PendingSince.Equal(t1) {
		t.Fatalf("after a failed pass: %+v", r)
	}
	missed := t1.Add(3 * time.Minute)
	if err := s.PassSucceeded(ctx, "all", "bo/x", t1.Add(4*time.Minute), missed, "s2", t1.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r, _, _ = s.ReplicaStatusOf(ctx, "all", "bo/x")
	if r.Failures != 0 || r.LastError != "" || r.LagBytes != 0 || !r.PendingSince.Equal(missed) || r.Snapshot != "s2" {
		t.Fatalf("after a pass: %+v", r)
	}

	// The ledger: copied files, and those the destination's retention dropped.
	h := backend.Handle{Type: backend.Data, Name: "ab"}
	if err := s.RecordReplicated(ctx, "all", "bo/x", h); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordReplicated(ctx, "all", "bo/x", h); err != nil {
		t.Fatalf("recording a file twice: %v", err)
	}
	if n, _ := s.LedgerSize(ctx, "all", "bo/x"); n != 1 {
		t.Fatalf("ledger size %d", n)
	}
	if d, err := s.ReplicaDropped(ctx, "all", "bo/x"); err != nil || len(d) != 0 {
		t.Fatalf("dropped: %v %v", d, err)
	}

	// Removing a destination removes its status and ledger.
	if err := s.RemoveDestination(ctx, "all"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDestination(ctx, "all"); !errors.Is(err, replicas.ErrNoDestination) {
		t.Fatalf("removing twice: %v", err)
	}
	if st, _ := s.ReplicaStatuses(ctx); len(st) != 0 {
		t.Fatalf("status after remove: %+v", st)
	}
	if n, _ := s.LedgerSize(ctx, "all", "bo/x"); n != 0 {
		t.Fatalf("ledger after remove: %d", n)
	}
}

func TestDestinationRetention(t *testing.T) {
	ctx := context.Background()
	s, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := policy.DefaultPolicy()
	p.Keep.Daily, p.Within = 3, 48*time.Hour
	if err := s.AddDestination(ctx, replicas.Destination{Name: "usb", Location: "/mnt/usb", Concurrency: 4, ReconcileEvery: time.Minute, Created: time.Now(), Retention: &p}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Destination(ctx, "usb")
	if err != nil || d.Retention == nil || d.Retention.Keep.Daily != 3 || d.Retention.Within != 48*time.Hour || d.Retention.Every != policy.DefaultEvery {
		t.Fatalf("stored retention: %+v, %v", d.Retention, err)
	}
	bad := policy.DefaultPolicy() // no rule: it would forget everything
	if err := s.SetDestinationRetention(ctx, "usb", &bad); err == nil {
		t.Fatal("a policy without rules was accepted")
	}
	if err := s.SetDestinationRetention(ctx, "nope", nil); !errors.Is(err, replicas.ErrNoDestination) {
		t.Fatalf("unknown destination: %v", err)
	}
	if err := s.SetDestinationRetention(ctx, "usb", nil); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Destination(ctx, "usb"); err != nil || d.Retention != nil {
		t.Fatalf("after dropping the policy: %+v, %v", d.Retention, err)
	}
}

// TestReplicaTenantsFingerprintsAndRetentionRuns: a replica client, a
// destination's pinned fingerprint and a replica's last retention run
// are stored and read back; a later pass leaves the retention run be.
func TestReplicaTenantsFingerprintsAndRetentionRuns(t *testing.T) {
	ctx := context.Background()
	s, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddClient(ctx, state.Client{Name: "primary", Hash: "x", AppendOnly: true, Replica: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddClient(ctx, state.Client{Name: "bob", Hash: "x"}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Client(ctx, "primary"); err != nil || !c.Replica {
		t.Fatalf("replica client: %+v %v", c, err)
	}
	if c, err := s.Client(ctx, "bob"); err != nil || c.Replica {
		t.Fatalf("ordinary client: %+v %v", c, err)
	}
	d := replicas.Destination{Name: "far", Location: "rest:https://p@far/p", Concurrency: 1, ReconcileEvery: time.Hour, ServerFingerprint: "SHA256:ab-cd"}
	if err := s.AddDestination(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Destination(ctx, "far"); err != nil || got.ServerFingerprint != d.ServerFingerprint {
		t.Fatalf("destination: %+v %v", got, err)
	}
	run := replicas.RetentionRun{At: time.Unix(1000, 0), Kept: 3, Removed: 2, Packs: 4, Freed: 4096}
	if err := s.RecordRetention(ctx, "far", "bob/laptop", run); err != nil {
		t.Fatal(err)
	}
	if err := s.PassSucceeded(ctx, "far", "bob/laptop", time.Unix(1001, 0), time.Time{}, "snap", time.Unix(999, 0)); err != nil {
		t.Fatal(err)
	}
	r, ok, err := s.ReplicaStatusOf(ctx, "far", "bob/laptop")
	if err != nil || !ok || r.Retention != run || r.Snapshot != "snap" {
		t.Fatalf("status: %+v %v %v", r, ok, err)
	}
	run2 := replicas.RetentionRun{At: time.Unix(2000, 0), Kept: 3, Error: "prune: boom"}
	if err := s.RecordRetention(ctx, "far", "bob/laptop", run2); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := s.ReplicaStatusOf(ctx, "far", "bob/laptop"); r.Retention != run2 {
		t.Fatalf("second run: %+v", r.Retention)
	}
}
