package server

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/state"
)

const pwSite = "site1-password"

// TestReplicaTenant: a replica tenant stores any repository's files
// content-named without opening them (a cairn config sealed to another
// server included) and takes a snapshot without a backup session; a file
// that does not hash to its name is refused; the same name again
// succeeds and changes nothing; a sound file is never deleted, a damaged
// one is (so the primary's audit can heal it); the config is replaced
// only by one of the stored config versions; backup sessions and owner
// requests are refused; the quota holds.
func TestReplicaTenant(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	if err := ts.data.NewClient(ctx, state.Client{Name: "site1", Quota: 20_000, AppendOnly: true, Replica: true}, []byte(pwSite)); err != nil {
		t.Fatal(err)
	}
	ts.create("site1", pwSite, "site1/bob/laptop")
	post := func(path string, body []byte) (int, string, string) {
		t.Helper()
		return ts.do("site1", pwSite, http.MethodPost, "/site1/bob/laptop/"+path, body)
	}
	cfg := []byte("CRC1 a cairn config sealed to another server")
	if code, _, body := post("config", cfg); code != http.StatusOK {
		t.Fatalf("config: %d %s", code, body)
	}
	pack := random(3000)
	packName := backend.NameOf(pack)
	if code, _, body := post("data/"+packName, pack); code != http.StatusOK {
		t.Fatalf("pack: %d %s", code, body)
	}
	snap := []byte("a snapshot file another server received")
	if code, _, body := post("snapshots/"+backend.NameOf(snap), snap); code != http.StatusOK {
		t.Fatalf("snapshot without a session: %d %s", code, body)
	}
	if code, kind, _ := post("data/"+strings.Repeat("ab", 32), pack); code != http.StatusBadRequest || kind != restapi.CodeHashMismatch {
		t.Fatalf("a file not named by its hash: %d %s", code, kind)
	}
	if code, _, _ := post("data/"+packName, pack); code != http.StatusOK {
		t.Fatalf("the same file again: %d", code)
	}
	if code, kind, _ := post("plans/"+backend.NameOf([]byte("p")), []byte("p")); code != http.StatusForbidden || kind != restapi.CodeForbidden {
		t.Fatalf("a plan: %d %s", code, kind)
	}
	if code, kind, _ := post("data/"+backend.NameOf(random(30_000)), random(30_000)); code != http.StatusInsufficientStorage || kind != restapi.CodeQuota {
		t.Fatalf("past the quota: %d %s", code, kind)
	}
	for _, q := range []string{restapi.OwnerRequestQuery, "session=open"} {
		if code, kind, _ := ts.do("site1", pwSite, http.MethodPost, "/site1/bob/laptop/?"+q, []byte("{}")); code != http.StatusForbidden || kind != restapi.CodeForbidden {
			t.Fatalf("?%s: %d %s", q, code, kind)
		}
	}
	if code, _, _ := ts.do("site1", pwSite, http.MethodGet, "/site1/bob/laptop/?"+restapi.IdentityQuery, nil); code != http.StatusOK {
		t.Fatalf("?identity: %d", code)
	}

	// Deletes: a sound file never, a damaged one yes, a lock yes.
	del := func(path string) (int, string) {
		code, kind, _ := ts.do("site1", pwSite, http.MethodDelete, "/site1/bob/laptop/"+path, nil)
		return code, kind
	}
	if code, kind := del("data/" + packName); code != http.StatusForbidden || kind != restapi.CodeAppendOnly {
		t.Fatalf("delete a sound pack: %d %s", code, kind)
	}
	if code, _ := del("config"); code != http.StatusForbidden {
		t.Fatalf("delete the config: %d", code)
	}
	onDisk := filepath.Join(ts.data.Dir, datadir.ReposDir, "site1", "bob", "laptop", "data", packName[:2], packName)
	if err := os.WriteFile(onDisk, []byte("rot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := del("data/" + packName); code != http.StatusOK {
		t.Fatalf("delete a damaged pack: %d", code)
	}
	if code, _, _ := post("data/"+packName, pack); code != http.StatusOK {
		t.Fatalf("store the healed pack: %d", code)
	}
	if b, err := os.ReadFile(onDisk); err != nil || string(b) != string(pack) {
		t.Fatalf("the healed pack: %v", err)
	}
	lock := []byte("a restic lock")
	if code, _, _ := post("locks/"+backend.NameOf(lock), lock); code != http.StatusOK {
		t.Fatalf("a lock: %d", code)
	}
	if code, _ := del("locks/" + backend.NameOf(lock)); code != http.StatusOK {
		t.Fatalf("delete a lock: %d", code)
	}

	// The config: the same again is fine; another only if it is a stored
	// version.
	if code, _, _ := post("config", cfg); code != http.StatusOK {
		t.Fatalf("the same config again: %d", code)
	}
	cfg2 := []byte("CRC1 the next config version")
	if code, kind, _ := post("config", cfg2); code == http.StatusOK || kind != restapi.CodeExists {
		t.Fatalf("a config that is no stored version: %d %s", code, kind)
	}
	if code, _, _ := post("configs/"+backend.NameOf(cfg2), cfg2); code != http.StatusOK {
		t.Fatalf("a config version: %d", code)
	}
	if code, _, body := post("config", cfg2); code != http.StatusOK {
		t.Fatalf("the config replaced by a stored version: %d %s", code, body)
	}
	if b, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(onDisk))), "config")); string(b) != string(cfg2) {
		t.Fatalf("config after replacement: %q", b)
	}
	if c, _ := ts.data.State.Client(ctx, "site1"); c.LastSnapshot.IsZero() {
		t.Fatal("the replica tenant's snapshot time was not recorded")
	}
}

