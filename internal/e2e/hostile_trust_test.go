//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// The hostile party of these tests holds what a compromised client holds:
// its tenant's HTTP credentials for the server (bob's) and, where needed,
// a writer key. It talks to the real `cairn server` over loopback. A
// storage-level attacker (or an operator's mistake) is played by writing
// files straight into the server's repository directory. Issue 10, items
// 4, 11 and 13; docs/threat-model.md R3, R4, R24.

// hostileRepo is bob's server-mode repository "main": the owner key kept
// in XDG_CONFIG_HOME, a writer key web1.key enrolled, and one backup by
// each.
type hostileRepo struct {
	*serverEnv
	repo    string            // rest: URL with bob's credentials
	dir     string            // the repository on the server's disk
	src     string            // what is backed up
	wkey    string            // the writer's key file
	wpw     string            // its password file
	writer  map[string]string // the writer machine's environment
	backups int
}

func newHostileRepo(t *testing.T) *hostileRepo {
	t.Helper()
	s := startCairnServer(t)
	h := &hostileRepo{serverEnv: s, repo: s.url("bob", "main"), dir: filepath.Join(s.data, "repos", "bob", "main"),
		src: filepath.Join(s.dir, "src"), wkey: filepath.Join(s.dir, "web1.key"), wpw: filepath.Join(s.dir, "web1.pass")}
	s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	s.vars["CAIRN_REPOSITORY"] = h.repo
	os.MkdirAll(h.src, 0o755)
	writeRandom(t, filepath.Join(h.src, "f"), 300<<10)
	s.ok("init", "--server-fingerprint", s.fingerprint(t))
	os.WriteFile(h.wpw, []byte("web1 secret\n"), 0o600)
	s.ok("key", "add", "--role", "writer", "--export", h.wkey, "--new-password-file", h.wpw, "--label", "web1")
	h.writer = map[string]string{"CAIRN_PASSWORD_FILE": h.wpw, "CAIRN_KEY_FILE": h.wkey,
		"XDG_CACHE_HOME": filepath.Join(s.dir, "writer-cache"), "XDG_CONFIG_HOME": filepath.Join(s.dir, "writer-config")}
	h.ownerBackup(t)
	h.writerBackup(t)
	return h
}

