package rest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// TestWriterList: the request is signed over the repository path and time
// with the writer's key and carries the credentials; the answer's blob-ID
// set decodes sorted; a malformed set and a refusal are errors.
func TestWriterList(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	answer := []byte{2, 9, 9}
	answer = append(append(answer, make([]byte, 30)...), append([]byte{1, 3}, make([]byte, 31)...)...)
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		var req restapi.WriterListRequest
		json.NewDecoder(r.Body).Decode(&req)
		if r.Method != http.MethodPost || r.URL.Path != "/alice/laptop/" || r.URL.RawQuery != restapi.WriterListQuery || u != "alice" || p != "pw" ||
			!req.Time.Equal(now) || !ed25519.Verify(req.Writer, restapi.WriterListMessage("alice/laptop", req.Time, req.Writer), req.Sig) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if status != http.StatusOK {
			w.Header().Set(restapi.HeaderError, restapi.CodeTooOften)
			http.Error(w, "too often", status)
			return
		}
		json.NewEncoder(w).Encode(restapi.WriterList{Snapshots: []restapi.WriterStatement{{Seq: 1}}, LastRefs: answer})
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/alice/laptop/")
	u.User = url.UserPassword("alice", "pw")
	be, err := newBackend(Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	l, err := be.WriterList(context.Background(), priv, now)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := WriterRefs(l)
	if err != nil || len(l.Snapshots) != 1 || len(refs) != 2 || refs[0].Type != blob.Data || refs[0].ID[0] != 3 || refs[1].Type != blob.Tree {
		t.Fatalf("refs %v %v", refs, err)
	}
	answer = answer[:40]
	if _, err := be.WriterList(context.Background(), priv, now); err == nil {
		t.Fatal("a blob-ID set of 40 bytes decoded")
	}
	status = http.StatusTooManyRequests
	if _, err := be.WriterList(context.Background(), priv, now); !errors.Is(err, restapi.ErrRefused) {
		t.Fatalf("refused request: %v", err)
	}
}
