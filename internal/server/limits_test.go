package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/state/policy"
)

func (ts *testServer) rawRequest(head string) net.Conn {
	ts.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { c.Close() })
	io.WriteString(c, head+"\r\n")
	return c
}

func authHeader(user, pw string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw)) + "\r\n"
}

// rawStatus reads a response's status and X-Cairn-Error code (0 if the
// connection closed or nothing came within 5 s).
func rawStatus(c net.Conn) (int, string) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Cairn-Error")
}

func TestOverQuotaRefusedBeforeBody(t *testing.T) {
	ts := startTest(t, Options{MaxUpload: 1 << 20})
	ts.do("alice", pwAlice, "POST", "/alice/r/?create=true", nil)
	c := ts.rawRequest("POST /alice/r/data/" + strings.Repeat("ab", 32) + " HTTP/1.1\r\nHost: x\r\n" + authHeader("alice", pwAlice) + "Content-Length: 200000\r\n")
	if st, code := rawStatus(c); st != http.StatusInsufficientStorage || code != "quota" {
		t.Fatalf("over quota: %d %s, want 507 without the body", st, code)
	}
	// The reservation was released: a fitting upload goes through.
	b := random(30_000)
	if st, _, body := ts.do("alice", pwAlice, "POST", "/alice/r/data/"+backend.NameOf(b), b); st != 200 {
		t.Fatalf("upload after the refusal: %d %s", st, body)
	}
	if used, _ := ts.srv.usage.Get("alice"); used != 30_000 {
		t.Fatalf("alice uses %d bytes, want 30000", used)
	}
}

func TestTooManyUploadsAndSlowBody(t *testing.T) {
	ts := startTest(t, Options{MaxUploads: 1, BodyGrace: 2 * time.Second, BodyIdle: 3 * time.Second})
	ts.do("bob", pwBob, "POST", "/bob/r/?create=true", nil)
	// An upload that sends 10 of its 1000 bytes holds bob's only slot…
	c := ts.rawRequest("POST /bob/r/data/" + strings.Repeat("ab", 32) + " HTTP/1.1\r\nHost: x\r\n" + authHeader("bob", pwBob) + "Content-Length: 1000\r\n")
	io.WriteString(c, "0123456789")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ts.srv.uploads.InUse("bob") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first upload never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := random(100)
	if st, code, _ := ts.do("bob", pwBob, "POST", "/bob/r/data/"+backend.NameOf(b), b); st != http.StatusTooManyRequests || code != restapi.CodeTooManyUploads {
		t.Fatalf("second upload: %d %s, want 429 %s", st, code, restapi.CodeTooManyUploads)
	}
	// …until the server gives up on its body.
	if st, code := rawStatus(c); st != http.StatusRequestTimeout || code != restapi.CodeSlowBody {
		t.Fatalf("stalled upload: %d %s, want 408", st, code)
	}
	if st, _, body := ts.do("bob", pwBob, "POST", "/bob/r/data/"+backend.NameOf(b), b); st != 200 {
		t.Fatalf("upload after the slot came back: %d %s", st, body)
	}
}

func TestUnreadBodyClosesConnection(t *testing.T) {
	ts := startTest(t, Options{BodyGrace: 10 * time.Second})
	// No credentials, a small body that never comes: answered and closed
	// at once, not after the grace period.
	c := ts.rawRequest("POST /alice/r/data/" + strings.Repeat("ab", 32) + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
	start := time.Now()
	if st, _ := rawStatus(c); st != http.StatusUnauthorized {
		t.Fatalf("status %d", st)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("connection not closed: %v after %v", err, time.Since(start))
	}
}

func TestBadMethodAndLabels(t *testing.T) {
	ts := startTest(t, Options{})
	for _, m := range []string{"FOO", "PUT", "M" + strings.Repeat("Z", 4000)} {
		c := ts.rawRequest(m + " /alice/r/keys/ HTTP/1.1\r\nHost: x\r\n" + authHeader("alice", pwAlice))
		if st, code := rawStatus(c); st != http.StatusMethodNotAllowed || code != restapi.CodeBadMethod {
			t.Fatalf("%.10s: %d %s", m, st, code)
		}
	}
	ts.do("nobody-"+strings.Repeat("x", 100), "pw", "GET", "/alice/r/keys/", nil)
	rec := httptest.NewRecorder()
	ts.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	if strings.Contains(out, "FOO") || strings.Contains(out, "ZZZZ") || strings.Contains(out, "nobody") || !strings.Contains(out, `method="other"`) {
		t.Fatalf("metrics carry client-chosen labels:\n%s", grepLines(out, "cairn_server_requests_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRepositoryLimit(t *testing.T) {
	ts := startTest(t, Options{MaxRepos: 2})
	for i, want := range []int{200, 200, 403} {
		if st, code, _ := ts.do("bob", pwBob, "POST", fmt.Sprintf("/bob/r%d/?create=true", i), nil); st != want {
			t.Fatalf("repository %d: %d %s, want %d", i, st, code, want)
		}
	}
	if st, _, _ := ts.do("bob", pwBob, "POST", "/bob/r0/?create=true", nil); st != 200 {
		t.Fatalf("an existing repository again: %d", st)
	}
	// Quota headroom: alice stores 96 000 of her 100 000 bytes.
	ts.do("alice", pwAlice, "POST", "/alice/r/?create=true", nil)
	for range 3 {
		b := random(32_000)
		if st, _, body := ts.do("alice", pwAlice, "POST", "/alice/r/data/"+backend.NameOf(b), b); st != 200 {
			t.Fatalf("upload: %d %s", st, body)
		}
	}
	if st, code, _ := ts.do("alice", pwAlice, "POST", "/alice/r2/?create=true", nil); st != http.StatusInsufficientStorage {
		t.Fatalf("a repository without headroom: %d %s", st, code)
	}
}

func TestMaintenanceSkipsBusyRepository(t *testing.T) {
	ts := startTest(t, Options{MaintainWait: 100 * time.Millisecond})
	ctx := context.Background()
	_, release, err := ts.srv.Coordinate(ctx, "alice/r")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	start := time.Now()
	j, _, ok := ts.srv.maintain.Repo(ctx, "alice", "alice/r", policy.Policy{})
	if !ok || !strings.Contains(j.Error, "held the repository") || time.Since(start) > 5*time.Second {
		t.Fatalf("job %+v ok %v after %v", j, ok, time.Since(start))
	}
}
