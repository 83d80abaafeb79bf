package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// benchServer is a server over a fresh data directory with client alice,
// her repository and one data file in it, logging as `cairn server run`
// does (text, level info) into w. It returns the file's path.
func benchServer(b *testing.B, w io.Writer) (*Server, string) {
	b.Helper()
	ctx := context.Background()
	data, err := datadir.Init(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { data.Close() })
	if err := data.NewClient(ctx, state.Client{Name: "alice"}, []byte(pwAlice)); err != nil {
		b.Fatal(err)
	}
	srv, err := New(data, Options{Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		b.Fatal(err)
	}
	body := random(1000)
	path := "/alice/repo/data/" + backend.NameOf(body)
	for _, r := range []struct {
		method, path string
		body         []byte
	}{{"POST", "/alice/repo/?create=true", nil}, {"POST", path, body}} {
		rec := serveOnce(srv, r.method, r.path, r.body)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s %s: %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	return srv, path
}

func serveOnce(srv *Server, method, path string, body []byte) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.SetBasicAuth("alice", pwAlice)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	return rec
}

// discardResponse is a ResponseWriter that keeps nothing but its header.
type discardResponse struct {
	h      http.Header
	status int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) WriteHeader(code int)        { d.status = code }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHead is the handler chain's cost of restic's HEAD of a data
// file (issue 17): authentication with the login cache warm, the tenant
// and path checks, the stat, the log record (not written at level info)
// and the metrics. No network: the request is served in process.
func BenchmarkHead(b *testing.B) {
	srv, path := benchServer(b, io.Discard)
	h := srv.Handler()
	req := httptest.NewRequest("HEAD", path, nil)
	req.SetBasicAuth("alice", pwAlice)
	w := &discardResponse{h: http.Header{}}
	h.ServeHTTP(w, req) // the bcrypt comparison, once
	if w.status != http.StatusOK {
		b.Fatalf("HEAD: %d", w.status)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
	}
	if w.status != http.StatusOK {
		b.Fatalf("HEAD: %d", w.status)
	}
}

// TestRequestLogAttributes: each request's log lines carry its ID (the
// one in the response's header), method, path and remote address, and
// the user once known, though they are built only when a line is
// written.
func TestRequestLogAttributes(t *testing.T) {
	ts := startTest(t, Options{})
	if st, _, body := ts.do("alice", pwAlice, "POST", "/alice/repo/?create=true", nil); st != 200 {
		t.Fatalf("create: %d %s", st, body)
	}
	data := random(100)
	path := "/alice/repo/data/" + backend.NameOf(data)
	if st, _, body := ts.do("alice", pwAlice, "POST", path, data); st != 200 {
		t.Fatalf("upload: %d %s", st, body)
	}
	send := func(pw, method string) string {
		req, err := http.NewRequest(method, ts.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("alice", pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get(restapi.HeaderRequestID)
		if len(id) != 16 {
			t.Fatalf("request ID %q", id)
		}
		return id
	}
	// lineOf returns the log line with the request's ID and msg once the
	// server wrote it (it logs after it answered).
	lineOf := func(id, msg string) string {
		var line string
		waitFor(t, "the log line of request "+id, func() bool {
			line = grepLines(ts.logs.String(), "req="+id+" ")
			return strings.Contains(line, "msg="+msg+" ")
		})
		return grepLines(line, "msg="+msg+" ")
	}
	head := send(pwAlice, "HEAD")
	bad := send("wrong", "GET")
	for _, c := range []struct {
		id, msg string
		want    []string
	}{
		{head, "request", []string{"method=HEAD", "path=" + path, "remote=127.0.0.1:", "client=alice", "repo=alice/repo", "status=200"}},
		{bad, "refused", []string{"method=GET", "path=" + path, "remote=127.0.0.1:", "user=alice", "status=401", "code=auth"}},
	} {
		line := lineOf(c.id, c.msg)
		if line == "" || strings.Contains(line, "\n") {
			t.Fatalf("request %s: lines %q", c.id, line)
		}
		for _, w := range c.want {
			if !strings.Contains(line, " "+w) {
				t.Errorf("request %s: %q lacks %q", c.id, line, w)
			}
		}
	}
}
