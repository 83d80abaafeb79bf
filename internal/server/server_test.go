package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/servertest"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// logBuffer collects the server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type testServer struct {
	t    *testing.T
	url  string
	srv  *Server
	data *datadir.Data
	logs *logBuffer
	now  time.Time
	mu   sync.Mutex
}

const pwAlice, pwBob = "alice-password", "bob-password"

func startTest(t *testing.T, opts Options) *testServer {
	t.Helper()
	ctx := context.Background()
	data, err := datadir.Init(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, data: data, logs: &logBuffer{}, now: time.Unix(1_800_000_000, 0)}
	for _, c := range []struct {
		name, pw string
		quota    int64
	}{{"alice", pwAlice, 100_000}, {"bob", pwBob, 0}} {
		if err := data.NewClient(ctx, state.Client{Name: c.name, Quota: c.quota, AppendOnly: true, MinInterval: time.Hour}, []byte(c.pw)); err != nil {
			t.Fatal(err)
		}
	}
	opts.Logger = slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Now = func() time.Time { ts.mu.Lock(); defer ts.mu.Unlock(); return ts.now }
	if opts.MaxUpload == 0 {
		opts.MaxUpload = 50_000
	}
	srv, err := New(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.url = "http://" + servertest.Serve(t, srv, func() { data.Close() })
	ts.srv = srv
	return ts
}

func (ts *testServer) advance(d time.Duration) {
	ts.mu.Lock()
	ts.now = ts.now.Add(d)
	ts.mu.Unlock()
}

// do sends a raw request; path is sent as is, unescaped and uncleaned.
func (ts *testServer) do(user, pw, method, path string, body []byte) (int, string, string) {
	ts.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+"/", rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.URL.Opaque = path // bypass Go's own path handling
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(restapi.HeaderError), string(b)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// snapshotTree returns every file under the data directory's repos with its
// bytes, to prove a refused request changed nothing.
func (ts *testServer) snapshotTree() map[string]string {
	out := map[string]string{}
	root := filepath.Join(ts.data.Dir, datadir.ReposDir)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			out[strings.TrimPrefix(p, root)] = string(b)
		}
		return nil
	})
	return out
}

func sameTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestHostileClients(t *testing.T) {
	ts := startTest(t, Options{})
	for _, r := range []string{"/alice/repo/", "/bob/repo/"} {
		if st, _, body := ts.do("alice", pwAlice, "POST", r+"?create=true", nil); r == "/alice/repo/" && st != 200 {
			t.Fatalf("create: %d %s", st, body)
		}
	}
	if st, _, _ := ts.do("bob", pwBob, "POST", "/bob/repo/?create=true", nil); st != 200 {
		t.Fatalf("bob create: %d", st)
	}
	data := random(1000)
	name := backend.NameOf(data)
	if st, _, b := ts.do("alice", pwAlice, "POST", "/alice/repo/data/"+name, data); st != 200 {
		t.Fatalf("upload: %d %s", st, b)
	}
	bobData := random(500)
	bobName := backend.NameOf(bobData)
	if st, _, _ := ts.do("bob", pwBob, "POST", "/bob/repo/keys/"+bobName, bobData); st != 200 {
		t.Fatalf("bob upload: %d", st)
	}
	before := ts.snapshotTree()
	big := random(60_000)
	other := random(1000)
	tests := []struct {
		name         string
		user, pw     string
		method, path string
		body         []byte
		status       int
		code         string
	}{
		{"no credentials", "", "", "GET", "/alice/repo/data/" + name, nil, 401, "auth"},
		{"wrong password", "alice", "nope", "GET", "/alice/repo/data/" + name, nil, 401, "auth"},
		{"unknown client", "mallory", "x", "GET", "/alice/repo/data/" + name, nil, 401, "auth"},
		{"bob's credentials for alice's file", "bob", pwBob, "GET", "/alice/repo/data/" + name, nil, 403, "forbidden"},
		{"alice reads bob's key", "alice", pwAlice, "GET", "/bob/repo/keys/" + bobName, nil, 403, "forbidden"},
		{"alice lists bob's keys", "alice", pwAlice, "GET", "/bob/repo/keys/", nil, 403, "forbidden"},
		{"alice writes into bob's repo", "alice", pwAlice, "POST", "/bob/repo/data/" + backend.NameOf(other), other, 403, "forbidden"},
		{"alice deletes bob's key", "alice", pwAlice, "DELETE", "/bob/repo/keys/" + bobName, nil, 403, "forbidden"},
		{"root listing", "alice", pwAlice, "GET", "/keys/", nil, 403, "forbidden"},
		{"delete in append-only", "alice", pwAlice, "DELETE", "/alice/repo/data/" + name, nil, 403, "append-only"},
		{"delete config in append-only", "alice", pwAlice, "DELETE", "/alice/repo/config", nil, 403, "append-only"},
		{"overwrite", "alice", pwAlice, "POST", "/alice/repo/data/" + name, data, 403, "exists"},
		{"overwrite with other bytes", "alice", pwAlice, "POST", "/alice/repo/data/" + name, other, 403, "exists"},
		{"hash mismatch", "alice", pwAlice, "POST", "/alice/repo/index/" + backend.NameOf(data[:999]), other, 400, "hash-mismatch"},
		{"oversize", "alice", pwAlice, "POST", "/alice/repo/data/" + backend.NameOf(big), big, 413, "too-large"},
		{"dotdot into bob", "alice", pwAlice, "GET", "/alice/../bob/repo/keys/" + bobName, nil, 404, "invalid-name"},
		{"dotdot in repo", "alice", pwAlice, "POST", "/alice/repo/../../bob/repo/keys/" + backend.NameOf(other), other, 404, "invalid-name"},
		{"encoded slash", "alice", pwAlice, "GET", "/alice%2f..%2fbob/repo/keys/" + bobName, nil, 404, "invalid-name"},
		{"encoded dots", "alice", pwAlice, "GET", "/alice/%2e%2e/bob/repo/keys/" + bobName, nil, 404, "invalid-name"},
		{"absolute path", "alice", pwAlice, "GET", "//etc/passwd", nil, 404, "invalid-name"},
		{"absolute in repo", "alice", pwAlice, "GET", "/alice/repo//etc/passwd", nil, 404, "invalid-name"},
		{"backslash", "alice", pwAlice, "GET", "/alice/..\\bob/repo/keys/" + bobName, nil, 404, "invalid-name"},
		{"name not hex", "alice", pwAlice, "POST", "/alice/repo/data/..%2f..%2fx", other, 404, "invalid-name"},
		{"shard path", "alice", pwAlice, "GET", "/alice/repo/data/" + name[:2] + "/" + name, nil, 404, "invalid-name"},
		{"missing repo", "alice", pwAlice, "POST", "/alice/none/data/" + backend.NameOf(other), other, 404, "not-found"},
		{"create without true", "alice", pwAlice, "POST", "/alice/x/?create=1", nil, 400, "bad-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, code, body := ts.do(tt.user, tt.pw, tt.method, tt.path, tt.body)
			if st != tt.status || code != tt.code {
				t.Fatalf("got %d %q (%s), want %d %q", st, code, strings.TrimSpace(body), tt.status, tt.code)
			}
			if strings.Contains(body, string(bobData)) || strings.Contains(body, string(data)) {
				t.Fatal("a refusal carried stored bytes")
			}
			if !sameTree(before, ts.snapshotTree()) {
				t.Fatal("a refused request changed what is stored")
			}
		})
	}
	logs := ts.logs.String()
	if n := strings.Count(logs, "msg=refused"); n < len(tests) {
		t.Fatalf("%d refusals logged, want %d:\n%s", n, len(tests), logs)
	}
	if !strings.Contains(logs, "client=alice repo=alice/repo status=403 code=append-only") {
		t.Fatalf("refusal log lacks client, repository or code:\n%s", logs)
	}
}

func TestLocksDeletableInAppendOnly(t *testing.T) {
	ts := startTest(t, Options{})
	ts.do("alice", pwAlice, "POST", "/alice/r/?create=true", nil)
	lock := random(100)
	p := "/alice/r/locks/" + backend.NameOf(lock)
	if st, _, _ := ts.do("alice", pwAlice, "POST", p, lock); st != 200 {
		t.Fatal(st)
	}
	if st, _, _ := ts.do("alice", pwAlice, "DELETE", p, nil); st != 200 {
		t.Fatalf("delete lock: %d", st)
	}
	// restic needs a repeated delete to succeed.
	if st, _, _ := ts.do("alice", pwAlice, "DELETE", p, nil); st != 200 {
		t.Fatalf("repeated delete: %d", st)
	}
}

