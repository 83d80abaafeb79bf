package enrol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/identity"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
)

// serve answers one ?identity request with id and returns the response
// and what was logged.
func serve(t *testing.T, id *identity.Identity) (*httptest.ResponseRecorder, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/bob/repo/?"+restapi.IdentityQuery, nil)
	var logs bytes.Buffer
	q := repohttp.NewRequest(rec, r, slog.New(slog.NewTextHandler(&logs, nil)), repohttp.BodyRate{})
	p, err := restapi.ParsePath(r.URL.EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	q.Path = p
	Serve(q, id)
	return rec, logs.String()
}

// secretParts are the strings of id that must never leave the server.
func secretParts(id *identity.Identity) []string {
	return []string{id.MetaIdentity, strings.ToLower(id.MetaIdentity[len("AGE-SECRET-KEY-1"):]),
		base64.StdEncoding.EncodeToString(id.SignSeed), string(id.SignSeed)}
}

// TestServe: a client enrolling (R21) gets the server's public keys,
// whose fingerprint is the one `cairn server fingerprint` prints, and
// nothing of the secret halves.
func TestServe(t *testing.T) {
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := serve(t, id)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	if rec.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Fatalf("Content-Length %s for %d bytes", rec.Header().Get("Content-Length"), len(body))
	}
	var pub repository.ServerPublic
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pub); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if err := pub.Validate(); err != nil {
		t.Fatal(err)
	}
	want, _ := id.Fingerprint()
	if pub.Fingerprint() != want {
		t.Fatalf("served fingerprint %s, the server's is %s", pub.Fingerprint(), want)
	}
	for _, s := range secretParts(id) {
		if strings.Contains(body, s) {
			t.Fatalf("the answer holds a secret: %q", body)
		}
	}
}

// TestServeDamagedIdentity: an identity whose metadata key does not parse
// is answered with a 500 and the code clients read, not an empty key a
// client could pin, and the answer names no part of the key. (The server
// reads its identity through identity.Read, which refuses such a file at
// start, so this answer is a last line of defence.)
func TestServeDamagedIdentity(t *testing.T) {
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	good := id.MetaIdentity
	last := "q" // a bech32 character other than the last one: a bad checksum
	if strings.ToLower(good[len(good)-1:]) == last {
		last = "p"
	}
	id.MetaIdentity = strings.ToLower(good[:len(good)-1]) + last
	rec, logs := serve(t, id)
	if rec.Code != http.StatusInternalServerError || rec.Header().Get(restapi.HeaderError) != restapi.CodeInternal {
		t.Fatalf("status %d, code %q", rec.Code, rec.Header().Get(restapi.HeaderError))
	}
	body := rec.Body.String()
	if !strings.Contains(body, "server identity") || strings.Contains(body, "meta_recipient") {
		t.Fatalf("body %q", body)
	}
	if !strings.Contains(logs, "server identity") {
		t.Fatalf("not logged: %s", logs)
	}
	for _, s := range append(secretParts(id), good[len("AGE-SECRET-KEY-1"):len(good)-1]) {
		if strings.Contains(body, s) || strings.Contains(logs, s) {
			t.Fatalf("the answer or the log holds the secret key:\n%s\n%s", body, logs)
		}
	}
}
