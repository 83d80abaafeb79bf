package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/trust"
)

// TestDrillRecords: the owner's drill record is kept as the repository's
// last drill; a writer's, an unknown key's, one for a snapshot not stored
// and a replay are refused and change nothing.
func TestDrillRecords(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	repo, be := ts.cairnClient("drl")
	snap := commit(t, repo, "one")
	drill := func(id string) trust.OwnerRequest {
		return trust.OwnerRequest{Action: trust.ActionDrill, Drill: &trust.DrillRecord{Snapshot: id, Time: ts.nowFn(), Files: 1, Bytes: 3, Total: 1, Result: trust.DrillOK}}
	}
	writer := enrolWriter(t, repo, "web-1")
	_, _, err := ownerAsk(t, ts, repo, be, drill(snap.ID.String()), writer.Sign)
	wantCode(t, err, 403, restapi.CodeNotOwner, `the writer key "web-1"`)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	_, _, err = ownerAsk(t, ts, repo, be, drill(snap.ID.String()), stranger)
	wantCode(t, err, 403, restapi.CodeNotOwner, "does not know")
	_, _, err = ownerAsk(t, ts, repo, be, drill(strings.Repeat("ee", 32)), repo.Keys().OwnerSign)
	wantCode(t, err, 404, restapi.CodeNotFound, "eeeeeeee")
	future := drill(snap.ID.String())
	future.Drill.Time = future.Drill.Time.Add(24 * time.Hour)
	_, _, err = ownerAsk(t, ts, repo, be, future, repo.Keys().OwnerSign)
	wantCode(t, err, 400, restapi.CodeBadRequest, "drill's time")
	if ds, err := ts.data.State.Drills(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("refused records kept: %+v %v", ds, err)
	}

	ts.advance(time.Minute)
	ans, sealed, err := ownerAsk(t, ts, repo, be, drill(snap.ID.String()), repo.Keys().OwnerSign)
	if err != nil || ans.Action != trust.ActionDrill {
		t.Fatalf("owner's drill record: %+v %v", ans, err)
	}
	ds, err := ts.data.State.Drills(ctx)
	if err != nil || len(ds) != 1 || ds[0].Snapshot != snap.ID.String() || ds[0].Files != 1 || ds[0].Result != "ok" || !strings.HasSuffix(ds[0].Repo, "/drl") {
		t.Fatalf("drills %+v %v", ds, err)
	}
	// The same sealed record again is a replay.
	_, err = be.(interface {
		OwnerRequest(context.Context, []byte) (*restapi.OwnerAnswer, error)
	}).OwnerRequest(ctx, sealed)
	wantCode(t, err, 409, restapi.CodeReplayed, "replay")
}
