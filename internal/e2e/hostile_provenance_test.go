//go:build linux

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// The hostile-writer suite for provenance (R23, docs/format.md §11a):
// a compromised client holds a writer key file and its tenant's HTTP
// credentials, nothing else, and attacks the owner's backups through the
// real `cairn server`. Each test ends with the server's own maintenance
// (--keep-last 1 --grace 0s), then proves that what the policy keeps
// restores byte for byte and `check --read-data` is clean.

// hostile is one tenant's repository on a real server, with an owner (the
// cairn binary, its key kept on the client) and an attacker holding an
// exported writer key.
type hostile struct {
	*serverEnv
	repo      string // rest: URL with bob's credentials
	src       string
	writerKey string
	writerPW  []byte
}

func newHostile(t *testing.T) *hostile {
	t.Helper()
	s := startCairnServer(t)
	s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	h := &hostile{serverEnv: s, repo: s.url("bob", "laptop"), src: filepath.Join(s.dir, "src"),
		writerKey: filepath.Join(s.dir, "writer.key"), writerPW: []byte("writer secret")}
	s.ok("-r", h.repo, "init", "--server-fingerprint", s.fingerprint(t))
	pw := filepath.Join(s.dir, "writer.pass")
	os.WriteFile(pw, append(h.writerPW, '\n'), 0o600)
	s.ok("-r", h.repo, "key", "add", "--role", "writer", "--export", h.writerKey, "--new-password-file", pw)
	os.MkdirAll(h.src, 0o755)
	return h
}