func TestQuotaAndInterval(t *testing.T) {
	ts := startTest(t, Options{})
	ts.do("alice", pwAlice, "POST", "/alice/r/?create=true", nil)
	var stored int
	for i := 0; ; i++ {
		b := random(30_000)
		st, code, body := ts.do("alice", pwAlice, "POST", "/alice/r/data/"+backend.NameOf(b), b)
		if st == 507 {
			if code != "quota" || !strings.Contains(body, "quota exceeded: client alice stores") {
				t.Fatalf("quota refusal: %q %s", code, body)
			}
			break
		}
		if st != 200 || i > 5 {
			t.Fatalf("upload %d: %d %s", i, st, body)
		}
		stored += len(b)
	}
	if stored != 90_000 {
		t.Fatalf("stored %d bytes before the 100000-byte quota refused, want 90000", stored)
	}
	snap := func() int {
		b := random(200)
		st, _, _ := ts.do("bob", pwBob, "POST", "/bob/r/snapshots/"+backend.NameOf(b), b)
		return st
	}
	ts.do("bob", pwBob, "POST", "/bob/r/?create=true", nil)
	if st := snap(); st != 200 {
		t.Fatal(st)
	}
	// Not a cairn repository (no cairn config): a restic client's, which
	// gets 403, not 429, so that it gives up at once (a cairn client's
	// 429 is in TestHabitsServerRefusals).
	if st := snap(); st != http.StatusForbidden {
		t.Fatalf("second snapshot within the interval: %d", st)
	}
	ts.advance(61 * time.Minute)
	if st := snap(); st != 200 {
		t.Fatalf("snapshot after the interval: %d", st)
	}
	c, err := ts.data.State.Client(context.Background(), "bob")
	if err != nil || c.Snapshots != 2 || !c.LastSnapshot.Equal(ts.now) {
		t.Fatalf("bob: %+v %v", c, err)
	}
}

