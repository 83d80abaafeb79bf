package repository_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func TestPolicyTime(t *testing.T) {
	claim := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	future := claim.AddDate(5, 0, 0)
	stored := claim.Add(time.Minute)
	receipt := claim.Add(2 * time.Minute)
	cases := []struct {
		name                  string
		claimed, stored, rcpt time.Time
		owner, server         bool
		want                  time.Time
		suspect               bool
	}{
		{"receipt wins for a writer", future, stored, receipt, false, true, receipt, false},
		{"receipt wins for the owner", future, stored, receipt, true, true, receipt, false},
		{"owner without receipt: its claim", future, stored, time.Time{}, true, true, future, false},
		{"writer, direct: a future claim is capped by storage", future, stored, time.Time{}, false, false, stored, false},
		{"writer, direct: a backdated claim only ages itself", claim, stored, time.Time{}, false, false, claim, false},
		{"writer, server mode, no receipt: suspect", claim, stored, time.Time{}, false, true, claim, true},
		{"writer, no storage time: suspect", future, time.Time{}, time.Time{}, false, false, future, true},
	}
	for _, c := range cases {
		got, sus := repository.PolicyTime(c.claimed, c.stored, c.rcpt, c.owner, c.server)
		if !got.Equal(c.want) || sus != c.suspect {
			t.Errorf("%s: %v suspect %v, want %v suspect %v", c.name, got, sus, c.want, c.suspect)
		}
	}
}

func TestLatest(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id byte, hours int, host string, st repository.Standing) *repository.Snapshot {
		st.Time, st.Judged = t0.Add(time.Duration(hours)*time.Hour), true
		return &repository.Snapshot{ID: blob.ID{id}, Meta: &snapshot.MetaHeader{HostLabel: host}, Standing: st}
	}
	owner := repository.Standing{Signer: repository.Signer{Kind: repository.SignerOwner}}
	impostor := repository.Standing{Impostor: true}
	suspect := repository.Standing{Suspect: true}
	onHost := func(h string) func(*repository.Snapshot) bool {
		return func(s *repository.Snapshot) bool { return s.Meta.HostLabel == h }
	}
	cases := []struct {
		name    string
		snaps   []*repository.Snapshot
		match   func(*repository.Snapshot) bool
		want    byte // 0: none
		skipped []byte
	}{
		{"newest policy time", []*repository.Snapshot{mk(1, 1, "h", owner), mk(2, 3, "h", owner), mk(3, 2, "h", owner)}, nil, 2, nil},
		{"impostor passed over", []*repository.Snapshot{mk(1, 1, "h", owner), mk(2, 9, "h", impostor)}, onHost("h"), 1, []byte{2}},
		{"suspect passed over", []*repository.Snapshot{mk(1, 1, "h", owner), mk(2, 9, "h", suspect)}, onHost("h"), 1, []byte{2}},
		{"only impostors", []*repository.Snapshot{mk(2, 9, "h", impostor), mk(3, 10, "h", impostor)}, onHost("h"), 0, []byte{3, 2}},
		{"filter first", []*repository.Snapshot{mk(1, 1, "h", owner), mk(2, 5, "g", owner)}, onHost("h"), 1, nil},
		{"tie broken by ID", []*repository.Snapshot{mk(4, 1, "h", owner), mk(5, 1, "h", owner)}, nil, 5, nil},
		{"unjudged never picked", []*repository.Snapshot{{ID: blob.ID{6}, Meta: &snapshot.MetaHeader{HostLabel: "h"}}}, nil, 0, []byte{6}},
	}
	for _, c := range cases {
		got, skipped := repository.Latest(c.snaps, c.match)
		if (got == nil) != (c.want == 0) || (got != nil && got.ID[0] != c.want) {
			t.Errorf("%s: picked %v, want %d", c.name, got, c.want)
		}
		var sk []byte
		for _, s := range skipped {
			sk = append(sk, s.ID[0])
		}
		if string(sk) != string(c.skipped) {
			t.Errorf("%s: skipped %v, want %v", c.name, sk, c.skipped)
		}
	}
}

