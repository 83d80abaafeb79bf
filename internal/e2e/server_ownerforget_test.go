//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/trust"
)

// Owner-driven deletion on a server repository (docs/retention.md, "On a
// cairn server"): the owner's `cairn forget` and `cairn prune` against a
// `rest:` repository become owner-signed requests the server carries out
// with receipts and tombstones; a writer key, a replayed, moved or
// altered request is refused.

// ownerRequests is a recording proxy in front of the server: it keeps
// the body of every owner request passing through.
type ownerRequests struct {
	mu     sync.Mutex
	bodies [][]byte
	addr   string
}

func newOwnerRequests(t *testing.T, serverAddr string) *ownerRequests {
	t.Helper()
	o := &ownerRequests{}
	target, _ := url.Parse("http://" + serverAddr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == restapi.OwnerRequestQuery {
			b, _ := io.ReadAll(r.Body)
			o.mu.Lock()
			o.bodies = append(o.bodies, b)
			o.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	o.addr = strings.TrimPrefix(ts.URL, "http://")
	return o
}

func (o *ownerRequests) last(t *testing.T) []byte {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.bodies) == 0 {
		t.Fatal("no owner request went through the proxy")
	}
	return bytes.Clone(o.bodies[len(o.bodies)-1])
}

// postOwnerRequest sends body to bob's repository repo as raw HTTP and
// returns the status, the X-Cairn-Error code and the message.
func (s *serverEnv) postOwnerRequest(t *testing.T, repo string, body []byte) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/bob/"+repo+"/?"+restapi.OwnerRequestQuery, bytes.NewReader(body))
	req.SetBasicAuth("bob", "bob-secret-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(restapi.HeaderError), string(msg)
}

// countFiles counts the files below dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// signOwnerRequest seals req for the repository as it is now: its ID,
// the head of its stored snapshots, a fresh nonce; signed by key.
func signOwnerRequest(t *testing.T, r *repository.Repository, req trust.OwnerRequest, key ed25519.PrivateKey) []byte {
	t.Helper()
	names, err := listSnapshotNames(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	id := r.Keys().RepoID
	nonce := make([]byte, 16)
	rand.Read(nonce)
	req.RepoID, req.Head, req.Nonce = hex.EncodeToString(id[:]), trust.SnapshotHead(names), hex.EncodeToString(nonce)
	if req.Time.IsZero() {
		req.Time = time.Now().UTC()
	}
	b, err := trust.SealOwnerRequest(&req, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOwnerForgetOnServer(t *testing.T) {
	h := newHostile(t)
	repoDir := filepath.Join(h.data, "repos", "bob", "laptop")
	var ids []string
	for i := range 4 {
		writeRandom(t, filepath.Join(h.src, fmt.Sprintf("f%d", i)), 300<<10)
		args := []string{"-r", h.repo, "backup", h.src}
		if i == 1 || i == 2 {
			args = append(args, "--tag", "mid")
		}
		h.ok(args...)
	}
	for _, sn := range h.snapshotsOf(h.repo) {
		ids = append(ids, sn.ID)
	}
	if len(ids) != 4 {
		t.Fatalf("%d snapshots, want 4", len(ids))
	}

	// Forget one by ID, through a recording proxy.
	rec := newOwnerRequests(t, h.addr)
	viaProxy := "rest:http://bob:bob-secret-pw@" + rec.addr + "/bob/laptop"
	out := h.ok("-r", viaProxy, "forget", ids[0][:8]).stdout
	if !strings.Contains(out, "remove "+ids[0][:8]) || !strings.Contains(out, "removed 1 of 1 snapshot") {
		t.Fatalf("forget by ID printed:\n%s", out)
	}
	executed := rec.last(t)
	if n := len(h.snapshotsOf(h.repo)); n != 3 {
		t.Fatalf("%d snapshots after forgetting one, want 3", n)
	}
	if n := countFiles(t, filepath.Join(repoDir, "tombstones")); n != 1 {
		t.Fatalf("%d tombstones, want 1", n)
	}

	// A replay of a request carried out: the snapshots changed since.
	status, code, msg := h.postOwnerRequest(t, "laptop", executed)
	if status != http.StatusConflict || code != restapi.CodeStale {
		t.Fatalf("replayed request: %d %s %s", status, code, msg)
	}

	// A dry run changes nothing; sent again it is a replay.
	out = h.ok("-r", viaProxy, "forget", "--keep-last", "1", "--dry-run").stdout
	if !strings.Contains(out, "would remove 2 of 3 snapshots") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	dry := rec.last(t)
	status, code, msg = h.postOwnerRequest(t, "laptop", dry)
	if status != http.StatusConflict || code != restapi.CodeReplayed {
		t.Fatalf("replayed dry run: %d %s %s", status, code, msg)
	}

	// The same request for another repository of the tenant.
	other := h.url("bob", "other")
	h.ok("-r", other, "init", "--server-fingerprint", h.fingerprint(t))
	status, code, msg = h.postOwnerRequest(t, "other", dry)
	if status != http.StatusForbidden || code != restapi.CodeWrongRepository {
		t.Fatalf("request moved to another repository: %d %s %s", status, code, msg)
	}

	// Altered in transit: keep the last 9, not 1.
	tampered := bytes.Replace(dry, []byte(`"last":1`), []byte(`"last":9`), 1)
	if bytes.Equal(tampered, dry) {
		t.Fatalf("no keep rule to alter in %q", dry)
	}
	status, code, msg = h.postOwnerRequest(t, "laptop", tampered)
	if status != http.StatusForbidden || code != restapi.CodeBadSignature {
		t.Fatalf("altered request: %d %s %s", status, code, msg)
	}

	// A writer key: the CLI refuses it, and a request it signs is refused
	// by the server.
	writerEnv := map[string]string{"CAIRN_PASSWORD_FILE": filepath.Join(h.dir, "writer.pass")}
	r := h.runWith(writerEnv, "-r", h.repo, "--key-file", h.writerKey, "forget", "--keep-last", "1")
	expectExit(t, r, 11, "needs the owner or server key; this is a writer key")
	w := h.attacker(t)
	signed := signOwnerRequest(t, w, trust.OwnerRequest{Action: trust.ActionForget, Snapshots: []string{ids[1]}}, w.Keys().Sign)
	status, code, msg = h.postOwnerRequest(t, "laptop", signed)
	if status != http.StatusForbidden || code != restapi.CodeNotOwner || !strings.Contains(msg, "writer key") {
		t.Fatalf("writer-signed request: %d %s %s", status, code, msg)
	}

	// The owner's key, but an old request.
	owner := h.owner(t)
	old := signOwnerRequest(t, owner, trust.OwnerRequest{Action: trust.ActionForget, Snapshots: []string{ids[1]},
		Time: time.Now().Add(-time.Hour).UTC()}, owner.Keys().OwnerSign)
	status, code, msg = h.postOwnerRequest(t, "laptop", old)
	if status != http.StatusForbidden || code != restapi.CodeExpired {
		t.Fatalf("old request: %d %s %s", status, code, msg)
	}
	if n := len(h.snapshotsOf(h.repo)); n != 3 {
		t.Fatalf("%d snapshots after refused requests, want 3", n)
	}

	// A policy restricted by a filter (evaluated on the client) sees only
	// the snapshots it matches: of the two tagged, the older goes.
	out = h.ok("-r", h.repo, "forget", "--tag", "mid", "--keep-last", "1").stdout
	if !strings.Contains(out, "remove "+ids[1][:8]) || !strings.Contains(out, "keep   "+ids[2][:8]) || !strings.Contains(out, "removed 1 of 2 snapshots") {
		t.Fatalf("forget --tag mid --keep-last 1 printed:\n%s", out)
	}

	// Forget by policy, then prune now: the server removes one more,
	// tombstone first, and deletes their data.
	var fj struct {
		Type      string `json:"message_type"`
		Removed   int    `json:"removed"`
		Snapshots []struct {
			ID     string `json:"id"`
			Action string `json:"action"`
		} `json:"snapshots"`
	}
	lastJSON(t, h.ok("-r", h.repo, "forget", "--keep-last", "1", "--json").stdout, &fj)
	if fj.Type != "forget" || fj.Removed != 1 || len(fj.Snapshots) != 2 {
		t.Fatalf("forget by policy: %+v", fj)
	}
	left := h.snapshotsOf(h.repo)
	if len(left) != 1 || left[0].ID != ids[3] {
		t.Fatalf("left %+v, want only %s", left, ids[3][:8])
	}
	if n := countFiles(t, filepath.Join(repoDir, "tombstones")); n != 3 {
		t.Fatalf("%d tombstones, want 3", n)
	}
	packsBefore := countFiles(t, filepath.Join(repoDir, "data"))
	var pj struct {
		Type    string   `json:"message_type"`
		Deleted []string `json:"deleted"`
	}
	lastJSON(t, h.ok("-r", h.repo, "prune", "--grace", "0", "--json").stdout, &pj)
	if pj.Type != "summary" || len(pj.Deleted) == 0 {
		t.Fatalf("prune on the server: %+v", pj)
	}
	if after := countFiles(t, filepath.Join(repoDir, "data")); after >= packsBefore {
		t.Fatalf("data files: %d before prune, %d after", packsBefore, after)
	}
	// What is left is whole, and the owner's check accepts the gaps:
	// each has its tombstone (R17).
	h.ok("-r", h.repo, "check", "--read-data")
	h.restoreLatest(t, contentHashes(t, h.src))
	if !strings.Contains(h.log(), "owner request") {
		t.Fatal("the server did not log the owner requests")
	}
}

// owner opens the repository with the owner's key file as the owner's
// machine keeps it.
func (h *hostile) owner(t *testing.T) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	be, err := location.Open(ctx, h.repo, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	held, _ := filepath.Glob(filepath.Join(h.vars["XDG_CONFIG_HOME"], "cairn", "keys", "*.key"))
	for _, k := range held {
		if r, err := repository.OpenKeyFile(ctx, be, k, []byte("correct horse"), repository.Options{CacheDir: t.TempDir()}); err == nil {
			return r
		}
	}
	t.Fatalf("no owner key file of the repository among %v", held)
	return nil
}

func listSnapshotNames(ctx context.Context, r *repository.Repository) ([]string, error) {
	var names []string
	err := r.Backend().List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	return names, err
}