// TestReplicaTenantFirstConfig: the far server stores a replica's first
// config, as it replaces one, only if it is one of the replica's stored
// config versions (replication copies configs/ before the config): a
// forged first config is refused with 403 and nothing is stored, and the
// version is then accepted. A replica that keeps no config version (a
// restic repository's) takes its config as it comes. (R28; R3.)
func TestReplicaTenantFirstConfig(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	if err := ts.data.NewClient(ctx, state.Client{Name: "site1", Quota: 20_000, AppendOnly: true, Replica: true}, []byte(pwSite)); err != nil {
		t.Fatal(err)
	}
	ts.create("site1", pwSite, "site1/bob/laptop")
	post := func(path string, body []byte) (int, string, string) {
		t.Helper()
		return ts.do("site1", pwSite, http.MethodPost, "/site1/bob/laptop/"+path, body)
	}
	onDisk := filepath.Join(ts.data.Dir, datadir.ReposDir, "site1", "bob", "laptop", "config")
	v1, forged := []byte("CRC1 the owner's config, version 1"), []byte("CRC1 a config forged in place on the primary")
	if code, _, body := post("configs/"+backend.NameOf(v1), v1); code != http.StatusOK {
		t.Fatalf("a config version: %d %s", code, body)
	}
	code, kind, body := post("config", forged)
	if code != http.StatusForbidden || kind != restapi.CodeForbidden || !strings.Contains(body, "none of the repository's stored config versions") {
		t.Fatalf("a forged first config: %d %s %s", code, kind, body)
	}
	if _, err := os.Stat(onDisk); !os.IsNotExist(err) {
		t.Fatalf("a refused config was stored: %v", err)
	}
	if !strings.Contains(ts.logs.String(), "none of the repository's stored config versions") {
		t.Fatalf("the refusal is not logged:\n%s", ts.logs.String())
	}
	if code, _, body := post("config", v1); code != http.StatusOK {
		t.Fatalf("the config version as the first config: %d %s", code, body)
	}
	if b, err := os.ReadFile(onDisk); err != nil || string(b) != string(v1) {
		t.Fatalf("config stored: %q, %v", b, err)
	}

	// A restic repository keeps no config versions.
	ts.create("site1", pwSite, "site1/bob/restic")
	restic := []byte("a restic config, encrypted")
	if code, _, body := ts.do("site1", pwSite, http.MethodPost, "/site1/bob/restic/config", restic); code != http.StatusOK {
		t.Fatalf("a restic config: %d %s", code, body)
	}
}
