package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// TestRunOnceReportsEachAttempt: every attempt is reported with one run
// ID; the last failed one as gave-up; a report that fails is a warning
// and the run's result stands.
func TestRunOnceReportsEachAttempt(t *testing.T) {
	c := testConfig(t, "retries: {attempts: 3, interval: 7m}\n")
	clock := &VirtualClock{T: time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)}
	var got []restapi.AgentReport
	var log bytes.Buffer
	r := &Runner{Config: c, Backuper: &fakeBackuper{clock: clock, fail: 100}, Clock: clock, Log: &log,
		Report: func(_ context.Context, rep restapi.AgentReport) error {
			got = append(got, rep)
			return errors.New("server unreachable")
		}}
	if err := r.RunOnce(context.Background()); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("RunOnce: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("%d reports, want 3", len(got))
	}
	for i, rep := range got {
		want := restapi.AgentFailed
		if i == 2 {
			want = restapi.AgentGaveUp
		}
		if rep.RunID != got[0].RunID || rep.RunID == "" || rep.Attempt != i+1 || rep.Result != want || !strings.Contains(rep.Error, "server went away") || rep.End.Before(rep.Start) {
			t.Errorf("report %d: %+v", i, rep)
		}
	}
	if n := strings.Count(log.String(), "warning: could not report the run to the server: server unreachable"); n != 3 {
		t.Errorf("%d warnings in the log:\n%s", n, log.String())
	}

	// A success after a failure, with the report failing: the run succeeds.
	got = nil
	r.Backuper = &fakeBackuper{clock: clock, fail: 1, added: 1000}
	if err := r.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if len(got) != 2 || got[0].Result != restapi.AgentFailed || got[1].Result != restapi.AgentOK || got[1].Error != "" || got[1].Attempt != 2 {
		t.Fatalf("reports: %+v", got)
	}
	if got[0].BytesAdded != 0 || got[1].BytesAdded != 1000 {
		t.Errorf("bytes added: %d, %d; want 0, 1000", got[0].BytesAdded, got[1].BytesAdded)
	}
}

// TestReportBytesAddedSumsTheRun: a run's report adds up what each of its
// backups stored (a dump and the paths).
func TestReportBytesAddedSumsTheRun(t *testing.T) {
	c := testConfig(t, "databases: [{type: postgres, databases: [app]}]\n")
	clock := &VirtualClock{T: time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)}
	var got []restapi.AgentReport
	fb := &fakeBackuper{clock: clock, added: 4096}
	r := &Runner{Config: c, Backuper: fb, Clock: clock,
		Report: func(_ context.Context, rep restapi.AgentReport) error { got = append(got, rep); return nil }}
	if err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(fb.calls) != 2 || len(got) != 1 || got[0].BytesAdded != 8192 {
		t.Fatalf("%d backups, reports %+v; want 2 backups and 8192 bytes added", len(fb.calls), got)
	}
}

func TestReportErrorTruncated(t *testing.T) {
	long := strings.Repeat("é", restapi.MaxAgentReportError) // two bytes each
	var got restapi.AgentReport
	r := &Runner{Clock: RealClock{}, Report: func(_ context.Context, rep restapi.AgentReport) error { got = rep; return nil }}
	r.report(context.Background(), restapi.AgentReport{Error: long})
	if len(got.Error) > restapi.MaxAgentReportError || len(got.Error) < restapi.MaxAgentReportError-1 || !strings.HasPrefix(long, got.Error) {
		t.Fatalf("error of %d bytes", len(got.Error))
	}
}

func TestSendReport(t *testing.T) {
	var path, user, pw string
	var rep restapi.AgentReport
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.RequestURI()
		user, pw, _ = r.BasicAuth()
		json.NewDecoder(r.Body).Decode(&rep)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	want := restapi.AgentReport{RunID: "ab", Attempt: 1, Result: restapi.AgentOK}
	repo := "rest:" + strings.Replace(srv.URL, "http://", "http://alice:secret@", 1) + "/alice/main"
	if err := SendReport(context.Background(), srv.Client(), repo, false, want); err != nil {
		t.Fatal(err)
	}
	if path != "/alice/?agent-report" || user != "alice" || pw != "secret" || rep.RunID != "ab" {
		t.Fatalf("sent %s as %s:%s: %+v", path, user, pw, rep)
	}
	if err := SendReport(context.Background(), srv.Client(), "rest:http://alice:secret@backup.example:8000/alice/main", false, want); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("plain http to a remote host: %v", err)
	}
}