// commitAs commits a one-file snapshot with host label host, claiming time at.
func commitAs(t *testing.T, repo *repository.Repository, content, host string, at time.Time) *repository.Snapshot {
	t.Helper()
	ctx := context.Background()
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, _, err := s.SaveBlob(ctx, blob.Data, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	tree := &snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, Mode: 0o600, Size: uint64(len(content)), Content: []blob.ID{id}}}}
	tb, _ := tree.Encode()
	root, _, err := s.SaveBlob(ctx, blob.Tree, tb)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Commit(ctx, repository.CommitInput{Root: root, Refs: []snapshot.Ref{{Type: blob.Data, ID: id}, {Type: blob.Tree, ID: root}},
		Meta: snapshot.MetaHeader{HostLabel: host}, Owner: snapshot.OwnerHeader{Paths: []string{"/p"}, Hostname: host}, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestJudgeImpostor: in direct mode a writer bound to "web-1" stores a
// snapshot labelled with the owner's host and a time years ahead. The
// owner's view names each signer, marks the impostor, orders by policy
// time, and "latest" for the owner's host is the owner's newest snapshot.
func TestJudgeImpostor(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	be := mem.NewWithClock(clock)
	opts := repository.Options{KDF: &quickKDF, CacheDir: t.TempDir(), Now: clock}
	owner, err := repository.Init(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	wm, _ := owner.NewKeyMaterial(crypto.RoleWriter)
	if err := owner.AddWriter(ctx, wm, "web", "web-1"); err != nil {
		t.Fatal(err)
	}
	cfg, _ := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	wk, _ := wm.Parse()
	w, err := repository.OpenWithKeys(ctx, be, wk, "", cfg, repository.Options{CacheDir: t.TempDir(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if ok, hosts := w.MayUseHost("laptop"); ok || len(hosts) != 1 || hosts[0] != "web-1" {
		t.Fatalf("writer may use laptop: %v %v", ok, hosts)
	}
	if got := w.HostLabel("writer-machine"); got != "web-1" {
		t.Fatalf("writer's default host label %q, want its binding", got)
	}
	if got := owner.HostLabel("laptop"); got != "laptop" {
		t.Fatalf("owner's default host label %q", got)
	}

	o1 := commitAs(t, owner, "owner one", "laptop", now)
	now = now.Add(time.Hour)
	evil := commitAs(t, w, "attacker", "laptop", time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	own := commitAs(t, w, "writer's own", "web-1", now)
	now = now.Add(time.Hour)
	o2 := commitAs(t, owner, "owner two", "laptop", now)

	reader, err := repository.Open(ctx, be, []byte("pw"), repository.Options{KDF: &quickKDF, CacheDir: t.TempDir(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	snaps, errs, err := reader.Snapshots(ctx)
	if err != nil || len(errs) > 0 {
		t.Fatal(err, errs)
	}
	if _, err := reader.Judge(ctx, snaps); err != nil {
		t.Fatal(err)
	}
	want := map[blob.ID]struct {
		signer   string
		impostor bool
	}{o1.ID: {"owner", false}, evil.ID: {"web", true}, own.ID: {"web", false}, o2.ID: {"owner", false}}
	var order []blob.ID
	for _, s := range snaps {
		wnt := want[s.ID]
		if s.Standing.Signer.String() != wnt.signer || s.Standing.Impostor != wnt.impostor {
			t.Errorf("snapshot %s: signer %q impostor %v, want %+v", s.ID.Short(), s.Standing.Signer, s.Standing.Impostor, wnt)
		}
		order = append(order, s.ID)
	}
	// The impostor's claim of 2031 is capped by its storage time.
	if order[len(order)-1] != o2.ID {
		t.Errorf("newest by policy time is %s, want the owner's %s", order[len(order)-1].Short(), o2.ID.Short())
	}
	got, skipped := repository.Latest(snaps, func(s *repository.Snapshot) bool { return s.Meta.HostLabel == "laptop" })
	if got == nil || got.ID != o2.ID || len(skipped) != 1 || skipped[0].ID != evil.ID {
		t.Fatalf("latest on laptop: %v, skipped %v", got, skipped)
	}
	got, _ = repository.Latest(snaps, func(s *repository.Snapshot) bool { return s.Meta.HostLabel == "web-1" })
	if got == nil || got.ID != own.ID {
		t.Fatalf("latest on web-1: %v", got)
	}
}
