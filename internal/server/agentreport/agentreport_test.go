package agentreport

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

type store struct {
	runs    []reports.AgentRun
	cleared []time.Time // ClearRunNow's times
}

func (s *store) RecordAgentRun(_ context.Context, r reports.AgentRun) error {
	s.runs = append(s.runs, r)
	return nil
}

func (s *store) ClearRunNow(_ context.Context, _ string, t time.Time) error {
	s.cleared = append(s.cleared, t)
	return nil
}

var now = time.Date(2026, 5, 1, 4, 0, 0, 0, time.UTC)

func good() restapi.AgentReport {
	return restapi.AgentReport{RunID: "0123abcd", Attempt: 2, Start: now.Add(-time.Minute), End: now, Result: restapi.AgentGaveUp,
		DurationMS: 60000, Error: "before hook: exit status 3"}
}

func body(t *testing.T, r restapi.AgentReport) string {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// serve answers one report as client (authenticated) to path.
func serve(t *testing.T, client, path, body string) (*httptest.ResponseRecorder, *store) {
	t.Helper()
	st := &store{}
	return serveAt(t, st, nil, client, path, body, now), st
}

// serveAt answers one report into st, limited by lim, at the time at.
func serveAt(t *testing.T, st *store, lim *Limiter, client, path, body string, at time.Time) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path+"?"+restapi.AgentReportQuery, strings.NewReader(body))
	w := httptest.NewRecorder()
	q := repohttp.NewRequest(w, r, slog.New(slog.NewTextHandler(io.Discard, nil)), repohttp.BodyRate{})
	p, err := restapi.ParsePath(r.URL.EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	q.Path = p
	Serve(q, st, lim, client, at)
	return w
}

// A client posting reports in a tight loop gets Burst of them recorded,
// then 429 with a Retry-After, and one more per Refill; another client is
// not held back by it.
func TestServeLimitsRate(t *testing.T) {
	var lim Limiter
	st := &store{}
	refused := 0
	for i := 0; i < 100; i++ {
		w := serveAt(t, st, &lim, "alice", "/alice/", body(t, good()), now)
		switch w.Code {
		case http.StatusNoContent:
		case http.StatusTooManyRequests:
			refused++
			if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" || !strings.Contains(w.Body.String(), "agent reports") {
				t.Fatalf("refusal: Retry-After %q, %s", ra, w.Body)
			}
		default:
			t.Fatalf("report %d: status %d: %s", i, w.Code, w.Body)
		}
	}
	if len(st.runs) != Burst || refused != 100-Burst {
		t.Fatalf("%d recorded, %d refused; want %d recorded", len(st.runs), refused, Burst)
	}
	if w := serveAt(t, st, &lim, "bob", "/bob/", body(t, good()), now); w.Code != http.StatusNoContent {
		t.Fatalf("another client: status %d: %s", w.Code, w.Body)
	}
	later := now.Add(Refill)
	for i, want := range []int{http.StatusNoContent, http.StatusTooManyRequests} {
		if w := serveAt(t, st, &lim, "alice", "/alice/", body(t, good()), later); w.Code != want {
			t.Fatalf("after %v, report %d: status %d, want %d", Refill, i, w.Code, want)
		}
	}
	// A quiet spell refills the whole burst, no more.
	st.runs = nil
	for i := 0; i < 2*Burst; i++ {
		serveAt(t, st, &lim, "alice", "/alice/", body(t, good()), now.Add(time.Hour))
	}
	if len(st.runs) != Burst {
		t.Fatalf("after an hour: %d recorded, want %d", len(st.runs), Burst)
	}
}

func TestServeRecords(t *testing.T) {
	w, st := serve(t, "alice", "/alice/", body(t, good()))
	if w.Code != http.StatusNoContent || len(st.runs) != 1 {
		t.Fatalf("status %d, %d runs: %s", w.Code, len(st.runs), w.Body)
	}
	if len(st.cleared) != 1 || !st.cleared[0].Equal(now) {
		t.Errorf("run-now requests cleared at %v, want once at the report's arrival", st.cleared)
	}
	r := st.runs[0]
	if r.Client != "alice" || r.RunID != "0123abcd" || r.Attempt != 2 || r.Result != restapi.AgentGaveUp || r.Duration != time.Minute ||
		!r.Received.Equal(now) || r.Error != "before hook: exit status 3" {
		t.Errorf("recorded %+v", r)
	}
}

