package writerlist

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/identity"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/verify"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

const repoPath = "bob/repo"

var fastKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

// fixture is a handler over one repository on a mem backend, on a
// clock the test moves.
type fixture struct {
	t     *testing.T
	h     *Handler
	id    *identity.Identity
	be    *mem.Backend
	now   time.Time
	opens int   // calls of the handler's repository function
	err   error // what the repository function fails with, if set
	logs  bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, id: id, be: mem.New(), now: time.Unix(1_800_000_000, 0)}
	v := &verify.Verifier{
		Secrets: func() (verify.Secrets, error) {
			mine, err := id.MetaRecipient()
			return verify.Secrets{MetaIdentity: id.MetaIdentity, MetaRecipient: mine, SignSeed: id.SignSeed}, err
		},
		Log: slog.New(slog.NewTextHandler(&f.logs, nil)),
		Now: f.clock,
	}
	f.h = New(v, func(_ context.Context, repo string) (backend.Backend, error) {
		f.opens++
		if repo != repoPath {
			t.Errorf("opened %q, want %q", repo, repoPath)
		}
		if f.err != nil {
			return nil, f.err
		}
		return f.be, nil
	}, f.clock)
	return f
}

func (f *fixture) clock() time.Time { return f.now }

// initCairn makes the repository a server-mode cairn repository of this
// server, as `cairn init` against it does.
func (f *fixture) initCairn() *repository.Repository {
	f.t.Helper()
	pub, err := f.id.Public()
	if err != nil {
		f.t.Fatal(err)
	}
	repo, _, err := repository.InitServerMode(context.Background(), f.be, []byte("pw"), pub,
		repository.Options{KDF: &fastKDF, CacheDir: f.t.TempDir(), Now: f.clock})
	if err != nil {
		f.t.Fatal(err)
	}
	return repo
}

