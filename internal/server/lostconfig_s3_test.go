package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/minioserver"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// post uploads body to path on s as alice and returns the status, the
// error code and the body of the answer.
func (s *s3Server) post(t *testing.T, path string, body []byte) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	req.SetBasicAuth("alice", pwAlice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(restapi.HeaderError), string(b)
}

// TestLostConfigNotSetByClientOnS3: on S3 storage, with several servers
// in front of one bucket, a repository that holds data and lost its
// config takes no config from a client, whichever server it asks: one
// that has the repository open (its backend kept since the init) refuses
// the config with 403 before reading it; one that opens it now finds no
// repository for requests (as local storage), refuses a create there
// too, and only its audit opens it. Nothing is stored. An init whose
// files arrive through several servers, the config last, still works.
// (Threat model R3.)
func TestLostConfigNotSetByClientOnS3(t *testing.T) {
	ms := s3Env(t)
	loc := "s3:" + ms.Endpoint() + "/fleet/servers"
	clock := &sharedClock{t: time.Unix(1_800_000_000, 0)}
	a := startOnS3(t, loc, clock)
	b := startOnS3(t, loc, clock)
	ctx := context.Background()
	mc, err := minio.New(ms.Addr(), &minio.Options{Creds: credentials.NewStaticV4(minioserver.AccessKey, minioserver.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	const configKey = "servers/alice/laptop/config"
	noConfig := func(when string) {
		t.Helper()
		if _, err := mc.StatObject(ctx, "fleet", configKey, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Fatalf("%s: the repository has a config: %v", when, err)
		}
	}
	ok := func(s *s3Server, path string, body []byte) {
		t.Helper()
		if code, _, msg := s.post(t, path, body); code != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, code, msg)
		}
	}
	named := func(typ backend.FileType, body string) string {
		return "/alice/laptop/" + string(typ) + "/" + backend.NameOf([]byte(body))
	}
	okFile := func(s *s3Server, typ backend.FileType, body string) {
		t.Helper()
		ok(s, named(typ, body), []byte(body))
	}

	// An init: the repository created and its key and config version
	// stored through a, its config through b (which opens the repository
	// partway through the init), then data.
	ok(a, "/alice/laptop/?create=true", nil)
	okFile(a, backend.Keys, "a key file")
	okFile(a, backend.Configs, "the owner's config")
	ok(b, "/alice/laptop/config", []byte("the owner's config"))
	okFile(b, backend.Data, "a pack")
	okFile(a, backend.Snapshots, "a snapshot")

	// The config is lost; the data stays.
	if err := mc.RemoveObject(ctx, "fleet", configKey, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	noConfig("lost")
	forged := []byte("a config of the writer's choosing")
	for _, s := range []*s3Server{a, b} {
		code, kind, msg := s.post(t, "/alice/laptop/config", forged)
		if code != http.StatusForbidden || kind != restapi.CodeExists || !strings.Contains(msg, "holds data") {
			t.Fatalf("a client's config to a repository that holds data and no config: %d %s %s", code, kind, msg)
		}
		noConfig("refused")
	}

	// A server that opens the repository now finds none for requests.
	c := startOnS3(t, loc, clock)
	for _, try := range []struct {
		path string
		body []byte
	}{{"/alice/laptop/config", forged}, {"/alice/laptop/?create=true", nil}} {
		if code, _, msg := c.post(t, try.path, try.body); code == http.StatusOK || !strings.Contains(msg, "holds files and no config") {
			t.Fatalf("POST %s on a server that opens the repository now: %d %s", try.path, code, msg)
		}
	}
	if code, _, msg := c.post(t, named(backend.Data, "a writer's pack"), []byte("a writer's pack")); code == http.StatusOK {
		t.Fatalf("an upload to a repository without its config: %d %s", code, msg)
	}
	noConfig("after the fresh server")
	if _, err := c.Repository(ctx, "alice/laptop"); err == nil {
		t.Fatal("Repository (requests, replication) opened a repository that holds data and no config")
	}
	if _, err := c.AuditRepository(ctx, "alice/laptop"); err != nil {
		t.Fatalf("the audit cannot open a repository that lost its config: %v", err)
	}
	if code, _, msg := c.post(t, "/alice/laptop/config", forged); code == http.StatusOK {
		t.Fatalf("after the audit opened it: %d %s", code, msg)
	}
	noConfig("after the audit opened it")
}