func TestServeRefuses(t *testing.T) {
	big := good()
	big.Error = strings.Repeat("x", restapi.MaxAgentReport)
	longErr := good()
	longErr.Error = strings.Repeat("x", restapi.MaxAgentReportError+1)
	future := good()
	future.End = now.Add(time.Hour)
	old := good()
	old.Start = now.Add(-MaxAge - time.Hour)
	backwards := good()
	backwards.Start = now.Add(time.Minute)
	badResult := good()
	badResult.Result = "fine"
	badID := good()
	badID.RunID = "../x"
	okWithErr := good()
	okWithErr.Result = restapi.AgentOK
	for _, c := range []struct {
		name, client, path, body string
		status                   int
	}{
		{"another client's name", "bob", "/alice/", body(t, good()), http.StatusForbidden},
		{"a repository path", "alice", "/alice/main/", body(t, good()), http.StatusForbidden},
		{"bad JSON", "alice", "/alice/", `{"run_id": "ab",`, http.StatusBadRequest},
		{"not an object", "alice", "/alice/", `[1,2]`, http.StatusBadRequest},
		{"unknown field", "alice", "/alice/", strings.Replace(body(t, good()), `"run_id"`, `"client":"bob","run_id"`, 1), http.StatusBadRequest},
		{"trailing data", "alice", "/alice/", body(t, good()) + `{}`, http.StatusBadRequest},
		{"empty", "alice", "/alice/", ``, http.StatusBadRequest},
		{"oversize", "alice", "/alice/", body(t, big), http.StatusRequestEntityTooLarge},
		{"long error", "alice", "/alice/", body(t, longErr), http.StatusBadRequest},
		{"end in the future", "alice", "/alice/", body(t, future), http.StatusBadRequest},
		{"start long ago", "alice", "/alice/", body(t, old), http.StatusBadRequest},
		{"end before start", "alice", "/alice/", body(t, backwards), http.StatusBadRequest},
		{"unknown result", "alice", "/alice/", body(t, badResult), http.StatusBadRequest},
		{"bad run ID", "alice", "/alice/", body(t, badID), http.StatusBadRequest},
		{"ok with an error", "alice", "/alice/", body(t, okWithErr), http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, st := serve(t, c.client, c.path, c.body)
			if w.Code != c.status || len(st.runs) != 0 || len(st.cleared) != 0 {
				t.Errorf("status %d (want %d), %d runs recorded: %s", w.Code, c.status, len(st.runs), w.Body)
			}
		})
	}
}

type runNows map[string]time.Time

func (r runNows) RunNow(_ context.Context, client string) (time.Time, error) { return r[client], nil }

// TestServePoll: a client's agent learns whether a run is asked of it,
// only at its own name.
func TestServePoll(t *testing.T) {
	st := runNows{"alice": now}
	for _, c := range []struct {
		client, path string
		status       int
		runNow       bool
	}{
		{"alice", "/alice/", http.StatusOK, true},
		{"bob", "/bob/", http.StatusOK, false},
		{"bob", "/alice/", http.StatusForbidden, false},
		{"alice", "/alice/main/", http.StatusForbidden, false},
	} {
		r := httptest.NewRequest(http.MethodGet, c.path+"?"+restapi.AgentPollQuery, nil)
		w := httptest.NewRecorder()
		q := repohttp.NewRequest(w, r, slog.New(slog.NewTextHandler(io.Discard, nil)), repohttp.BodyRate{})
		p, err := restapi.ParsePath(r.URL.EscapedPath())
		if err != nil {
			t.Fatal(err)
		}
		q.Path = p
		ServePoll(q, st, c.client)
		if w.Code != c.status {
			t.Errorf("%s %s: status %d, want %d: %s", c.client, c.path, w.Code, c.status, w.Body)
			continue
		}
		if w.Code != http.StatusOK {
			continue
		}
		var a restapi.AgentPoll
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		if a.RunNow != c.runNow || a.RunNow && !a.RequestedAt.Equal(now) || !a.RunNow && !a.RequestedAt.IsZero() {
			t.Errorf("%s: %+v", c.client, a)
		}
	}
}
