package forget_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/forget"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/retention"
)

// TestPolicyKeepsWritersLast: a policy that keeps nothing still keeps the
// last statement of each signer but the key applying it (here the owner),
// saying why; with a filter that hides a writer's last statement from the
// policy, it is still kept, and the snapshots the policy sees go.
func TestPolicyKeepsWritersLast(t *testing.T) {
	ctx := context.Background()
	owner := ownerRepo(t) // seven owner snapshots of host "h"
	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddWriter(ctx, wm, "w1"); err != nil {
		t.Fatal(err)
	}
	wk, err := wm.Parse()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := backend.LoadAll(ctx, owner.Backend(), backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := repository.OpenWithKeys(ctx, owner.Backend(), wk, "", cfg, repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		commitHost(t, writer, "w1", "writer "+string(rune('a'+i)), writer.Now())
	}

	l, err := forget.Load(ctx, owner, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	all := forget.WritersLast(l, nil) // as a server key applies a policy
	if len(all) != 2 {
		t.Fatalf("last statements of %d signers, want 2 (the owner and the writer): %v", len(all), all)
	}
	last := forget.WritersLast(l, owner.Keys().SignerID())
	if len(last) != 1 {
		t.Fatalf("last statements of %d signers but the owner, want 1 (the writer): %v", len(last), last)
	}
	for id := range last {
		if _, ok := all[id]; !ok || l.ByID[id].Meta.HostLabel != "w1" {
			t.Errorf("%s named the writer's last, but it is not", id[:8])
		}
	}
	for id := range all {
		st := l.ByID[id].File.Statement
		for _, o := range l.ByID {
			if o.File.Statement.Writer == st.Writer && o.File.Statement.Seq > st.Seq {
				t.Errorf("%s (seq %d) named last, but seq %d of the same signer is later", id[:8], st.Seq, o.File.Statement.Seq)
			}
		}
	}

	nothing := retention.Policy{Tags: []string{"never-set"}}
	kept := func(ds []retention.Decision) []string {
		var ids []string
		for _, d := range ds {
			if d.Keep {
				ids = append(ids, d.Snapshot.ID)
				if !slices.Equal(d.Reasons, []string{forget.LastStatementReason}) {
					t.Errorf("%s kept for %q, want %q", d.Snapshot.ID[:8], d.Reasons, forget.LastStatementReason)
				}
			}
		}
		slices.Sort(ids)
		return ids
	}
	gb, _ := retention.ParseGroupBy("host,paths")
	ds, err := forget.Decide(ctx, owner, l, forget.Policy{Keep: nothing, GroupBy: gb})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, 0, len(last))
	for id := range last {
		want = append(want, id)
	}
	slices.Sort(want)
	if got := kept(ds); !slices.Equal(got, want) || len(ds) != 10 {
		t.Errorf("kept %v of %d, want exactly the last statements %v of 10", got, len(ds), want)
	}

	// The policy sees only the writer's two older snapshots: it keeps
	// none, and the writer's last, which it does not see, is not decided.
	sub := l.Only(func(s *repository.Snapshot) bool {
		_, isLast := last[s.ID.String()]
		return !isLast && s.Meta.HostLabel == "w1"
	})
	if len(sub.ByID) != len(l.ByID) || len(l.Snapshots) != 10 {
		t.Fatalf("Only changed what was loaded: %d of %d by ID, %d snapshots", len(sub.ByID), len(l.ByID), len(l.Snapshots))
	}
	ds, err = forget.Decide(ctx, owner, sub, forget.Policy{Keep: nothing, GroupBy: gb})
	if err != nil {
		t.Fatal(err)
	}
	if got := kept(ds); len(got) != 0 || len(ds) != 2 {
		t.Errorf("a filtered policy kept %v of %d, want none of 2", got, len(ds))
	}
}