// signed is a writer list request of key for the repository, at the
// fixture's time.
func (f *fixture) signed(key ed25519.PrivateKey) []byte {
	pub := key.Public().(ed25519.PublicKey)
	req := restapi.WriterListRequest{Writer: pub, Time: f.now.UTC()}
	req.Sig = ed25519.Sign(key, restapi.WriterListMessage(repoPath, req.Time, pub))
	b, err := json.Marshal(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// serve answers one request with body from client bob, then moves the
// clock past the per-client limit.
func (f *fixture) serve(body []byte) *httptest.ResponseRecorder {
	f.t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/"+repoPath+"/?"+restapi.WriterListQuery, bytes.NewReader(body))
	q := repohttp.NewRequest(rec, r, slog.New(slog.NewTextHandler(&f.logs, nil)), repohttp.BodyRate{Grace: time.Minute, Idle: time.Minute, MinRate: 1})
	p, err := restapi.ParsePath(r.URL.EscapedPath())
	if err != nil {
		f.t.Fatal(err)
	}
	q.Path = p
	f.h.Serve(q, "bob")
	f.now = f.now.Add(Every)
	return rec
}

func expect(t *testing.T, rec *httptest.ResponseRecorder, status int, code, msg string) {
	t.Helper()
	if rec.Code != status || rec.Header().Get(restapi.HeaderError) != code || !strings.Contains(rec.Body.String(), msg) {
		t.Fatalf("answer %d %q %q, want %d %q with %q", rec.Code, rec.Header().Get(restapi.HeaderError), rec.Body.String(), status, code, msg)
	}
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestMalformedRequests: a body that is not a writer list request, or
// larger than one can be, is refused with 400 before any repository is
// opened; one not signed by the key it names gets 403 (R16: tenant
// credentials alone never get a writer's list).
func TestMalformedRequests(t *testing.T) {
	f := newFixture(t)
	f.initCairn()
	for name, body := range map[string][]byte{
		"empty":    nil,
		"not json": []byte("writer=me"),
		"wrong":    []byte(`{"writer": 12}`),
		// A signature field past the 4 KiB read: truncated, so refused.
		"too large": []byte(`{"sig":"` + strings.Repeat("A", 8<<10) + `"}`),
	} {
		expect(t, f.serve(body), http.StatusBadRequest, restapi.CodeBadRequest, "writer list request")
		if f.opens != 0 {
			t.Fatalf("%s: a malformed request opened the repository", name)
		}
	}
	key := newKey(t)
	forged := f.signed(key)
	var req restapi.WriterListRequest
	if err := json.Unmarshal(forged, &req); err != nil {
		t.Fatal(err)
	}
	req.Writer = newKey(t).Public().(ed25519.PublicKey) // another writer's list, this key's signature
	forged, _ = json.Marshal(req)
	expect(t, f.serve(forged), http.StatusForbidden, restapi.CodeForbidden, "not signed by the writer key it names")
	if f.opens != 0 {
		t.Fatal("a forged request opened the repository")
	}
}

// TestTooOften: a second request within Every of the first, whatever it
// holds, is refused with 429 and a Retry-After, and reads nothing.
func TestTooOften(t *testing.T) {
	f := newFixture(t)
	f.initCairn()
	key := newKey(t)
	if rec := f.serve(f.signed(key)); rec.Code != http.StatusOK {
		t.Fatalf("first request: %d %s", rec.Code, rec.Body)
	}
	f.now = f.now.Add(-Every / 2) // serve moved it on by Every
	opens := f.opens
	rec := f.serve(f.signed(key))
	expect(t, rec, http.StatusTooManyRequests, restapi.CodeTooOften, "once every")
	if rec.Header().Get("Retry-After") == "" || f.opens != opens {
		t.Fatalf("Retry-After %q, repository opened %d times", rec.Header().Get("Retry-After"), f.opens-opens)
	}
}

// TestNoList: a repository that does not exist, has no config yet or is
// a restic repository has no writer list (404, named); storage that
// fails is a 500 that says so, not an empty list a writer would take
// for "no snapshots" and upload everything again against.
func TestNoList(t *testing.T) {
	key := newKey(t)

	f := newFixture(t)
	f.err = fmt.Errorf("no repository %s: %w", repoPath, backend.ErrNotFound) // as storage.Repos.Get says it
	expect(t, f.serve(f.signed(key)), http.StatusNotFound, restapi.CodeNotFound, "no repository bob/repo")

	f = newFixture(t)
	expect(t, f.serve(f.signed(key)), http.StatusNotFound, restapi.CodeNotFound, "bob/repo is not a cairn repository")

	f = newFixture(t)
	if err := f.be.Save(context.Background(), backend.Handle{Type: backend.Config, Name: "config"}, backend.NewByteReader([]byte("restic config"))); err != nil {
		t.Fatal(err)
	}
	expect(t, f.serve(f.signed(key)), http.StatusNotFound, restapi.CodeNotFound, "bob/repo is not a cairn repository")

	f = newFixture(t)
	f.err = errors.New("storage unreachable")
	expect(t, f.serve(f.signed(key)), http.StatusInternalServerError, restapi.CodeInternal, "storage unreachable")

	f = newFixture(t)
	f.initCairn()
	f.be.SetFault(func(op string, h backend.Handle) error {
		if h.Type == backend.Config {
			return errors.New("disk read error")
		}
		return nil
	})
	expect(t, f.serve(f.signed(key)), http.StatusInternalServerError, restapi.CodeInternal, "disk read error")
}

// TestConfigOfAnotherServer: a cairn repository whose config seals
// metadata to another server (copied here from elsewhere) gets a clear
// 500, never a list read with keys that do not fit.
func TestConfigOfAnotherServer(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	other.be = f.be
	other.initCairn()
	expect(t, f.serve(f.signed(newKey(t))), http.StatusInternalServerError, restapi.CodeInternal, "not sealed to this server")
}

// TestWriterListScope: a writer's list holds its own statements and its
// last snapshot's refs, another key's list is empty (R16); storage that
// fails while the list is read is a 500, not a partial or empty list.
func TestWriterListScope(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	repo := f.initCairn()
	key := repo.Keys().Sign

	rec := f.serve(f.signed(key))
	var l restapi.WriterList
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &l) != nil || len(l.Snapshots) != 0 || len(l.LastRefs) != 0 {
		t.Fatalf("list before any snapshot: %d %s", rec.Code, rec.Body)
	}

	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := s.SaveBlob(ctx, blob.Data, []byte("content"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Commit(ctx, repository.CommitInput{Root: id, Refs: []snapshot.Ref{{Type: blob.Data, ID: id}},
		Meta: snapshot.MetaHeader{HostLabel: repo.HostLabel("host")}, Time: repo.Now()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	rec = f.serve(f.signed(key))
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &l) != nil {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	if len(l.Snapshots) != 1 || l.Snapshots[0].ID != snap.ID.String() || l.Snapshots[0].Seq != 1 {
		t.Fatalf("snapshots %+v, want %s", l.Snapshots, snap.ID)
	}
	want := append([]byte{byte(blob.Data)}, id[:]...)
	if !bytes.Equal(l.LastRefs, want) {
		t.Fatalf("last refs %x, want %x", l.LastRefs, want)
	}
	if !strings.Contains(f.logs.String(), "writer snapshot list") {
		t.Fatal("not logged")
	}

	rec = f.serve(f.signed(newKey(t)))
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &l) != nil || len(l.Snapshots) != 0 || len(l.LastRefs) != 0 {
		t.Fatalf("another key's list: %d %s", rec.Code, rec.Body)
	}

	for _, typ := range []backend.FileType{backend.Snapshots, backend.Index} {
		f.be.SetFault(func(op string, h backend.Handle) error {
			if op == mem.OpList && h.Type == typ {
				return errors.New("cannot list " + string(typ))
			}
			return nil
		})
		rec = f.serve(f.signed(key))
		expect(t, rec, http.StatusInternalServerError, restapi.CodeInternal, "cannot list "+string(typ))
		if b, _ := io.ReadAll(rec.Body); bytes.Contains(b, []byte(`"snapshots"`)) {
			t.Fatalf("a partial list was sent: %s", b)
		}
	}
}
