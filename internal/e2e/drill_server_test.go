//go:build linux

package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/trust"
)

// TestDrillRecordOnServer: a repository never drilled is "never drilled"
// and, on the injected clock, alerts once older than 35 days; a drill
// record signed by a writer key is refused; `cairn drill` against the
// server records "last proven restorable", which `server status`, its
// --json and /metrics show, and the alert clears; 36 days later it
// stands again.
func TestDrillRecordOnServer(t *testing.T) {
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.vars["XDG_CONFIG_HOME"] = filepath.Join(e.dir, "config")
	clock := useMonitorClock(t, e) // absent until set: the real clock
	setClock := clock.set
	e.ok("server", "init")
	pw := filepath.Join(e.dir, "bob.pass")
	os.WriteFile(pw, []byte("bob-secret-pw\n"), 0o600)
	e.ok("server", "client", "add", "bob", "--password-file", pw)
	s.start(t, "--check-every", "100ms")
	repo := s.url("bob", "laptop")
	e.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t))
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	for _, n := range []string{"a", "b", "c"} {
		writeRandom(t, filepath.Join(src, n), 20000)
	}
	e.ok("-r", repo, "backup", src)

	b := s.status(t).client(t, "bob")
	if b.DrillState != "never drilled" || b.DrillLevel != "OK" || b.LastDrill != nil || b.DrillAfter != 35*24*3600 ||
		len(b.Drills) != 1 || b.Drills[0].Repo != "bob/laptop" || b.Drills[0].At != nil {
		t.Fatalf("bob before any drill: %+v", b)
	}

	// A writer key signs a drill record: refused, nothing recorded.
	wkey, wpass := filepath.Join(e.dir, "writer.key"), filepath.Join(e.dir, "writer.pass")
	os.WriteFile(wpass, []byte("writer secret\n"), 0o600)
	e.ok("-r", repo, "key", "add", "--role", "writer", "--export", wkey, "--new-password-file", wpass)
	ctx := context.Background()
	be, err := location.Open(ctx, repo, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := repository.OpenKeyFile(ctx, be, wkey, []byte("writer secret"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	snaps := s.snapshotsOf(repo)
	forged := signOwnerRequest(t, w, trust.OwnerRequest{Action: trust.ActionDrill, Drill: &trust.DrillRecord{
		Snapshot: snaps[0].ID, Time: time.Now().UTC(), Files: 3, Bytes: 60000, Total: 3, Result: trust.DrillOK}}, w.Keys().Sign)
	status, code, msg := s.postOwnerRequest(t, "laptop", forged)
	if status != http.StatusForbidden || code != restapi.CodeNotOwner || !strings.Contains(msg, "writer key") {
		t.Fatalf("writer-signed drill record: %d %s %s", status, code, msg)
	}
	if b := s.status(t).client(t, "bob"); b.DrillState != "never drilled" {
		t.Fatalf("after a refused record: %+v", b)
	}

	// 36 days on, never drilled alerts.
	enrolled := b.Enrolled
	setClock(enrolled.Add(36 * 24 * time.Hour))
	waitFor(t, 30*time.Second, "the never-drilled alert", func() bool {
		for _, a := range s.status(t, "bob").client(t, "bob").Alerts {
			if a.Subject == "restore drill of client bob" && a.Level == "ALERT" {
				return true
			}
		}
		return false
	})
	b = s.status(t).client(t, "bob")
	if b.DrillLevel != "ALERT" || b.DrillState != "never drilled" || !strings.Contains(b.DrillReason, "never drilled") {
		t.Fatalf("never drilled after 36 days: %+v", b)
	}
	if m := s.metricsText(t); !strings.Contains(m, `cairn_server_client_drill_state{client="bob"} 2`) {
		t.Fatalf("drill state in /metrics:\n%s", grepLines(m, "drill"))
	}

	// Back to the real clock; the owner drills.
	clock.unset()
	out := e.ok("-r", repo, "drill", "--files", "2").stdout
	if !strings.Contains(out, "2 restored and verified") || !strings.Contains(out, "drill recorded on the server") {
		t.Fatalf("drill against the server printed:\n%s", out)
	}
	b = s.status(t).client(t, "bob")
	if b.DrillState != "OK" || b.LastDrill == nil || time.Since(*b.LastDrill) > time.Minute || len(b.Drills) != 1 ||
		b.Drills[0].Snapshot != snaps[0].ID || b.Drills[0].Files != 2 || b.Drills[0].Result != "ok" {
		t.Fatalf("bob after a drill: %+v", b)
	}
	waitFor(t, 30*time.Second, "the drill alert to clear", func() bool {
		for _, a := range s.status(t, "bob").client(t, "bob").Alerts {
			if a.Subject == "restore drill of client bob" {
				return false
			}
		}
		return true
	})
	if m := s.metricsText(t); !strings.Contains(m, `cairn_server_last_drill_timestamp_seconds{client="bob",repo="bob/laptop"}`) {
		t.Fatalf("last drill in /metrics:\n%s", grepLines(m, "drill"))
	}
	text := e.ok("server", "status").stdout
	if !strings.Contains(text, "LAST DRILL") || !strings.Contains(text, "just now") {
		t.Fatalf("server status:\n%s", text)
	}

	// A per-client limit, and the drill growing old.
	e.ok("server", "client", "set", "bob", "--drill-after", "40d")
	setClock(b.LastDrill.Add(36 * 24 * time.Hour))
	if b := s.status(t).client(t, "bob"); b.DrillLevel != "OK" || b.DrillAfter != 40*24*3600 {
		t.Fatalf("36 days after the drill, limit 40d: %+v", b)
	}
	setClock(b.LastDrill.Add(41 * 24 * time.Hour))
	if b := s.status(t).client(t, "bob"); b.DrillLevel != "ALERT" || !strings.Contains(b.DrillReason, "last restore drill") {
		t.Fatalf("41 days after the drill: %+v", b)
	}
	r := e.run("server", "client", "set", "bob", "--drill-after", "soon")
	expectExit(t, r, 1, "--drill-after")
}
