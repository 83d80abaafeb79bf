package server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// TestInterruptedUpload: a client that disconnects mid-body gets its
// upload refused as its own doing (400, a WARN refusal), never as the
// server's failure (500, ERROR); nothing is stored, and its quota
// reservation is given back.
func TestInterruptedUpload(t *testing.T) {
	ts := startTest(t, Options{})
	ts.create("alice", pwAlice, "alice/r")
	name := strings.Repeat("ab", 32)
	c := ts.rawRequest("POST /alice/r/data/" + name + " HTTP/1.1\r\nHost: x\r\n" + authHeader("alice", pwAlice) + "Content-Length: 1000\r\n\r\nabc")
	c.(*net.TCPConn).CloseWrite()
	if code, kind := rawStatus(c); code != http.StatusBadRequest || kind != restapi.CodeBadRequest {
		t.Fatalf("interrupted upload: %d %q, want 400 %s", code, kind, restapi.CodeBadRequest)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "upload interrupted after") || strings.Contains(logs, "level=ERROR") {
		t.Fatalf("interrupted upload logged as an error, or not at all:\n%s", logs)
	}
	be, err := ts.srv.repos.Get(t.Context(), "alice/r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := be.Stat(t.Context(), backend.Handle{Type: backend.Data, Name: name}); err == nil {
		t.Fatal("an interrupted upload was stored")
	}
	if used, _ := ts.srv.usage.Get("alice"); used != 0 {
		t.Fatalf("alice uses %d bytes after an interrupted upload", used)
	}
}

// TestNestedRepositoryRefused: a repository inside another, or around
// another, is refused with 409 and the reason, not a 500.
func TestNestedRepositoryRefused(t *testing.T) {
	ts := startTest(t, Options{})
	ts.create("alice", pwAlice, "alice/r")
	ts.create("alice", pwAlice, "alice/x/y")
	for path, want := range map[string]string{
		"/alice/r/sub/?create=true": "lies inside repository alice/r",
		"/alice/x/?create=true":     "would hold existing repositories below it",
	} {
		code, kind, body := ts.do("alice", pwAlice, "POST", path, nil)
		if code != http.StatusConflict || kind != restapi.CodeBadRequest || !strings.Contains(body, want) {
			t.Errorf("POST %s: %d %q %q, want 409 saying %q", path, code, kind, body, want)
		}
	}
	if strings.Contains(ts.logs.String(), "level=ERROR") {
		t.Fatalf("a nested repository logged as an error:\n%s", ts.logs.String())
	}
	// The repositories around them still work, and again is still fine.
	if code, _, _ := ts.do("alice", pwAlice, "POST", "/alice/r/?create=true", nil); code != http.StatusOK {
		t.Fatalf("create alice/r again: %d", code)
	}
}

// chunked POSTs body without a Content-Length (Go sends it chunked).
func (ts *testServer) chunked(user, pw, path string, body []byte) (int, string) {
	ts.t.Helper()
	req, err := http.NewRequest("POST", ts.url+path, io.MultiReader(bytes.NewReader(body))) // not a *bytes.Reader: no length
	if err != nil {
		ts.t.Fatal(err)
	}
	req.SetBasicAuth(user, pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if req.ContentLength != 0 && req.ContentLength != -1 {
		ts.t.Fatalf("request declared a length %d", req.ContentLength)
	}
	return resp.StatusCode, resp.Header.Get(restapi.HeaderError)
}

// TestChunkedUpload: a body sent chunked, without Content-Length, is
// stored within the same limits as one with: the largest upload (413),
// the client's quota (507, counted with the length received), and it
// must hash to its name.
func TestChunkedUpload(t *testing.T) {
	ts := startTest(t, Options{MaxUpload: 50_000}) // alice's quota: 100,000 bytes
	ts.create("alice", pwAlice, "alice/r")
	body := random(30_000)
	path := "/alice/r/data/" + backend.NameOf(body)
	if code, kind := ts.chunked("alice", pwAlice, path, body); code != http.StatusOK {
		t.Fatalf("chunked upload: %d %s", code, kind)
	}
	be, err := ts.srv.repos.Get(t.Context(), "alice/r")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := backend.LoadAll(t.Context(), be, backend.Handle{Type: backend.Data, Name: backend.NameOf(body)})
	if err != nil || !bytes.Equal(stored, body) {
		t.Fatalf("chunked upload stored wrongly: %v", err)
	}
	if used, _ := ts.srv.usage.Get("alice"); used < 30_000 {
		t.Fatalf("alice uses %d bytes after a 30,000-byte chunked upload", used)
	}

	big := random(50_001)
	if code, kind := ts.chunked("alice", pwAlice, "/alice/r/data/"+backend.NameOf(big), big); code != http.StatusRequestEntityTooLarge || kind != restapi.CodeTooLarge {
		t.Fatalf("chunked upload past MaxUpload: %d %s, want 413", code, kind)
	}
	wrong := random(1000)
	if code, kind := ts.chunked("alice", pwAlice, "/alice/r/data/"+backend.NameOf(body[:10]), wrong); code != http.StatusBadRequest || kind != restapi.CodeHashMismatch {
		t.Fatalf("chunked upload under another's name: %d %s, want 400 %s", code, kind, restapi.CodeHashMismatch)
	}
	// Two more of 40,000 bytes: the first fits the quota, the second not.
	for i, want := range []int{http.StatusOK, http.StatusInsufficientStorage} {
		b := random(40_000)
		if code, kind := ts.chunked("alice", pwAlice, "/alice/r/data/"+backend.NameOf(b), b); code != want {
			t.Fatalf("chunked upload %d near the quota: %d %s, want %d", i, code, kind, want)
		}
	}
	// Filled to the byte, then refused before the body.
	fill := random(30_000)
	if code, kind := ts.chunked("alice", pwAlice, "/alice/r/data/"+backend.NameOf(fill), fill); code != http.StatusOK {
		t.Fatalf("chunked upload filling the quota: %d %s", code, kind)
	}
	if code, kind := ts.chunked("alice", pwAlice, "/alice/r/data/"+backend.NameOf(wrong), wrong); code != http.StatusInsufficientStorage || kind != restapi.CodeQuota {
		t.Fatalf("chunked upload over the quota: %d %s, want 507", code, kind)
	}
	if used, _ := ts.srv.usage.Get("alice"); used != 100_000 {
		t.Fatalf("alice uses %d bytes, want the three stored uploads (100,000)", used)
	}
}