// post uploads body as typ/<its SHA-256> (or to the name given) with
// bob's credentials only; it returns the status and X-Cairn-Error.
func (h *hostileRepo) post(t *testing.T, path string, body []byte) (int, string) {
	t.Helper()
	if !strings.Contains(path, "/") {
		sum := sha256.Sum256(body)
		path += "/" + hex.EncodeToString(sum[:])
	}
	req, err := http.NewRequest("POST", "http://"+h.addr+"/bob/main/"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("bob", "bob-secret-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Cairn-Error")
}

// plant writes body into the server's repository directory, as someone
// with access to its storage would, named by its hash.
func (h *hostileRepo) plant(t *testing.T, typ string, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	name := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(h.dir, typ, name), body, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func (h *hostileRepo) files(t *testing.T, typ string) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(h.dir, typ))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// ownerBackup changes a file and backs it up as the owner.
func (h *hostileRepo) ownerBackup(t *testing.T) result {
	t.Helper()
	h.backups++
	writeRandom(t, filepath.Join(h.src, "owner"), 10<<10+h.backups)
	return h.ok("backup", h.src)
}

// writerBackup backs up as the writer (its own machine: cache, config).
func (h *hostileRepo) writerBackup(t *testing.T) result {
	t.Helper()
	h.backups++
	writeRandom(t, filepath.Join(h.src, "writer"), 10<<10+h.backups)
	r := h.runWith(h.writer, "backup", h.src)
	if r.code != 0 {
		t.Fatalf("writer backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// stillWorks proves the owner's snapshots, backup and restore and the
// writer's backup (through the server's commit validation) work, and
// that the owner is warned about each of the named files.
func (h *hostileRepo) stillWorks(t *testing.T, warnAbout ...string) {
	t.Helper()
	r := h.ok("snapshots")
	for _, n := range warnAbout {
		if !strings.Contains(r.stderr, n) {
			t.Errorf("owner's snapshots gives no warning naming %s:\n%s", n, r.stderr)
		}
	}
	before := strings.Count(r.stdout, "\n")
	h.ownerBackup(t)
	h.writerBackup(t)
	if after := strings.Count(h.ok("snapshots").stdout, "\n"); after != before+2 {
		t.Errorf("snapshots listed %d lines, want %d", after, before+2)
	}
	target := t.TempDir()
	h.ok("restore", "latest", "--target", target)
	for _, f := range []string{"f", "owner", "writer"} {
		if fileHash(t, filepath.Join(target, h.src, f)) != fileHash(t, filepath.Join(h.src, f)) {
			t.Errorf("restored %s differs", f)
		}
	}
	for _, n := range warnAbout {
		if n == "config does not verify" {
			// Everything works from configs/, and check says why.
			r := h.run("check")
			if r.code != 1 || !strings.Contains(r.stderr, "config: does not verify") {
				t.Errorf("check of a repository whose config was replaced: exit %d\n%s", r.code, r.stderr)
			}
			return
		}
	}
	h.ok("check")
}

// signedEnvelope is a well-formed config or roster envelope around body,
// signed by key, as trust encodes them.
func signedEnvelope(magic, context string, body []byte, key ed25519.PrivateKey) []byte {
	b := append([]byte(magic), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	b = append(b, body...)
	return append(b, crypto.Sign(key, context, body)...)
}

// TestHostileJunkRoster (issue 10 item 4): a roster that is junk or not
// signed by the owner is refused by the server; planted on its disk, it
// is skipped with a warning by the owner, the writer and the server.
func TestHostileJunkRoster(t *testing.T) {
	h := newHostileRepo(t)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	forged := signedEnvelope("CRR1", crypto.SigRoster, []byte(`{"repo_id":"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqo=","seq":99,"created":"2026-01-01T00:00:00Z","writers":[]}`), stranger)
	n := h.files(t, "rosters")
	for name, body := range map[string][]byte{"junk": []byte("junk"), "forged": forged} {
		if status, code := h.post(t, "rosters", body); status < 400 || code == "" {
			t.Errorf("%s roster: %d %q, want a refusal", name, status, code)
		}
	}
	if h.files(t, "rosters") != n {
		t.Fatal("a roster was stored")
	}
	junk := h.plant(t, "rosters", []byte("junk"))
	other := h.plant(t, "rosters", forged)
	h.stillWorks(t, "rosters/"+junk, "rosters/"+other)
}

// TestHostileJunkConfigVersion (issue 10 item 4): the server refuses a
// config version or a config replacement the owner did not sign as a
// newer version; junk planted in configs/, and even over the config
// itself, leaves the repository usable, with a warning.
func TestHostileJunkConfigVersion(t *testing.T) {
	h := newHostileRepo(t)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	forged := signedEnvelope("CRC1", crypto.SigConfig, []byte(`{"format":1,"seq":9}`), stranger)
	n := h.files(t, "configs")
	for name, body := range map[string][]byte{"junk": []byte("CRC1junk"), "forged": forged} {
		if status, code := h.post(t, "configs", body); status < 400 || code == "" {
			t.Errorf("%s config version: %d %q, want a refusal", name, status, code)
		}
	}
	if h.files(t, "configs") != n {
		t.Fatal("a config version was stored")
	}
	cfg, err := os.ReadFile(filepath.Join(h.dir, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := h.post(t, "config", []byte("CRC1junk")); status < 400 {
		t.Errorf("config replaced by junk: %d", status)
	}
	if got, _ := os.ReadFile(filepath.Join(h.dir, "config")); !bytes.Equal(got, cfg) {
		t.Fatal("config changed")
	}
	// configs/ is read only when the config does not verify: the junk
	// version is named in a warning only after the config is replaced.
	junk := h.plant(t, "configs", []byte("CRC1junk"))
	h.stillWorks(t)
	if err := os.WriteFile(filepath.Join(h.dir, "config"), forged, 0o600); err != nil {
		t.Fatal(err)
	}
	h.stillWorks(t, "configs/"+junk, "config does not verify")
}

// plantedKeyFile is a well-formed key file header with argon2id
// parameters p (and a body no password opens): what an attacker plants
// so that every unlock that tries it runs argon2id at p.
func plantedKeyFile(t *testing.T, p crypto.KDFParams) []byte {
	t.Helper()
	buf, err := crypto.SealKeyFile([]byte("attacker"), crypto.KDFParams{Memory: 8, Time: 1, Threads: 1}, crypto.RoleOwner, time.Now().Unix(), "owner", []byte("not a key"))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(buf[10:], p.Memory)
	binary.LittleEndian.PutUint32(buf[14:], p.Time)
	buf[18] = p.Threads
	if h, _, err := crypto.ParseKeyFileHeader(buf); err != nil || h.KDF != p {
		t.Fatalf("planted key file: %v %+v", err, h)
	}
	return buf
}

// TestHostilePlantedKeyFiles (issue 10 item 11): the server refuses key
// files from clients of a server-mode repository; planted on its disk
// (three at argon2id 512 MiB, t = 4), the owner never tries them: it
// opens with its kept key and does not scan keys/ at all. In a local
// repository the owner scans keys/ but skips files above the cap.
func TestHostilePlantedKeyFiles(t *testing.T) {
	h := newHostileRepo(t)
	heavy := crypto.KDFParams{Memory: 512 * 1024, Time: 4, Threads: 4}
	wkey, _ := os.ReadFile(h.wkey)
	for name, body := range map[string][]byte{"heavy": plantedKeyFile(t, heavy), "writer's": wkey, "junk": []byte("junk")} {
		if status, code := h.post(t, "keys", body); status != http.StatusForbidden || code == "" {
			t.Errorf("%s key file: %d %q, want 403", name, status, code)
		}
	}
	if h.files(t, "keys") != 0 {
		t.Fatal("a key file was stored")
	}
	for i := 0; i < 3; i++ {
		p := heavy
		p.Threads += uint8(i) // three distinct files
		h.plant(t, "keys", plantedKeyFile(t, p))
	}
	// And one within the cap for stored keys: only not scanning at all
	// keeps the owner from trying it.
	h.plant(t, "keys", plantedKeyFile(t, crypto.DefaultKDF))
	r := h.ok("--debug", "snapshots")
	if strings.Contains(r.stderr, "trying key file") {
		t.Fatalf("the owner scanned keys/ of a server repository although it keeps its key:\n%s", r.stderr)
	}
	h.stillWorks(t)

	// A local repository: keys/ is scanned, the planted files skipped.
	e := newEnv(t)
	e.ok("init")
	for i := 0; i < 3; i++ {
		p := heavy
		p.Threads += uint8(i)
		buf := plantedKeyFile(t, p)
		sum := sha256.Sum256(buf)
		if err := os.WriteFile(filepath.Join(e.repo, "keys", hex.EncodeToString(sum[:])), buf, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r = e.ok("--debug", "snapshots")
	if n := strings.Count(r.stderr, "trying key file"); n > 1 {
		t.Fatalf("%d key files tried, want only the owner's:\n%s", n, r.stderr)
	}
	if n := strings.Count(r.stderr, "above the cap for stored keys"); n != 3 {
		t.Fatalf("%d warnings about planted key files, want 3:\n%s", n, r.stderr)
	}
}

// TestOwnerKeyNotUploadedToServer (issue 10 item 13, R4): `key add`
// stores no key file on a server; the owner is told to keep a copy with
// --export, which works.
func TestOwnerKeyNotUploadedToServer(t *testing.T) {
	h := newHostileRepo(t)
	x := t.TempDir()
	pw := filepath.Join(x, "new.pass")
	os.WriteFile(pw, []byte("another password\n"), 0o600)
	r := h.run("key", "add", "--role", "owner", "--new-password-file", pw)
	if r.code == 0 || !strings.Contains(r.stderr, "--export FILE") {
		t.Fatalf("owner key add on a server: exit %d: %s", r.code, r.stderr)
	}
	r = h.run("key", "add", "--role", "writer", "--new-password-file", pw)
	if r.code == 0 || !strings.Contains(r.stderr, "--export FILE") {
		t.Fatalf("writer key add into a server's keys/: exit %d: %s", r.code, r.stderr)
	}
	if h.files(t, "keys") != 0 {
		t.Fatal("a key file was stored on the server")
	}
	copyFile := filepath.Join(x, "owner-copy.key")
	h.ok("key", "add", "--role", "owner", "--new-password-file", pw, "--export", copyFile)
	if fi, err := os.Stat(copyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported owner key: %v", err)
	}
	if h.files(t, "keys") != 0 {
		t.Fatal("a key file was stored on the server")
	}
	// The copy opens the repository on another machine.
	other := map[string]string{"XDG_CONFIG_HOME": filepath.Join(x, "cfg"), "XDG_CACHE_HOME": filepath.Join(x, "cache"),
		"CAIRN_KEY_FILE": copyFile, "CAIRN_PASSWORD_FILE": pw}
	if r := h.runWith(other, "snapshots"); r.code != 0 {
		t.Fatalf("snapshots with the exported owner key: %d %s", r.code, r.stderr)
	}
}

type keyListEntry struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Role    string `json:"role"`
	Label   string `json:"label"`
	Revoked bool   `json:"revoked"`
	LastSeq uint64 `json:"last_seq"`
}

// TestRevokedWriterRefused (issue 10 item 13): `key list` shows the
// writer and the server from the roster; after `key revoke`, the writer's
// next snapshot is refused by the server (signed by a key the roster no
// longer lists), its earlier snapshots stay valid, and the writer's own
// backup stops before uploading.
func TestRevokedWriterRefused(t *testing.T) {
	h := newHostileRepo(t)
	var list []keyListEntry
	if err := json.Unmarshal([]byte(h.ok("key", "list", "--json").stdout), &list); err != nil {
		t.Fatal(err)
	}
	var writerID string
	roles := map[string]bool{}
	for _, k := range list {
		roles[k.Kind+"/"+k.Role] = true
		if k.Kind == "writer" && k.Label == "web1" {
			writerID = k.ID
		}
	}
	if writerID == "" || !roles["coordinator/server"] {
		t.Fatalf("key list does not show the roster's writer and server: %+v", list)
	}
	if out := h.ok("key", "list").stdout; !strings.Contains(out, writerID[:8]) || !strings.Contains(out, "web1") {
		t.Fatalf("key list:\n%s", out)
	}
	// A second backup by the writer, so its last seq is 2.
	h.writerBackup(t)
	r := h.run("key", "revoke", "nosuchwriter")
	if r.code == 0 {
		t.Fatal("revoked an unknown writer")
	}
	h.ok("key", "revoke", writerID[:8])
	if err := json.Unmarshal([]byte(h.ok("key", "list", "--json").stdout), &list); err != nil {
		t.Fatal(err)
	}
	revoked := false
	for _, k := range list {
		if k.Kind == "writer" && k.ID == writerID {
			revoked = k.Revoked && k.LastSeq == 2
		}
	}
	if !revoked {
		t.Fatalf("key list after revoke: %+v", list)
	}

	// The writer's own cairn stops early.
	r = h.runWith(h.writer, "backup", h.src)
	if r.code == 0 || !strings.Contains(r.stderr, "not in the repository's roster") {
		t.Fatalf("revoked writer's backup: exit %d: %s", r.code, r.stderr)
	}
	// A hostile writer program that ignores the roster is refused by
	// the server: already its pack, whose header names its signer (R23).
	err := writerCommit(t, h, "after revocation")
	if err == nil || !strings.Contains(err.Error(), "revoked writer") {
		t.Fatalf("revoked writer's commit: %v", err)
	}
	// Its earlier snapshots stay valid; the owner goes on.
	r = h.ok("snapshots")
	if strings.Contains(r.stderr, "not in the roster") {
		t.Fatalf("earlier writer snapshots refused after revocation:\n%s", r.stderr)
	}
	h.ownerBackup(t)
	h.ok("check")
}

// writerCommit commits a snapshot as the writer, in process, with its key
// file and bob's credentials: a client that skips every check cairn's own
// backup makes.
func writerCommit(t *testing.T, h *hostileRepo, content string) error {
	t.Helper()
	ctx := context.Background()
	buf, err := os.ReadFile(h.wkey)
	if err != nil {
		t.Fatal(err)
	}
	_, payload, err := crypto.OpenKeyFile(buf, []byte("web1 secret"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := crypto.UnmarshalKeyMaterial(payload)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := m.Parse()
	if err != nil {
		t.Fatal(err)
	}
	be, err := location.Open(ctx, h.repo, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	cfg, err := os.ReadFile(filepath.Join(h.dir, "config"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.OpenWithKeys(ctx, be, keys, "", cfg, repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	id, _, err := s.SaveBlob(ctx, blob.Data, []byte(content))
	if err != nil {
		return err
	}
	_, err = s.Commit(ctx, repository.CommitInput{Root: id, Refs: []snapshot.Ref{{Type: blob.Data, ID: id}}, Time: repo.Now()})
	return err
}

// TestNoCredentialPrinted (issue 10 item 13): a rest: URL's password is
// never printed: not in "no repository at", not in a wrong-password or
// unknown-scheme error, not in --help defaults from CAIRN_REPOSITORY.
func TestNoCredentialPrinted(t *testing.T) {
	s := startCairnServer(t)
	const secret = "bob-secret-pw"
	missing := s.url("bob", "nothere")
	check := func(what string, r result) {
		t.Helper()
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("%s prints the password:\n%s%s", what, r.stdout, r.stderr)
		}
	}
	r := s.run("-r", missing, "snapshots")
	if r.code == 0 || !strings.Contains(r.stderr, "no repository at") || !strings.Contains(r.stderr, "bob:***@") {
		t.Errorf("snapshots of a missing repository: exit %d: %s", r.code, r.stderr)
	}
	check("no repository at", r)
	check("no repository at, --debug", s.run("--debug", "-r", missing, "snapshots"))
	check("no repository at, from the environment", s.runWith(map[string]string{"CAIRN_REPOSITORY": missing}, "snapshots"))
	check("--help", s.runWith(map[string]string{"CAIRN_REPOSITORY": missing}, "--help"))
	r = s.runWith(map[string]string{"CAIRN_REPOSITORY": missing}, "backup", "--help")
	if !strings.Contains(r.stdout, "bob:***@") {
		t.Errorf("backup --help does not show the redacted default:\n%s", r.stdout)
	}
	check("backup --help", r)
	check("unknown scheme", s.run("-r", "foo:http://bob:"+secret+"@127.0.0.1:1/x", "snapshots"))
	check("init over an existing repository", func() result {
		s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
		repo := s.url("bob", "main")
		s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t))
		return s.run("-r", repo, "init", "--server-fingerprint", s.fingerprint(t))
	}())
	wrong := strings.Replace(s.url("bob", "main"), secret, "wrong-"+secret, 1)
	check("wrong tenant password", s.run("-r", wrong, "snapshots"))
}