// attacker opens the repository as the compromised client does: the
// writer key file and the tenant's credentials.
func (h *hostile) attacker(t *testing.T) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	be, err := location.Open(ctx, h.repo, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := repository.OpenKeyFile(ctx, be, h.writerKey, h.writerPW, repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if w.CanReadMetadata() || w.CanReadContent() {
		t.Fatal("the writer key reads what it must not (R5)")
	}
	return w
}

// plant uploads garbage under each given ID, as its own pack and index
// fragment (signed by the writer, as the server demands), and reports the
// server's answer.
func plant(t *testing.T, w *repository.Repository, refs ...snapshot.Ref) {
	t.Helper()
	ctx := context.Background()
	s, err := w.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		junk := make([]byte, 4096)
		rand.Read(junk)
		if _, err := s.SaveBlobID(ctx, r.Type, r.ID, junk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("the server refused the writer's own pack and fragment: %v", err)
	}
	s.Close()
}

// maintain runs the server's maintenance once with --keep-last 1
// --grace 0s and waits until it has recorded a job that removed want
// snapshots in all.
func (h *hostile) maintain(t *testing.T, want int) {
	t.Helper()
	h.ok("server", "client", "policy", "bob", "--keep-last", "1", "--every", "1h", "--grace", "0s")
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, removed := h.jobTotals(t, "bob"); removed >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no maintenance job removed %d snapshots\n%s", want, h.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restoreLatest restores the owner's latest snapshot and compares it with
// want (path below src → content hash).
func (h *hostile) restoreLatest(t *testing.T, want map[string][32]byte) {
	t.Helper()
	target := filepath.Join(h.dir, "restore-"+strings.ReplaceAll(t.Name(), "/", "-"))
	os.RemoveAll(target)
	h.ok("-r", h.repo, "restore", "latest", "--target", target)
	got := contentHashes(t, filepath.Join(target, h.src))
	if len(got) != len(want) {
		t.Fatalf("restored %d files, backed up %d", len(got), len(want))
	}
	for p, sum := range want {
		if got[p] != sum {
			t.Fatalf("%s restored differently", p)
		}
	}
}

func writeBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Attack 1 of issue 10: the writer plants garbage under the ID of a file
// it can guess, so that the server's prune, asking "is there a copy
// elsewhere?", would repack away the owner's only genuine copy.
func TestHostilePruneGarbageCopy(t *testing.T) {
	h := newHostile(t)
	config := randomBytes(12 << 10) // small: one blob, in the same pack as big
	writeBytes(t, filepath.Join(h.src, "sshd_config"), config)
	writeBytes(t, filepath.Join(h.src, "big"), randomBytes(3<<20))
	h.ok("-r", h.repo, "backup", h.src)

	w := h.attacker(t)
	plant(t, w, snapshot.Ref{Type: blob.Data, ID: w.BlobID(blob.Data, config)})

	// The next backup drops big: the first pack is almost all dead, so the
	// prune repacks it, and sshd_config's owner copy must go along.
	os.Remove(filepath.Join(h.src, "big"))
	writeBytes(t, filepath.Join(h.src, "other"), randomBytes(64<<10))
	h.ok("-r", h.repo, "backup", h.src)
	h.maintain(t, 1)

	h.restoreLatest(t, contentHashes(t, h.src))
	h.ok("-r", h.repo, "check", "--read-data")
}

// Attack 2: garbage "tree" blobs under every root tree ID (public in the
// statements). Restore must skip the false copy and read the real one;
// check names the false copy, repair drops it, and after maintenance the
// repository is clean.
func TestHostileGarbageTreeUnderRoot(t *testing.T) {
	h := newHostile(t)
	writeBytes(t, filepath.Join(h.src, "a"), randomBytes(100<<10))
	h.ok("-r", h.repo, "backup", h.src)
	want := contentHashes(t, h.src)

	w := h.attacker(t)
	snaps, _, err := w.Snapshots(context.Background())
	if err != nil || len(snaps) != 1 {
		t.Fatalf("writer lists %d snapshots: %v", len(snaps), err)
	}
	plant(t, w, snapshot.Ref{Type: blob.Tree, ID: snaps[0].File.Statement.Root})

	h.restoreLatest(t, want)
	r := h.run("-r", h.repo, "check", "--read-data")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "does not hash") {
		t.Fatalf("check did not report the false tree copy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Report struct {
			Dropped   []string `json:"dropped_packs"`
			LostBlobs int      `json:"lost_blobs"`
		} `json:"report"`
	}
	lastJSON(t, h.ok("-r", h.repo, "repair", "--read-data", "--dry-run", "--json").stdout, &rep)
	if len(rep.Report.Dropped) != 1 || rep.Report.LostBlobs != 0 {
		t.Fatalf("repair would drop %d packs losing %d blobs, want the writer's one pack and nothing lost", len(rep.Report.Dropped), rep.Report.LostBlobs)
	}

	writeBytes(t, filepath.Join(h.src, "b"), randomBytes(10<<10))
	h.ok("-r", h.repo, "backup", h.src)
	h.maintain(t, 1)
	h.restoreLatest(t, contentHashes(t, h.src))
	h.ok("-r", h.repo, "check", "--read-data")
}

// Attack 3: garbage planted under the ID of a file before the owner backs
// it up must not make the owner's backup skip storing it.
func TestHostilePoisonedDedup(t *testing.T) {
	h := newHostile(t)
	writeBytes(t, filepath.Join(h.src, "a"), randomBytes(10<<10))
	h.ok("-r", h.repo, "backup", h.src)

	hosts := []byte("127.0.0.1 localhost\n10.0.0.1 db.internal\n")
	w := h.attacker(t)
	plant(t, w, snapshot.Ref{Type: blob.Data, ID: w.BlobID(blob.Data, hosts)})

	writeBytes(t, filepath.Join(h.src, "hosts"), hosts)
	h.ok("-r", h.repo, "backup", h.src)
	want := contentHashes(t, h.src)
	h.restoreLatest(t, want)
	h.maintain(t, 1)
	h.restoreLatest(t, want)
	h.ok("-r", h.repo, "check", "--read-data")
}

// Attack 7: a writer commits a manifest of guessed IDs to learn from the
// refusal which the owner's data holds. The commit check looks only in
// the writer's own domain, so the owner's blob is as missing as one that
// exists nowhere.
func TestHostileMembershipOracle(t *testing.T) {
	h := newHostile(t)
	secret := randomBytes(10 << 10)
	writeBytes(t, filepath.Join(h.src, "secret"), secret)
	h.ok("-r", h.repo, "backup", h.src)

	w := h.attacker(t)
	ctx := context.Background()
	held := w.BlobID(blob.Data, secret)
	absent := w.BlobID(blob.Data, []byte("not in any backup"))
	s, err := w.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := s.SaveBlob(ctx, blob.Tree, []byte("a tree of the writer's own"))
	if err != nil {
		t.Fatal(err)
	}
	refs := snapshot.SortRefs([]snapshot.Ref{{Type: blob.Tree, ID: root}, {Type: blob.Data, ID: held}, {Type: blob.Data, ID: absent}})
	// Under its own host label, so that only the refs can be refused.
	meta := snapshot.MetaHeader{HostLabel: w.HostLabel("")}
	_, err = s.Commit(ctx, repository.CommitInput{Root: root, Refs: refs, Meta: meta, Time: time.Now()})
	s.Abort()
	if err == nil {
		t.Fatal("a commit of blobs the writer never uploaded was accepted")
	}
	msg := err.Error()
	for _, id := range []blob.ID{held, absent} {
		if !strings.Contains(msg, id.String()[:12]) {
			t.Fatalf("the refusal does not list %s as missing, so it tells the two apart:\n%s", id.Short(), msg)
		}
	}
	if strings.Contains(msg, root.String()[:12]) {
		t.Fatalf("the refusal lists the writer's own tree as missing:\n%s", msg)
	}
	var snaps []snapJSON
	if err := json.Unmarshal([]byte(h.ok("-r", h.repo, "snapshots", "--json").stdout), &snaps); err != nil || len(snaps) != 1 {
		t.Fatalf("owner sees %d snapshots (%v), want its one", len(snaps), err)
	}
}
