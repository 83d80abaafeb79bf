package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// openQueued opens a session with ticket (none if ""): the lease ID on
// 200, or the queue place on 503 backup-queued.
func (ts *testServer) openQueued(user, pw, repo, ticket string) (int, string, string, restapi.SessionQueued) {
	ts.t.Helper()
	path := "/" + repo + "/?session=open"
	if ticket != "" {
		path += "&ticket=" + ticket
	}
	code, ecode, body := ts.do(user, pw, http.MethodPost, path, nil)
	var q restapi.SessionQueued
	var l restapi.SessionLease
	switch {
	case code == http.StatusOK:
		if err := json.Unmarshal([]byte(body), &l); err != nil || l.ID == "" {
			ts.t.Fatalf("%s: lease %q: %v", path, body, err)
		}
	case code == http.StatusServiceUnavailable && ecode == restapi.CodeBackupQueued:
		if err := json.Unmarshal([]byte(body), &q); err != nil || q.Ticket == "" {
			ts.t.Fatalf("%s: queue answer %q: %v", path, body, err)
		}
	}
	return code, ecode, l.ID, q
}

// TestFleetPacingQueue: with MaxBackups 1, a second open is queued with
// its position at once; a held open is granted when the running session
// ends; places are FIFO; a place nobody asks about for Grace is lost,
// and a grant nobody claims is ended ("never claimed").
func TestFleetPacingQueue(t *testing.T) {
	ts := startTest(t, Options{MaxBackups: 1, MaxSessions: 2, QueueHold: 300 * time.Millisecond, QueueGrace: time.Minute})
	for _, r := range []struct{ user, pw, repo string }{{"alice", pwAlice, "alice/main"}, {"alice", pwAlice, "alice/other"}, {"bob", pwBob, "bob/main"}} {
		ts.create(r.user, r.pw, r.repo)
	}
	code, _, running, _ := ts.openQueued("bob", pwBob, "bob/main", "")
	if code != http.StatusOK {
		t.Fatalf("first open: %d", code)
	}
	code, ecode, _, q1 := ts.openQueued("alice", pwAlice, "alice/main", "")
	if code != http.StatusServiceUnavailable || ecode != restapi.CodeBackupQueued || q1.Position != 1 || q1.Running != 1 || q1.Limit != 1 {
		t.Fatalf("second open: %d %s %+v", code, ecode, q1)
	}
	_, _, _, q2 := ts.openQueued("alice", pwAlice, "alice/other", "")
	if q2.Position != 2 || q2.Ticket == q1.Ticket {
		t.Fatalf("third open: %+v", q2)
	}
	if code, ecode, _, _ := ts.openQueued("alice", pwAlice, "alice/main", ""); code != http.StatusTooManyRequests || ecode != restapi.CodeTooManySessions {
		t.Fatalf("a third place of alice (--max-sessions 2): %d %s", code, ecode)
	}
	// A held open keeps its place and hears it again after Hold.
	if _, _, _, again := ts.openQueued("alice", pwAlice, "alice/main", q1.Ticket); again.Ticket != q1.Ticket || again.Position != 1 {
		t.Fatalf("held open: %+v", again)
	}
	// Another repository's ticket is not this one's: a new place, which
	// alice's cap refuses.
	if code, _, _, _ := ts.openQueued("alice", pwAlice, "alice/other", q1.Ticket); code != http.StatusTooManyRequests {
		t.Fatalf("a ticket for another repository: %d", code)
	}

	// The running session ends: the head of the queue gets the slot,
	// though it has no request waiting; it claims it with its ticket.
	if code, _, _ := ts.session("bob", pwBob, "bob/main", restapi.SessionEnd, running); code != http.StatusOK {
		t.Fatalf("end: %d", code)
	}
	code, _, granted, _ := ts.openQueued("alice", pwAlice, "alice/main", q1.Ticket)
	if code != http.StatusOK {
		t.Fatalf("the head's open after the slot freed: %d", code)
	}

	// The slot frees again while q2, now the head, has no request
	// waiting: the session is granted to it and kept for its ticket.
	if code, _, _ := ts.session("alice", pwAlice, "alice/main", restapi.SessionEnd, granted); code != http.StatusOK {
		t.Fatalf("end: %d", code)
	}
	code, _, _, q3 := ts.openQueued("alice", pwAlice, "alice/main", "")
	if code != http.StatusServiceUnavailable || q3.Position != 1 || q3.Running != 1 {
		t.Fatalf("an open behind the reserved grant: %d %+v", code, q3)
	}
	// Neither q2 nor q3 asks again for longer than Grace: q3 loses its
	// place and q2's grant is ended, so the next open runs at once.
	ts.advance(2 * time.Minute)
	if code, _, _, q := ts.openQueued("bob", pwBob, "bob/main", ""); code != http.StatusOK {
		t.Fatalf("an open after the queue's places vanished: %d %+v", code, q)
	}
	ss, err := ts.data.State.Sessions(context.Background(), "alice", "alice/other")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Ended.IsZero() || ss[0].EndNote != "never claimed" {
		t.Fatalf("alice/other sessions: %+v", ss)
	}
	if code, _, _, q := ts.openQueued("alice", pwAlice, "alice/other", q2.Ticket); code != http.StatusServiceUnavailable || q.Ticket == q2.Ticket || q.Position != 1 {
		t.Fatalf("a vanished ticket: %d %+v", code, q)
	}
	p, ok, err := ts.data.State.Pacing(context.Background())
	if err != nil || !ok || p.Limit != 1 || p.Peak != 1 || p.Running != 1 || len(p.Queued) != 1 || p.Queued[0] != "alice" {
		t.Fatalf("recorded pacing %+v %v %v", p, ok, err)
	}
}
