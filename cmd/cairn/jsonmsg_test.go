package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/ticker"
)

// jsonTypes are the documented --json messages: command and
// message_type → the type that declares its fields. docs/commands.md
// ("JSON messages") documents each with the same fields.
var jsonTypes = map[string]any{
	"backup/status":            backupStatusJSON{},
	"backup/verbose_status":    backupVerboseJSON{},
	"backup/summary":           backupSummaryJSON{},
	"restore/status":           progressStatusJSON{},
	"restore/summary":          restoreSummaryJSON{},
	"check/status":             progressStatusJSON{},
	"check/summary":            checkSummaryJSON{},
	"prune/status":             progressStatusJSON{},
	"prune/summary":            pruneSummaryJSON{},
	"forget/forget":            forgetJSON{},
	"forget/status":            progressStatusJSON{},
	"forget/summary":           pruneSummaryJSON{},
	"copy/status":              progressStatusJSON{},
	"copy/summary":             copySummaryJSON{},
	"snapshots/snapshot":       snapshotJSON{},
	"snapshots/snapshot_group": snapshotGroupJSON{},
	"ls/node":                  lsNodeJSON{},
	"find/match":               findMatchJSON{},
	"diff/diff":                diffJSON{},
	"stats/stats":              statsJSON{},
	"tag/tag":                  tagJSON{},
	"key list/key":             keyJSON{},
	"key add/key_added":        keyAddedJSON{},
	"key add/key_exported":     keyExportedJSON{},
	"key revoke/key_revoked":   keyRevokedJSON{},
	"*/error":                  errorJSON{},
	"*/warning":                warningJSON{},
	"init/initialized":         initJSON{},
	"version/version":          versionJSON{},
	"mount/mounted":            mountJSON{},
	"mount/unmounted":          mountJSON{},
	"repair/repair":            repairJSON{},

	"server init/server_initialized":     serverInitJSON{},
	"server fingerprint/fingerprint":     fingerprintJSON{},
	"server client add/client_added":     clientAddedJSON{},
	"server client set/client_updated":   clientUpdatedJSON{},
	"server client list/client":          clientJSON{},
	"server client show/client":          clientJSON{},
	"server client policy/maintenance":   maintenanceJSON{},
	"server client policy/policy_set":    policySetJSON{},
	"server notify add/notifier_added":   notifierAddedJSON{},
	"server notify test/notifier_tested": notifierTestedJSON{},
	"server admin add/admin_added":       adminJSON{},
	"server admin remove/admin_removed":  adminJSON{},
	"server admin list/admin_list":       adminListJSON{},

	"server destination add/destination_added":      destinationJSON{},
	"server destination set/destination_set":        destinationJSON{},
	"server destination list/destination":           destinationJSON{},
	"server destination show/destination":           destinationShowJSON{},
	"server destination remove/destination_removed": destinationRemovedJSON{},
	"server replication status/replica":             replicaJSON{},
	"server status/server_status":                   serverStatusJSON{},
	"server client run-now/run_now_requested":       runNowJSON{},
	"backup/queued":               backupQueuedJSON{},
	"server notify list/notifier": notifierJSON{},
	"server audit/server_audit":   serverAuditJSON{},
	"cat/cat_snapshot":            catSnapshotJSON{},
	"cat/cat_tree":                catTreeJSON{},
	"cat/cat_blob":                catBlobJSON{},
	"cat/cat_index":               catIndexJSON{},
	"cat/cat_pack":                catPackJSON{},
	"drill/drill_summary":         drillSummaryJSON{},
}

// notRunHere are messages TestJSONMessages cannot make in-process: a
// FUSE mount (internal/e2e TestMountCommand reads them).
var notRunHere = map[string]bool{"mount/mounted": true, "mount/unmounted": true,
	"backup/queued": true} // internal/e2e TestFleetPacing: a server with --max-backups

// jsonFields lists t's JSON fields, nested ones as "a.b" (an object) or
// "a[].b" (a list of objects), except inside types that are messages of
// their own (a group's snapshots), and whether each is always present.
func jsonFields(t reflect.Type, prefix string) map[string]bool {
	out := map[string]bool{}
	messages := map[reflect.Type]bool{}
	for _, v := range jsonTypes {
		messages[reflect.TypeOf(v)] = true
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			panic(fmt.Sprintf("%s.%s has no JSON name", t, f.Name))
		}
		full := prefix + name
		out[full] = !strings.Contains(opts, "omitempty")
		ft := f.Type
		suffix := "."
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice {
			ft, suffix = ft.Elem(), "[]."
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) && !messages[ft] {
			for k, v := range jsonFields(ft, full+suffix) {
				out[k] = v
			}
		}
	}
	return out
}

