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
// last statement of each signer, the owner's and a writer's, saying why;
// with a filter that hides a signer's last statement from the policy, the
// last among the snapshots it does see goes (it is not the signer's last).
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
	last := forget.WritersLast(l)
	if len(last) != 2 {
		t.Fatalf("last statements of %d signers, want 2 (the owner and the writer): %v", len(last), last)
	}
	for id := range last {
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

	// The policy sees only the owner's six older snapshots: it keeps none.
	sub := *l
	sub.Snapshots = slices.DeleteFunc(slices.Clone(l.Snapshots), func(s retention.Snapshot) bool {
		_, isLast := last[s.ID]
		return isLast || s.Host != "h"
	})
	ds, err = forget.Decide(ctx, owner, &sub, forget.Policy{Keep: nothing, GroupBy: gb})
	if err != nil {
		t.Fatal(err)
	}
	if got := kept(ds); len(got) != 0 || len(ds) != 6 {
		t.Errorf("a filtered policy kept %v of %d, want none of 6", got, len(ds))
	}

	// Importance 1 per group keeps the newest of each group, the last
	// statements here, for their own reason.
	ds, err = forget.Decide(ctx, owner, l, forget.Policy{Importance: 1, GroupBy: gb})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range ds {
		if d.Keep {
			n++
			if _, ok := last[d.Snapshot.ID]; !ok {
				t.Errorf("importance 1 kept %s, not a last statement", d.Snapshot.ID[:8])
			}
		}
	}
	if n != 2 {
		t.Errorf("importance 1 kept %d, want 2", n)
	}
}
