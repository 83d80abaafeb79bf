package trust

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func testDrill() *OwnerRequest {
	r := testRequest()
	r.Action, r.Policy, r.Prune, r.Grace, r.RepackThreshold = ActionDrill, nil, false, 0, 0
	r.Drill = &DrillRecord{Snapshot: strings.Repeat("cd", 32), Time: r.Time, Files: 3, Bytes: 4096, Total: 10, Result: DrillOK}
	return r
}

func TestDrillRecordRoundTrip(t *testing.T) {
	key := testOwnerKey(2)
	buf, err := SealOwnerRequest(testDrill(), key)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenOwnerRequest(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Action != ActionDrill || got.Drill == nil || *got.Drill != *testDrill().Drill {
		t.Fatalf("decoded %+v", got.Drill)
	}
}

func TestDrillRecordRefusesBadShapes(t *testing.T) {
	for name, mutate := range map[string]func(r *OwnerRequest){
		"no record":          func(r *OwnerRequest) { r.Drill = nil },
		"bad snapshot":       func(r *OwnerRequest) { r.Drill.Snapshot = "latest" },
		"no time":            func(r *OwnerRequest) { r.Drill.Time = time.Time{} },
		"negative":           func(r *OwnerRequest) { r.Drill.Bytes = -1 },
		"more than total":    func(r *OwnerRequest) { r.Drill.Files = 11 },
		"unknown result":     func(r *OwnerRequest) { r.Drill.Result = "fine" },
		"ok with problems":   func(r *OwnerRequest) { r.Drill.Problems = 1 },
		"with snapshots":     func(r *OwnerRequest) { r.Snapshots = []string{strings.Repeat("cd", 32)} },
		"prune":              func(r *OwnerRequest) { r.Prune = true },
		"record with forget": func(r *OwnerRequest) { r.Action = ActionForget; r.Snapshots = []string{strings.Repeat("cd", 32)} },
	} {
		r := testDrill()
		mutate(r)
		if _, err := SealOwnerRequest(r, testOwnerKey(2)); !errors.Is(err, ErrOwnerRequest) {
			t.Errorf("%s: sealed (err %v), want ErrOwnerRequest", name, err)
		}
	}
}
