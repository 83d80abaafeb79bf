// Package agentreport keeps the run reports of cairn agents for the
// server (package server): POST /{client}/?agent-report with a
// restapi.AgentReport, under the client's own credentials, records one
// attempt of an agent run in the state database (state.RecordAgentRun),
// where `cairn server status` and the monitor read it. A client reports
// only for itself: the path is its name alone. The body is decoded
// strictly (unknown fields, trailing data, bodies over
// restapi.MaxAgentReport refused) and its times must be sane. A client
// posting reports in a loop is held to a rate (Limiter) before its body
// is read, so it cannot keep the state database writing.
package agentreport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// Store keeps reported runs (state.State).
type Store interface {
	RecordAgentRun(ctx context.Context, r reports.AgentRun) error
	// ClearRunNow drops a run-now request made at or before t: the run
	// it asked for has reported.
	ClearRunNow(ctx context.Context, client string, t time.Time) error
}

// MaxSkew is how far in the future a report's end may be on the
// server's clock; MaxAge how long ago its start may be.
const (
	MaxSkew = 10 * time.Minute
	MaxAge  = 30 * 24 * time.Hour
)

// Burst reports a client may send at once; after them, one more each
// Refill. An agent sends one per attempt, attempts minutes apart (its
// retries.interval), so only a client posting in a loop meets the limit.
const (
	Burst  = 10
	Refill = 30 * time.Second
)

// Limiter holds each client to Burst reports, then one per Refill (a
// token bucket per client). The zero value is ready to use.
type Limiter struct {
	mu   sync.Mutex
	last map[string]bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Allow takes one of client's reports at now, or says how long until it
// may send the next one.
func (l *Limiter) Allow(client string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]bucket{}
	}
	b, ok := l.last[client]
	if !ok {
		b = bucket{tokens: Burst, at: now}
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(Burst, b.tokens+float64(d)/float64(Refill))
		b.at = now
	}
	if b.tokens < 1 {
		l.last[client] = b
		return time.Duration((1 - b.tokens) * float64(Refill)), false
	}
	b.tokens--
	l.last[client] = b
	return 0, true
}

// Serve answers an agent report from the authenticated client on q at
// now; lim (nil: none) limits how often a client may report.
func Serve(q *repohttp.Request, st Store, lim *Limiter, client string, now time.Time) {
	if len(q.Path.Repo) != 1 || q.Path.Repo[0] != client {
		q.Refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s reports its agent runs to /%s/?%s only", client, client, restapi.AgentReportQuery)
		return
	}
	if lim != nil {
		if wait, ok := lim.Allow(client, now); !ok {
			q.W.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			q.Refuse(http.StatusTooManyRequests, restapi.CodeTooOften, "client %s sent more than %d agent reports, then more than one per %v", client, Burst, Refill)
			return
		}
	}
	rep, err := Decode(q.R.Body)
	if err != nil {
		var tl *tooLarge
		if errors.As(err, &tl) {
			q.Refuse(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge, "agent report: %v", err)
			return
		}
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "agent report: %v", err)
		return
	}
	if err := Check(rep, now); err != nil {
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "agent report: %v", err)
		return
	}
	r := reports.AgentRun{Client: client, RunID: rep.RunID, Attempt: rep.Attempt, Start: rep.Start, End: rep.End, Received: now,
		Result: rep.Result, BytesAdded: rep.BytesAdded, Duration: time.Duration(rep.DurationMS) * time.Millisecond, Error: rep.Error}
	if err := st.RecordAgentRun(q.R.Context(), r); err != nil {
		q.Fail("agent report", err)
		return
	}
	q.Log.Info("agent run reported", "client", client, "run", rep.RunID, "attempt", rep.Attempt, "result", rep.Result)
	if err := st.ClearRunNow(q.R.Context(), client, now); err != nil {
		q.Log.Error("clear the run-now request", "client", client, "err", err)
	}
	q.W.WriteHeader(http.StatusNoContent)
}

type tooLarge struct{}

func (*tooLarge) Error() string {
	return fmt.Sprintf("body larger than %d bytes", restapi.MaxAgentReport)
}

// Decode reads one report from body: at most restapi.MaxAgentReport
// bytes, no unknown fields, nothing after it.
func Decode(body io.Reader) (restapi.AgentReport, error) {
	var rep restapi.AgentReport
	if body == nil {
		return rep, errors.New("no body")
	}
	b, err := io.ReadAll(io.LimitReader(body, restapi.MaxAgentReport+1))
	if err != nil {
		return rep, fmt.Errorf("read body: %w", err)
	}
	if len(b) > restapi.MaxAgentReport {
		return rep, &tooLarge{}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return rep, fmt.Errorf("not a report: %w", err)
	}
	if dec.More() {
		return rep, errors.New("data after the report")
	}
	return rep, nil
}

// Check refuses a report whose fields are out of range at now.
func Check(r restapi.AgentReport, now time.Time) error {
	switch {
	case len(r.RunID) == 0 || len(r.RunID) > 64 || !isHex(r.RunID):
		return errors.New("run_id must be 1 to 64 lowercase hex digits")
	case r.Attempt < 1 || r.Attempt > 1000:
		return fmt.Errorf("attempt %d out of range 1-1000", r.Attempt)
	case r.Result != restapi.AgentOK && r.Result != restapi.AgentFailed && r.Result != restapi.AgentGaveUp:
		return fmt.Errorf("result %q is none of %s, %s, %s", r.Result, restapi.AgentOK, restapi.AgentFailed, restapi.AgentGaveUp)
	case r.Start.IsZero() || r.End.IsZero() || r.End.Before(r.Start):
		return errors.New("start and end must be set, end not before start")
	case r.End.After(now.Add(MaxSkew)):
		return fmt.Errorf("end %s is in the future of the server's clock (%s)", r.End.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case r.Start.Before(now.Add(-MaxAge)):
		return fmt.Errorf("start %s is more than %s ago", r.Start.UTC().Format(time.RFC3339), MaxAge)
	case r.BytesAdded < 0 || r.DurationMS < 0:
		return errors.New("bytes_added and duration_ms must not be negative")
	case len(r.Error) > restapi.MaxAgentReportError:
		return fmt.Errorf("error text longer than %d bytes", restapi.MaxAgentReportError)
	case r.Result == restapi.AgentOK && r.Error != "":
		return errors.New("a successful run carries no error")
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