// docHeadingRE matches a message's heading in docs/commands.md:
// "### `summary` (check)".
var docHeadingRE = regexp.MustCompile("^### `([a-z_]+)` \\(([a-z, *-]+)\\)$")
var docFieldRE = regexp.MustCompile("^\\| `([a-z_.\\[\\]]+)` \\|")

// documentedJSON reads the JSON messages section of docs/commands.md:
// "command/type" → its fields.
func documentedJSON(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "commands.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs := map[string]map[string]bool{}
	var current []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## JSON messages"
			current = nil
			continue
		}
		if !in {
			continue
		}
		if m := docHeadingRE.FindStringSubmatch(line); m != nil {
			current = nil
			for _, cmd := range strings.Split(m[2], ", ") {
				key := cmd + "/" + m[1]
				docs[key] = map[string]bool{}
				current = append(current, key)
			}
			continue
		}
		if m := docFieldRE.FindStringSubmatch(line); m != nil {
			for _, key := range current {
				docs[key][m[1]] = true
			}
		}
	}
	return docs
}

// TestJSONMessagesDocumented: every message type's fields are the ones
// docs/commands.md lists for it, no more and no fewer; a field added or
// renamed in a type without the documentation fails here.
func TestJSONMessagesDocumented(t *testing.T) {
	docs := documentedJSON(t)
	for key, v := range jsonTypes {
		doc, ok := docs[key]
		if !ok {
			t.Errorf("%s: not documented in docs/commands.md, JSON messages", key)
			continue
		}
		var fields []string
		for f := range jsonFields(reflect.TypeOf(v), "") {
			fields = append(fields, f)
			if !doc[f] {
				t.Errorf("%s: field %s is not documented", key, f)
			}
		}
		for f := range doc {
			if !slices.Contains(fields, f) {
				t.Errorf("%s: documented field %s is not in %T", key, f, v)
			}
		}
	}
	for key := range docs {
		if _, ok := jsonTypes[key]; !ok {
			t.Errorf("docs/commands.md documents %s, which no command prints", key)
		}
	}
}

// jsonChecker validates --json output against jsonTypes and remembers
// which messages it saw.
type jsonChecker struct {
	t    *testing.T
	seen map[string]bool
}

// check validates out, the output of cmd: one array of messages, or one
// message a line.
func (j *jsonChecker) check(cmd, out string) {
	j.t.Helper()
	out = strings.TrimSpace(out)
	if out == "" {
		j.t.Errorf("%s: no output", cmd)
		return
	}
	var raws []json.RawMessage
	if strings.HasPrefix(out, "[") {
		if err := json.Unmarshal([]byte(out), &raws); err != nil {
			j.t.Errorf("%s: %v in %s", cmd, err, out)
			return
		}
	} else {
		// One object a line, or cat's one indented object.
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				j.t.Errorf("%s: %v in %s", cmd, err, out)
				return
			}
			raws = append(raws, raw)
		}
	}
	for _, raw := range raws {
		j.message(cmd, raw)
	}
}