func TestDisabledAndRemoved(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	ts.do("alice", pwAlice, "POST", "/alice/r/?create=true", nil)
	if err := ts.data.State.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := ts.do("alice", pwAlice, "GET", "/alice/r/keys/", nil); st != 403 {
		t.Fatalf("disabled: %d", st)
	}
	ts.data.State.SetDisabled(ctx, "alice", false)
	if st, _, _ := ts.do("alice", pwAlice, "GET", "/alice/r/keys/", nil); st != 200 {
		t.Fatalf("enabled: %d", st)
	}
	hash, _ := datadir.HashPassword([]byte("a-new-password"))
	ts.data.State.SetHash(ctx, "alice", hash)
	if st, _, _ := ts.do("alice", pwAlice, "GET", "/alice/r/keys/", nil); st != 401 {
		t.Fatalf("old password after passwd: %d", st)
	}
	if err := ts.data.Remove(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := ts.do("alice", "a-new-password", "GET", "/alice/r/keys/", nil); st != 401 {
		t.Fatalf("removed client: %d", st)
	}
}

func TestProtocolDetails(t *testing.T) {
	ts := startTest(t, Options{})
	ts.do("bob", pwBob, "POST", "/bob/r/?create=true", nil)
	req := func(method, path, accept, rng string) *http.Response {
		r, _ := http.NewRequest(method, ts.url+path, nil)
		r.SetBasicAuth("bob", pwBob)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if rng != "" {
			r.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, typ := range []string{"data", "keys", "locks", "snapshots", "index"} {
		resp := req("GET", "/bob/r/"+typ+"/", restapi.MediaV2, "")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != restapi.MediaV2 || string(b) != "[]" {
			t.Fatalf("empty %s list: %d %q %s", typ, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	blob := random(1000)
	n := backend.NameOf(blob)
	ts.do("bob", pwBob, "POST", "/bob/r/data/"+n, blob)
	if resp := req("GET", "/bob/r/data/", "", ""); resp.Header.Get("Content-Type") != restapi.MediaV1 {
		t.Fatal("v1 list")
	} else if b, _ := io.ReadAll(resp.Body); string(b) != fmt.Sprintf("[%q]", n) {
		t.Fatalf("v1 list: %s", b)
	}
	if resp := req("HEAD", "/bob/r/data/"+n, "", ""); resp.StatusCode != 200 || resp.ContentLength != 1000 {
		t.Fatalf("HEAD: %d %d", resp.StatusCode, resp.ContentLength)
	}
	resp := req("GET", "/bob/r/data/"+n, "", "bytes=10-19")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 206 || !bytes.Equal(b, blob[10:20]) || resp.Header.Get("Content-Range") != "bytes 10-19/1000" {
		t.Fatalf("range: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	if resp := req("GET", "/bob/r/data/"+n, "", "bytes=1000-"); resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */1000" {
		t.Fatalf("unsatisfiable: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	// RFC 9110: a suffix range is the last N bytes; a malformed range is
	// refused with 416, another unit or several ranges get the whole file.
	resp = req("GET", "/bob/r/data/"+n, "", "bytes=-24")
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 206 || !bytes.Equal(b, blob[976:]) || resp.Header.Get("Content-Range") != "bytes 976-999/1000" {
		t.Fatalf("suffix range: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
	}
	if resp := req("GET", "/bob/r/data/"+n, "", "bytes=9-3"); resp.StatusCode != 416 {
		t.Fatalf("malformed range: %d", resp.StatusCode)
	}
	for _, h := range []string{"items=0-3", "bytes=0-1,5-6"} {
		resp := req("GET", "/bob/r/data/"+n, "", h)
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !bytes.Equal(b, blob) {
			t.Fatalf("%q: %d, %d bytes", h, resp.StatusCode, len(b))
		}
	}
	if resp := req("PUT", "/bob/r/data/"+n, "", ""); resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if resp := req("HEAD", "/bob/r/config", "", ""); resp.StatusCode != 404 {
		t.Fatalf("missing config: %d", resp.StatusCode)
	}
	if resp := req("GET", "/healthz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := datadir.Init(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := d.Identity.Fingerprint()
	if err := d.NewClient(ctx, state.Client{Name: "carol", Quota: 5, AppendOnly: true}, []byte("carol-password")); err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1_700_000_000, 0)
	d.State.RecordSnapshot(ctx, "carol", when)
	d.Close()
	if _, err := datadir.Init(ctx, dir); err == nil {
		t.Fatal("init over an existing server")
	}
	d, err = datadir.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := d.State.Client(ctx, "carol")
	if err != nil || c.Quota != 5 || !c.AppendOnly || !c.LastSnapshot.Equal(when) {
		t.Fatalf("after reopen: %+v %v", c, err)
	}
	if fp2, _ := d.Identity.Fingerprint(); fp2 != fp || !strings.HasPrefix(fp, "SHA256:") {
		t.Fatalf("fingerprint %s then %s", fp, fp2)
	}
	if err := d.NewClient(ctx, state.Client{Name: "../x"}, []byte("password-long")); err == nil {
		t.Fatal("bad client name accepted")
	}
}

// A data file of some MiB read whole and in ranges at odd offsets: the
// bytes, lengths and the response's byte count (which the log line
// reports) are right when the local storage hands the file to the
// connection (sendfile) rather than copying it through the server.
func TestReadLargeFileAndRanges(t *testing.T) {
	ts := startTest(t, Options{MaxUpload: 4 << 20})
	ts.do("bob", pwBob, "POST", "/bob/r/?create=true", nil)
	data := random(3<<20 + 12345)
	n := backend.NameOf(data)
	if st, code, msg := ts.do("bob", pwBob, "POST", "/bob/r/data/"+n, data); st != 200 {
		t.Fatalf("upload: %d %s %s", st, code, msg)
	}
	for _, tc := range []struct {
		rng        string
		start, end int // of data, end exclusive
	}{
		{"", 0, len(data)},
		{"bytes=700001-1748576", 700001, 1748577},
		{"bytes=-100000", len(data) - 100000, len(data)},
		{"bytes=513-", 513, len(data)},
		{"bytes=100-611", 100, 612},
	} {
		for range 2 { // a second request on the kept-alive connection
			r, _ := http.NewRequest("GET", ts.url+"/bob/r/data/"+n, nil)
			r.SetBasicAuth("bob", pwBob)
			if tc.rng != "" {
				r.Header.Set("Range", tc.rng)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.ContentLength != int64(tc.end-tc.start) || !bytes.Equal(b, data[tc.start:tc.end]) {
				t.Fatalf("GET %q: %d, %d bytes of %d announced, err %v; bytes right: %v",
					tc.rng, resp.StatusCode, len(b), resp.ContentLength, err, bytes.Equal(b, data[tc.start:tc.end]))
			}
		}
	}
	if !strings.Contains(ts.logs.String(), fmt.Sprintf("bytes_out=%d ", len(data))) {
		t.Errorf("no request logged with bytes_out=%d", len(data))
	}
}
