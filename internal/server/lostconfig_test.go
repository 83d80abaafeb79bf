package server

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/datadir"
)

// TestLostConfigNotSetByClient: a directory repository that holds files
// and lost its config is opened for the audit (AuditRepository), which
// heals the config only with one of its config versions, and by nothing
// a client asks: a writer cannot store a config of its choosing there,
// before or after the audit opened it (threat model R3).
func TestLostConfigNotSetByClient(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	dir := filepath.Join(ts.data.Dir, datadir.ReposDir, "bob", "laptop")
	be, err := local.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		t backend.FileType
		b string
	}{{backend.Configs, "CRC1 the owner's config"}, {backend.Data, "a pack"}} {
		if err := be.Save(ctx, backend.Handle{Type: f.t, Name: backend.NameOf([]byte(f.b))}, backend.NewByteReader([]byte(f.b))); err != nil {
			t.Fatal(err)
		}
	}
	try := func(when string) {
		t.Helper()
		forged := []byte("a config of the writer's choosing")
		if code, _, body := ts.do("bob", pwBob, http.MethodPost, "/bob/laptop/config", forged); code == http.StatusOK ||
			!strings.Contains(body, "open repository bob/laptop: it holds files and no config: it lost its config") {
			t.Fatalf("%s: a client's config to a repository that holds files: %d %s", when, code, body)
		}
		if code, _, _ := ts.do("bob", pwBob, http.MethodPost, "/bob/laptop/?create=true", nil); code == http.StatusOK {
			t.Fatalf("%s: create accepted", when)
		}
		if _, err := os.Stat(filepath.Join(dir, "config")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: the repository has a config: %v", when, err)
		}
	}
	try("before the audit")
	if _, err := ts.srv.Repository(ctx, "bob/laptop"); err == nil {
		t.Fatal("Repository (requests, replication) opened a repository without its config")
	}
	if _, err := ts.srv.AuditRepository(ctx, "bob/laptop"); err != nil {
		t.Fatalf("the audit cannot open a repository that lost its config: %v", err)
	}
	try("after the audit opened it")
}

// TestLostConfigNotSetByClientOpen: a repository the server keeps open
// (here a restic one, whose config it never reads) that loses its config
// while its data stays takes no config from a client: 403 before the
// body is read, nothing stored. A new repository's first config is
// stored as before. (Threat model R3.)
func TestLostConfigNotSetByClientOpen(t *testing.T) {
	ts := startTest(t, Options{})
	ts.create("bob", pwBob, "bob/restic")
	post := func(path string, body []byte) (int, string, string) {
		t.Helper()
		return ts.do("bob", pwBob, http.MethodPost, "/bob/restic/"+path, body)
	}
	pack := []byte("a pack")
	for _, f := range []struct {
		path string
		body []byte
	}{{"keys/" + backend.NameOf([]byte("a key")), []byte("a key")}, {"config", []byte("a restic config")}, {"data/" + backend.NameOf(pack), pack}} {
		if code, _, body := post(f.path, f.body); code != http.StatusOK {
			t.Fatalf("%s: %d %s", f.path, code, body)
		}
	}
	onDisk := filepath.Join(ts.data.Dir, datadir.ReposDir, "bob", "restic", "config")
	if err := os.Remove(onDisk); err != nil {
		t.Fatal(err)
	}
	code, kind, body := post("config", []byte("a config of the writer's choosing"))
	if code != http.StatusForbidden || kind != restapi.CodeExists || !strings.Contains(body, "holds data (data/") {
		t.Fatalf("a client's config to a repository that holds data and lost its config: %d %s %s", code, kind, body)
	}
	if _, err := os.Stat(onDisk); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the repository has a config: %v", err)
	}
}