func (j *jsonChecker) message(cmd string, raw json.RawMessage) {
	j.t.Helper()
	var head struct {
		MessageType string `json:"message_type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.MessageType == "" {
		j.t.Errorf("%s: no message_type in %s (%v)", cmd, raw, err)
		return
	}
	key := cmd + "/" + head.MessageType
	typ, ok := jsonTypes[key]
	if !ok {
		if typ, ok = jsonTypes["*/"+head.MessageType]; ok {
			key = "*/" + head.MessageType
		}
	}
	if !ok {
		j.t.Errorf("%s: undocumented message type %q: %s", cmd, head.MessageType, raw)
		return
	}
	j.seen[key] = true
	v := reflect.New(reflect.TypeOf(typ))
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		j.t.Errorf("%s: %s does not decode as %T: %v", key, raw, typ, err)
		return
	}
	var fields map[string]json.RawMessage
	json.Unmarshal(raw, &fields)
	for f, required := range jsonFields(reflect.TypeOf(typ), "") {
		if _, ok := fields[f]; required && !strings.Contains(f, ".") && !ok {
			j.t.Errorf("%s: required field %s missing in %s", key, f, raw)
		}
	}
}

// jsonServerMessages runs the `cairn server …` commands that print with
// --json against a server data directory of c's. `init` on a cairn
// server (initialized with server_fingerprint) needs a running server
// and is not run here.
func jsonServerMessages(t *testing.T, c *cli, j *jsonChecker) {
	t.Setenv("CAIRN_SERVER_DATA", filepath.Join(c.dir, "server"))
	j.check("server init", c.ok("server", "init", "--json").stdout)
	j.check("server fingerprint", c.ok("server", "fingerprint", "--json").stdout)
	j.check("server client add", c.ok("server", "client", "add", "--json", "alice").stdout)
	j.check("server client set", c.ok("server", "client", "set", "--json", "alice", "--warn-after", "2d", "--alert-after", "3d").stdout)
	j.check("server client policy", c.ok("server", "client", "policy", "--json", "alice", "--keep-last", "3").stdout)
	j.check("server client policy", c.ok("server", "client", "policy", "--json", "alice", "--show").stdout)
	j.check("server client list", c.ok("server", "client", "list", "--json").stdout)
	j.check("server client show", c.ok("server", "client", "show", "--json", "alice").stdout)
	j.check("server client run-now", c.ok("server", "client", "run-now", "--json", "alice").stdout)
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hook.Close()
	j.check("server notify add", c.ok("server", "notify", "add", "--json", "ops", "--webhook", hook.URL).stdout)
	j.check("server notify test", c.ok("server", "notify", "test", "--json", "ops").stdout)
	j.check("server notify list", c.ok("server", "notify", "list", "--json").stdout)
	j.check("server status", c.ok("server", "status", "--json").stdout)
	j.check("server audit", c.ok("server", "audit", "--json").stdout)
	pw := filepath.Join(c.dir, "admin.pass")
	if err := os.WriteFile(pw, []byte("admin-secret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	j.check("server admin add", c.ok("server", "admin", "add", "--json", "root", "--password-file", pw).stdout)
	j.check("server admin list", c.ok("server", "admin", "list", "--json").stdout)
	j.check("server admin remove", c.ok("server", "admin", "remove", "--json", "root").stdout)
	jsonReplicationMessages(t, c, j)
}

// jsonReplicationMessages runs the destination and replication commands
// against c's server data directory, with a repository the server has
// seen a commit of and a failed pass recorded, so that every replica
// field has a value.
func jsonReplicationMessages(t *testing.T, c *cli, j *jsonChecker) {
	j.check("server destination add", c.ok("server", "destination", "add", "--json", "usb", "--location", filepath.Join(c.dir, "usb"), "--all").stdout)
	j.check("server destination set", c.ok("server", "destination", "set", "--json", "usb", "--keep-last", "3").stdout)
	ctx := context.Background()
	d, err := datadir.Open(ctx, filepath.Join(c.dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := d.State.NoteCommit(ctx, "alice", "alice/main", "0123abcd", now); err != nil {
		t.Fatal(err)
	}
	if err := d.State.PassFailed(ctx, "usb", "alice/main", now, "disk full", 42, now); err != nil {
		t.Fatal(err)
	}
	d.Close()
	j.check("server destination list", c.ok("server", "destination", "list", "--json").stdout)
	show := c.ok("server", "destination", "show", "--json", "usb").stdout
	j.check("server destination show", show)
	var shown struct {
		Replicas []json.RawMessage `json:"replicas"`
	}
	jsonOf(t, show, &shown)
	if len(shown.Replicas) != 1 {
		t.Fatalf("destination show --json: replicas %s", show)
	}
	j.message("server replication status", shown.Replicas[0])
	status := c.ok("server", "replication", "status", "--json").stdout
	j.check("server replication status", status)
	if !strings.Contains(status, `"last_error":"disk full"`) || !strings.Contains(status, `"lag_bytes":42`) {
		t.Errorf("replication status --json: %s", status)
	}
	j.check("server destination remove", c.ok("server", "destination", "remove", "--json", "usb").stdout)
}

// TestJSONMessages runs every command that prints with --json and
// validates each message against its declared type: no unknown field, no
// required field missing, every message type documented.
func TestJSONMessages(t *testing.T) {
	c := newCLI(t)
	j := &jsonChecker{t: t, seen: map[string]bool{}}
	src := filepath.Join(c.dir, "src")
	tree(t, src, map[string]string{"a.txt": "alpha", "d/b.txt": "beta"})
	pw := filepath.Join(c.dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("init")
	j.check("backup", c.ok("backup", "--json", src).stdout)
	tree(t, src, map[string]string{"a.txt": "alpha 2", "c.txt": "gamma"})
	j.check("backup", c.ok("backup", "--json", "-vv", "--tag", "daily", src).stdout)
	// A warning under --json is a warning message on standard error.
	list := filepath.Join(c.dir, "list")
	tree(t, c.dir, map[string]string{"list": src + "/nothing-*\n" + src + "/a.txt\n"})
	r := c.ok("backup", "--json", "--files-from", list)
	j.check("backup", r.stdout)
	j.check("backup", r.stderr)
	if !strings.Contains(r.stderr, `"message_type":"warning"`) || !strings.Contains(r.stderr, "matches no file") {
		t.Errorf("backup --json with a pattern matching nothing: stderr %q", r.stderr)
	}
	j.check("snapshots", c.ok("snapshots", "--json").stdout)
	j.check("snapshots", c.ok("snapshots", "--json", "--group-by", "host,paths,tags").stdout)
	snaps := c.snapshots()
	first, second := snaps[0].ID[:8], snaps[1].ID[:8]
	j.check("ls", c.ok("ls", "--json", "latest").stdout)
	j.check("find", c.ok("find", "--json", "*.txt").stdout)
	j.check("diff", c.ok("diff", "--json", first, second).stdout)
	j.check("stats", c.ok("stats", "--json").stdout)
	j.check("restore", c.ok("restore", "--json", "latest", "--target", filepath.Join(c.dir, "r")).stdout)
	j.check("check", c.ok("check", "--json", "--read-data").stdout)
	j.check("tag", c.ok("tag", "--json", "--add", "keep", first).stdout)
	j.check("key list", c.ok("key", "list", "--json").stdout)
	j.check("key add", c.ok("key", "add", "--json", "--new-password-file", pw).stdout)
	j.check("key add", c.ok("key", "add", "--json", "--role", "writer", "--export", filepath.Join(c.dir, "w.key"), "--new-password-file", pw).stdout)
	var keys []keyJSON
	jsonOf(t, c.ok("key", "list", "--json").stdout, &keys)
	for _, k := range keys {
		if k.Kind == "writer" {
			j.check("key revoke", c.ok("key", "revoke", "--json", k.ShortID).stdout)
		}
	}
	other := filepath.Join(c.dir, "other")
	c.ok("-r", other, "init")
	j.check("copy", c.ok("-r", other, "copy", "--json", "--from-repo", c.repo, "--from-password-file", pw).stdout)
	j.check("forget", c.ok("forget", "--json", "--keep-last", "1", "--prune", "--grace", "0").stdout)
	j.check("prune", c.ok("prune", "--json", "--grace", "0").stdout)
	j.check("repair", c.ok("repair", "--json", "--dry-run").stdout)
	j.check("init", c.ok("-r", filepath.Join(c.dir, "third"), "init", "--json").stdout)
	j.check("version", c.ok("version", "--json").stdout)
	j.check("drill", c.ok("drill", "--json", "--files", "2").stdout)
	j.check("cat", c.ok("cat", "snapshot", "latest").stdout)
	tr := c.ok("cat", "tree", "latest:"+src).stdout
	j.check("cat", tr)
	var catTree catTreeJSON
	if err := json.Unmarshal([]byte(tr), &catTree); err != nil {
		t.Fatal(err)
	}
	var content string
	for _, n := range catTree.Nodes {
		if len(n.Content) > 0 {
			content = n.Content[0]
		}
	}
	j.check("cat", c.ok("cat", "blob", "--json", content).stdout)
	idx := c.ok("cat", "index").stdout
	j.check("cat", idx)
	var catIdx catIndexJSON
	if err := json.Unmarshal([]byte(idx), &catIdx); err != nil {
		t.Fatal(err)
	}
	if len(catIdx.Fragments) == 0 || len(catIdx.Fragments[0].Packs) == 0 {
		t.Fatalf("cat index: %s", idx)
	}
	j.check("cat", c.ok("cat", "pack", catIdx.Fragments[0].Packs[0].ID).stdout)
	jsonServerMessages(t, c, j)
	// A failure under --json is an error message on standard error,
	// also when the command line does not parse.
	r = c.run("-r", filepath.Join(c.dir, "none"), "snapshots", "--json")
	if r.code != exitNoRepository {
		t.Fatalf("snapshots of no repository: exit %d", r.code)
	}
	j.check("snapshots", r.stderr)
	r = c.run("snapshots", "--json", "--no-such-flag")
	j.check("snapshots", r.stderr)
	if !strings.Contains(r.stderr, `"exit_code":1`) {
		t.Errorf("bad flag under --json: %s", r.stderr)
	}

	// Status messages come about once a second: render them directly.
	for _, action := range []string{"restore", "check", "prune", "forget", "copy"} {
		var out bytes.Buffer
		p := newProgress(&GlobalOptions{JSON: true, stdout: &out, stderr: &out}, action, "files")
		p.update(ticker.Counts{Items: 1, TotalItems: 4, Bytes: 100, TotalBytes: 400, Elapsed: time.Second})
		j.check(action, out.String())
	}
	var out bytes.Buffer
	newBackupProgress(&GlobalOptions{JSON: true, stdout: &out}).update(archiver.Progress{Files: 1, BytesDone: 5, BytesTotal: 10, CurrentFile: "/a", Elapsed: time.Second})
	j.check("backup", out.String())

	var missing []string
	for key := range jsonTypes {
		if !j.seen[key] && !notRunHere[key] {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("message types never printed in this test: %v", missing)
	}
}
