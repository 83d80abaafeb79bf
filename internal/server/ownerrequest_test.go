package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/retention"
	"github.com/cairnbackup/cairn/internal/trust"
)

// ownerAsk seals req for repo as it is now (ID, stored snapshots, a fresh
// nonce, the server's clock unless req has a time), signs it with key and
// sends it.
func ownerAsk(t *testing.T, ts *testServer, repo *repository.Repository, be backend.Backend, req trust.OwnerRequest, key ed25519.PrivateKey) (*restapi.OwnerAnswer, []byte, error) {
	t.Helper()
	ctx := context.Background()
	var names []string
	if err := be.List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	id := repo.Keys().RepoID
	req.RepoID, req.Head, req.Nonce = hex.EncodeToString(id[:]), trust.SnapshotHead(names), hex.EncodeToString(nonce)
	if req.Time.IsZero() {
		req.Time = ts.nowFn()
	}
	sealed, err := trust.SealOwnerRequest(&req, key)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := be.(*rest.Backend).OwnerRequest(ctx, sealed)
	return ans, sealed, err
}

func wantCode(t *testing.T, err error, status int, code, msg string) {
	t.Helper()
	var se *restapi.StatusError
	if !errors.As(err, &se) || se.Status != status || se.Code != code || !strings.Contains(se.Msg, msg) {
		t.Fatalf("got %v, want %d %s (%q)", err, status, code, msg)
	}
}

func storedSnapshots(t *testing.T, repo *repository.Repository) int {
	t.Helper()
	snaps, _, err := repo.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(snaps)
}

// TestOwnerRequests: the server carries out the owner's signed requests
// through its own retention (floors, tombstones) and refuses any other
// key's, an unknown snapshot (all or none), a replay and a stale time.
func TestOwnerRequests(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	repo, be := ts.cairnClient("own")
	var snaps []*repository.Snapshot
	for _, c := range []string{"one", "two", "three"} {
		snaps = append(snaps, commit(t, repo, c))
		ts.advance(time.Hour)
	}
	owner := repo.Keys().OwnerSign
	forgetIDs := func(ids ...string) trust.OwnerRequest {
		return trust.OwnerRequest{Action: trust.ActionForget, Snapshots: ids}
	}

	// Keys that are not the owner's: the server's own, an unknown one.
	serverKey := ed25519.NewKeyFromSeed(ts.data.Identity.SignSeed)
	_, _, err := ownerAsk(t, ts, repo, be, forgetIDs(snaps[0].ID.String()), serverKey)
	wantCode(t, err, 403, restapi.CodeNotOwner, "a server (coordinator) key")
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	_, _, err = ownerAsk(t, ts, repo, be, forgetIDs(snaps[0].ID.String()), stranger)
	wantCode(t, err, 403, restapi.CodeNotOwner, "does not know")

	// All or none: one snapshot that is not stored refuses the request.
	_, _, err = ownerAsk(t, ts, repo, be, forgetIDs(snaps[0].ID.String(), strings.Repeat("ee", 32)), owner)
	wantCode(t, err, 404, restapi.CodeNotFound, "eeeeeeee")

	// The server's floors hold for the owner too: the newest snapshot is
	// one, so no budget of 1 byte can be met.
	_, _, err = ownerAsk(t, ts, repo, be, trust.OwnerRequest{Action: trust.ActionForget,
		Policy: &trust.RequestPolicy{GroupBy: "host", MaxSize: 1}}, owner)
	wantCode(t, err, 409, restapi.CodeOverBudget, "")
	if n := storedSnapshots(t, repo); n != 3 {
		t.Fatalf("%d snapshots after refusals, want 3", n)
	}

	// A dry run decides and changes nothing; sent again, it is a replay;
	// once its time is past, it is too old.
	dry := trust.OwnerRequest{Action: trust.ActionForget, DryRun: true,
		Policy: &trust.RequestPolicy{Keep: retention.Policy{Last: 1}, GroupBy: "host"}}
	ans, sealed, err := ownerAsk(t, ts, repo, be, dry, owner)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, it := range ans.Snapshots {
		actions[it.ID] = it.Action
	}
	if !ans.DryRun || ans.Removed != 0 || len(actions) != 3 || actions[snaps[0].ID.String()] != "remove" || actions[snaps[2].ID.String()] != "keep" {
		t.Fatalf("dry run: %+v", ans)
	}
	_, err = be.(*rest.Backend).OwnerRequest(ctx, sealed)
	wantCode(t, err, 409, restapi.CodeReplayed, "")
	// With a scope, the policy sees only the snapshots named.
	scoped := dry
	scoped.Snapshots = []string{snaps[0].ID.String(), snaps[1].ID.String()}
	ans, _, err = ownerAsk(t, ts, repo, be, scoped, owner)
	if err != nil {
		t.Fatal(err)
	}
	actions = map[string]string{}
	for _, it := range ans.Snapshots {
		actions[it.ID] = it.Action
	}
	if len(actions) != 2 || actions[snaps[0].ID.String()] != "remove" || actions[snaps[1].ID.String()] != "keep" {
		t.Fatalf("scoped dry run: %+v", ans)
	}
	ts.advance(restapi.OwnerRequestSkew + time.Second)
	_, err = be.(*rest.Backend).OwnerRequest(ctx, sealed)
	wantCode(t, err, 403, restapi.CodeExpired, "")

	// The owner forgets the newest by ID (its own last statement: named,
	// so forgotten), then applies a policy.
	ans, _, err = ownerAsk(t, ts, repo, be, forgetIDs(snaps[2].ID.String()), owner)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Removed != 1 || len(ans.Snapshots) != 1 || ans.Snapshots[0].ID != snaps[2].ID.String() {
		t.Fatalf("forget by ID: %+v", ans)
	}
	ans, _, err = ownerAsk(t, ts, repo, be, trust.OwnerRequest{Action: trust.ActionForget, Prune: true,
		Policy: &trust.RequestPolicy{Keep: retention.Policy{Last: 1}, GroupBy: "host"}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Removed != 1 || len(ans.Prune) == 0 {
		t.Fatalf("forget by policy: %+v", ans)
	}
	left, _, err := repo.Snapshots(ctx)
	if err != nil || len(left) != 1 || left[0].ID != snaps[1].ID {
		t.Fatalf("left %v (%v), want %s", left, err, snaps[1].ID.Short())
	}
	tombs, bad, err := repo.Tombstones(ctx)
	if err != nil || len(bad) != 0 || len(tombs) != 2 {
		t.Fatalf("tombstones %d, bad %v, err %v", len(tombs), bad, err)
	}
	for _, tb := range tombs {
		if !strings.HasPrefix(tb.Rule, "owner request ") || !tb.Signer.Equal(serverKey.Public()) {
			t.Fatalf("tombstone %+v: not the server's, or not naming the request", tb.Tombstone)
		}
	}
	// Only prune.
	ans, _, err = ownerAsk(t, ts, repo, be, trust.OwnerRequest{Action: trust.ActionPrune}, owner)
	if err != nil || len(ans.Prune) == 0 || len(ans.Snapshots) != 0 {
		t.Fatalf("prune: %+v %v", ans, err)
	}
}
