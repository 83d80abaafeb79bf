package audit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
	"github.com/cairnbackup/cairn/internal/server/storage"
)

const theRepo = "bob/repo"

var configH = backend.Handle{Type: backend.Config, Name: "config"}

// fixture is an auditor over bob's one repository: the primary on a mem
// backend the test can make fail, and optionally a directory replica.
type fixture struct {
	t        *testing.T
	ctx      context.Context
	st       *state.State
	primary  *mem.Backend
	now      time.Time
	logs     bytes.Buffer
	a        *Auditor
	openErr  error
	reposErr error
	others   map[string]backend.Backend // more primary repositories by path
	farDir   string                     // the replica destination's directory, "" without one
	far      *local.Backend             // bob/repo's replica
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.AddClient(ctx, state.Client{Name: "bob", Hash: "x"}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, st: st, primary: mem.New(), now: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), others: map[string]backend.Backend{}}
	f.a = New(Config{State: st, Log: slog.New(slog.NewTextHandler(&f.logs, nil)), Now: func() time.Time { return f.now },
		SpoolDir: filepath.Join(t.TempDir(), "spool"),
		Open: func(_ context.Context, repo string) (backend.Backend, error) {
			if be, ok := f.others[repo]; ok {
				return be, nil
			}
			if repo != theRepo {
				t.Errorf("opened %q", repo)
			}
			return f.primary, f.openErr
		},
		Repos: func(_ context.Context, client string) ([]string, error) {
			var repos []string
			for r := range f.others {
				if strings.HasPrefix(r, client+"/") {
					repos = append(repos, r)
				}
			}
			if client != "bob" {
				return repos, nil
			}
			if f.reposErr != nil {
				return nil, f.reposErr
			}
			return append(repos, theRepo), nil
		}})
	return f
}

// put stores a content-named file of type typ on the primary.
func (f *fixture) put(typ backend.FileType, data string) backend.Handle {
	f.t.Helper()
	h := backend.Handle{Type: typ, Name: backend.NameOf([]byte(data))}
	if err := f.primary.Save(f.ctx, h, backend.NewByteReader([]byte(data))); err != nil {
		f.t.Fatal(err)
	}
	return h
}

func (f *fixture) putConfig(be backend.Backend, data string) {
	f.t.Helper()
	rd := backend.NewByteReader([]byte(data))
	var err error
	if r, ok := be.(interface {
		ReplaceConfig(context.Context, backend.RewindReader) error
	}); ok {
		err = r.ReplaceConfig(f.ctx, rd)
	} else {
		err = be.Save(f.ctx, configH, rd)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

// replicate adds the directory destination "far" and copies every file
// of the primary there, as a replication pass does, with its ledger.
func (f *fixture) replicate() {
	f.t.Helper()
	f.farDir = f.t.TempDir()
	if err := f.st.AddDestination(f.ctx, replicas.Destination{Name: "far", Location: f.farDir}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.NoteCommit(f.ctx, "bob", theRepo, "snap", f.now); err != nil {
		f.t.Fatal(err)
	}
	var err error
	if f.far, err = local.Create(f.ctx, filepath.Join(f.farDir, filepath.FromSlash(theRepo))); err != nil {
		f.t.Fatal(err)
	}
	for _, t := range append([]backend.FileType{backend.Config}, Audited...) {
		err := f.primary.List(f.ctx, t, func(fi backend.FileInfo) error {
			var b []byte
			if err := f.primary.Load(f.ctx, fi.Handle, 0, 0, func(rd io.Reader) (err error) { b, err = io.ReadAll(rd); return err }); err != nil {
				return err
			}
			if err := f.far.Save(f.ctx, fi.Handle, backend.NewByteReader(b)); err != nil {
				return err
			}
			if t == backend.Config {
				return nil
			}
			return f.st.RecordReplicated(f.ctx, "far", theRepo, fi.Handle)
		})
		if err != nil {
			f.t.Fatal(err)
		}
	}
}

// farPath is where the replica keeps h.
func (f *fixture) farPath(h backend.Handle) string {
	f.t.Helper()
	var found string
	root := filepath.Join(f.farDir, filepath.FromSlash(theRepo))
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == h.Name && (h.Type == backend.Config || strings.Contains(p, "/"+string(h.Type)+"/")) {
			found = p
		}
		return err
	})
	if err != nil || found == "" {
		f.t.Fatalf("%v is not on the replica (%v)", h, err)
	}
	return found
}

// corruptFar flips a byte of h on the replica.
func (f *fixture) corruptFar(h backend.Handle) {
	f.t.Helper()
	p := f.farPath(h)
	b, err := os.ReadFile(p)
	if err != nil {
		f.t.Fatal(err)
	}
	b[0] ^= 0x5a
	if err := os.WriteFile(p, b, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func corrupt(b []byte) []byte { b[0] ^= 0x5a; return b }

// sound reports whether be holds h with bytes that hash to its name.
func (f *fixture) sound(be backend.Backend, h backend.Handle) bool {
	f.t.Helper()
	sum, _, err := hashOf(f.ctx, be, h)
	return err == nil && sum == h.Name
}

func (f *fixture) config(be backend.Backend) string {
	f.t.Helper()
	b, err := readConfig(f.ctx, be)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) run(opt Options) Result {
	f.t.Helper()
	if opt.Fraction == 0 {
		opt.Fraction = 1
	}
	res, err := f.a.Run(f.ctx, opt)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// finding returns the finding about name on copy, failing the test if
// there is none.
func finding(t *testing.T, res Result, copy, name string) Finding {
	t.Helper()
	for _, fd := range res.Findings {
		if fd.Copy == copy && fd.Name == name {
			return fd
		}
	}
	t.Fatalf("no finding about %s on %s in %+v", short(name), copy, res.Findings)
	return Finding{}
}

// TestRunOptions: a fraction outside (0, 1] or an unknown client is
// refused before anything is read; New fills in a logger, a clock and a
// spool directory.
func TestRunOptions(t *testing.T) {
	f := newFixture(t)
	for _, fr := range []float64{0, -0.5, 1.5} {
		if _, err := f.a.Run(f.ctx, Options{Fraction: fr}); err == nil || !strings.Contains(err.Error(), "above 0 and at most 1") {
			t.Errorf("fraction %v: %v", fr, err)
		}
	}
	if _, err := f.a.Run(f.ctx, Options{Fraction: 1, Client: "carol"}); !errors.Is(err, state.ErrNoClient) {
		t.Fatalf("unknown client: %v", err)
	}
	if last, err := f.st.LastAudit(f.ctx); err != nil || !last.IsZero() {
		t.Fatalf("refused audits recorded one at %v (%v)", last, err)
	}
	a := New(Config{State: f.st})
	if a.cfg.Log == nil || a.cfg.Now == nil || a.cfg.SpoolDir != os.TempDir() {
		t.Fatalf("defaults: %+v", a.cfg)
	}
}

// TestAuditPrimaryAlone: with no other copy, a corrupt and an unreadable
// file are reported as not healed and left where they are (the bad file
// is replaced only by a verified good copy), a file removed between the
// listing and its hash (the primary's retention) is not damage, and the
// client's audit status names the damage for the monitor. (Threat model,
// parties: storage may corrupt or delete; the audit finds it.)
func TestAuditPrimaryAlone(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	good := f.put(backend.Data, "good pack")
	bad := f.put(backend.Data, "corrupt pack")
	unreadable := f.put(backend.Index, "unreadable index")
	gone := f.put(backend.Snapshots, "snapshot removed meanwhile")
	f.put(backend.Locks, "locks are working state") // not audited
	if err := f.primary.Corrupt(bad, corrupt); err != nil {
		t.Fatal(err)
	}
	f.primary.SetFault(func(op string, h backend.Handle) error {
		switch {
		case op == mem.OpLoad && h == unreadable:
			return errors.New("input/output error")
		case op == mem.OpLoad && h == gone:
			return backend.ErrNotFound
		}
		return nil
	})
	res := f.run(Options{Replicas: true})
	if len(res.Errors) != 0 || len(res.Findings) != 2 {
		t.Fatalf("errors %v, findings %+v", res.Errors, res.Findings)
	}
	fd := finding(t, res, Primary, bad.Name)
	if fd.Healed || fd.Problem != "corrupt" || fd.Error != "no other copy holds it" || fd.Client != "bob" || fd.Repo != theRepo {
		t.Fatalf("corrupt file: %+v", fd)
	}
	fd = finding(t, res, Primary, unreadable.Name)
	if fd.Healed || !strings.Contains(fd.Problem, "unreadable") || !strings.Contains(fd.Problem, "input/output error") {
		t.Fatalf("unreadable file: %+v", fd)
	}
	f.primary.SetFault(nil)
	for _, h := range []backend.Handle{good, bad, unreadable, gone} {
		if _, err := f.primary.Stat(f.ctx, h); err != nil {
			t.Fatalf("%v was removed: %v", h, err)
		}
	}
	c := res.Clients[0]
	if c.Repos != 1 || c.Copies != 1 || c.Files != 4 || c.Checked != 4 || c.Bad != 2 || c.Unhealed != 2 || res.Unhealed() != 2 {
		t.Fatalf("client result %+v", c)
	}
	// Of the four, only the sound one counts as re-hashed.
	if c.Covered != 1 || c.Coverage != 0.25 {
		t.Fatalf("coverage %d %v", c.Covered, c.Coverage)
	}
	as, err := f.st.AuditStatuses(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := as["bob"]; s.Unhealed != 2 || !s.At.Equal(f.now) || !strings.Contains(s.Note, "not healed") {
		t.Fatalf("audit status %+v", s)
	}
	if !strings.Contains(f.logs.String(), "bad file not healed") {
		t.Fatal("not logged")
	}
}

// TestAuditHealsFromReplica: a file corrupt on the primary is healed from
// the replica and one corrupt or missing on the replica from the
// primary, each good copy re-hashed first; a file bad on both copies is
// reported with both reasons and neither copy is touched; a second audit
// finds the healed copies whole. (Threat model, parties: a replica's
// storage is caught by the primary's `audit --replicas`, R28.)
func TestAuditHealsFromReplica(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	badPrimary := f.put(backend.Data, "pack corrupt on the primary")
	badFar := f.put(backend.Data, "pack corrupt on the replica")
	lost := f.put(backend.Snapshots, "snapshot lost on the replica")
	both := f.put(backend.Data, "pack corrupt everywhere")
	f.put(backend.Receipts, "a receipt")
	f.replicate()
	if err := f.primary.Corrupt(badPrimary, corrupt); err != nil {
		t.Fatal(err)
	}
	f.corruptFar(badFar)
	if err := os.Remove(f.farPath(lost)); err != nil {
		t.Fatal(err)
	}
	if err := f.primary.Corrupt(both, corrupt); err != nil {
		t.Fatal(err)
	}
	f.corruptFar(both)

	res := f.run(Options{Replicas: true})
	if len(res.Errors) != 0 {
		t.Fatal(res.Errors)
	}
	if fd := finding(t, res, Primary, badPrimary.Name); !fd.Healed || fd.From != "far" || fd.Problem != "corrupt" {
		t.Fatalf("%+v", fd)
	}
	if fd := finding(t, res, "far", badFar.Name); !fd.Healed || fd.From != Primary || fd.Problem != "corrupt" {
		t.Fatalf("%+v", fd)
	}
	if fd := finding(t, res, "far", lost.Name); !fd.Healed || fd.From != Primary || fd.Problem != "missing" {
		t.Fatalf("%+v", fd)
	}
	if fd := finding(t, res, Primary, both.Name); fd.Healed || !strings.Contains(fd.Error, "no good copy: far: its copy is corrupt too") {
		t.Fatalf("%+v", fd)
	}
	if fd := finding(t, res, "far", both.Name); fd.Healed || !strings.Contains(fd.Error, "primary: its copy is corrupt too") {
		t.Fatalf("%+v", fd)
	}
	for _, h := range []backend.Handle{badPrimary, badFar, lost} {
		if !f.sound(f.primary, h) || !f.sound(f.far, h) {
			t.Fatalf("%v not whole on both copies after the heal", h)
		}
	}
	if _, err := f.primary.Stat(f.ctx, both); err != nil {
		t.Fatalf("the file bad everywhere was removed from the primary: %v", err)
	}
	if _, err := os.Stat(f.farPath(both)); err != nil {
		t.Fatalf("the file bad everywhere was removed from the replica: %v", err)
	}
	if c := res.Clients[0]; c.Copies != 2 || c.Bad != 5 || c.Healed != 3 || c.Unhealed != 2 {
		t.Fatalf("client result %+v", c)
	}

	res = f.run(Options{Replicas: true})
	if len(res.Findings) != 2 || res.Findings[0].Name != both.Name || res.Findings[1].Name != both.Name {
		t.Fatalf("second audit: %+v", res.Findings)
	}
	// Without Replicas only the primary is audited.
	res = f.run(Options{})
	if c := res.Clients[0]; c.Copies != 1 || len(res.Findings) != 1 || res.Findings[0].Copy != Primary {
		t.Fatalf("primary only: %+v %+v", c, res.Findings)
	}
}

// TestAuditHealFailures: a heal that cannot read the good copy, remove
// the bad file or store the good one (a full disk) is reported with why,
// and the good copy is untouched.
func TestAuditHealFailures(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	unreadSrc := f.put(backend.Data, "the source fails on the second read")
	noRemove := f.put(backend.Data, "cannot remove the bad file")
	full := f.put(backend.Index, "the disk is full")
	f.replicate()
	f.corruptFar(unreadSrc)
	for _, h := range []backend.Handle{noRemove, full} {
		if err := f.primary.Corrupt(h, corrupt); err != nil {
			t.Fatal(err)
		}
	}
	loads := 0
	f.primary.SetFault(func(op string, h backend.Handle) error {
		switch {
		case op == mem.OpLoad && h == unreadSrc:
			// The primary's own re-hash reads it once; the heal of the
			// replica's copy is the second read.
			if loads++; loads > 1 {
				return errors.New("connection reset")
			}
		case op == mem.OpRemove && h == noRemove:
			return errors.New("read-only file system")
		case op == mem.OpSave && h == full:
			return backend.ErrNoSpace
		}
		return nil
	})
	res := f.run(Options{Replicas: true})
	for _, c := range []struct {
		copy string
		h    backend.Handle
		want string
	}{
		{"far", unreadSrc, "primary: read: "},
		{Primary, noRemove, "far: remove the bad file: "},
		{Primary, full, "far: store: "},
	} {
		fd := finding(t, res, c.copy, c.h.Name)
		if fd.Healed || !strings.Contains(fd.Error, c.want) {
			t.Errorf("%+v, want an error with %q", fd, c.want)
		}
	}
	f.primary.SetFault(nil)
	if !f.sound(f.primary, unreadSrc) || !f.sound(f.far, noRemove) || !f.sound(f.far, full) {
		t.Fatal("a good copy was damaged by a failed heal")
	}
}

// TestAuditCopiesThatFail: a primary that cannot be opened or listed, a
// storage whose repositories cannot be listed and a destination that
// cannot be reached are errors of the audit that name the copy; the
// other copies are still audited; a destination of other clients is not
// opened.
func TestAuditCopiesThatFail(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	bad := f.put(backend.Data, "a pack")
	f.replicate()
	f.corruptFar(bad)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []replicas.Destination{
		{Name: "broken", Location: filepath.Join(file, "replicas")},
		{Name: "alices", Location: filepath.Join(file, "other"), Clients: []string{"alice"}},
	} {
		if err := f.st.AddDestination(f.ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	// The ledger still names the repository; the storage listing fails.
	f.reposErr = errors.New("bucket unreachable")
	res := f.run(Options{Replicas: true})
	if len(res.Errors) != 2 || !strings.Contains(res.Errors[0], "repositories of bob: bucket unreachable") ||
		!strings.Contains(res.Errors[1], theRepo+" on broken: ") {
		t.Fatalf("errors %q", res.Errors)
	}
	if fd := finding(t, res, "far", bad.Name); !fd.Healed {
		t.Fatalf("the reachable replica was not healed: %+v", fd)
	}
	f.reposErr = nil

	f.primary.SetFault(func(op string, h backend.Handle) error {
		if op == mem.OpList && h.Type == backend.Index {
			return errors.New("listing failed")
		}
		return nil
	})
	f.corruptFar(bad)
	res = f.run(Options{Replicas: true})
	if len(res.Errors) != 2 || !strings.Contains(strings.Join(res.Errors, "\n"), theRepo+" on primary: list index: ") ||
		!strings.Contains(strings.Join(res.Errors, "\n"), "listing failed") {
		t.Fatalf("errors %q", res.Errors)
	}
	// The primary could not be listed: no copy to heal from.
	if fd := finding(t, res, "far", bad.Name); fd.Healed || fd.Error != "no other copy holds it" {
		t.Fatalf("%+v", fd)
	}
	if c := res.Clients[0]; c.Copies != 1 {
		t.Fatalf("copies audited %d, want the replica only", c.Copies)
	}
	f.primary.SetFault(nil)

	f.openErr = errors.New("storage offline")
	res = f.run(Options{Replicas: true})
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0], theRepo+" on primary: storage offline") || len(res.Findings) != 0 {
		t.Fatalf("errors %q, findings %+v", res.Errors, res.Findings)
	}
	if !strings.Contains(f.logs.String(), "cannot audit a copy") {
		t.Fatal("not logged")
	}
}

// TestAuditConfig: a cairn config that is not one of the repository's
// config versions (replaced in place: the one file that is not
// content-named) is healed from a copy whose config is a version both
// hold; a missing replica config is stored again; a restic replica's
// config must equal the primary's; a config no copy can vouch for is
// reported and left; an oversized config is unreadable, not read whole.
// (R3: configs are versioned and content-addressed; R28: a replica's
// config is replaced only by one of its stored versions.)
func TestAuditConfig(t *testing.T) {
	v1, v2 := "CRC1 config version 1", "CRC1 config version 2"
	f := newFixture(t)
	f.put(backend.Configs, v1)
	f.put(backend.Configs, v2)
	f.putConfig(f.primary, v2)
	f.replicate()

	f.putConfig(f.primary, "CRC1 forged")
	res := f.run(Options{Replicas: true})
	if fd := finding(t, res, Primary, "config"); !fd.Healed || fd.From != "far" || fd.Problem != "not a config version" || len(res.Findings) != 1 {
		t.Fatalf("%+v", res.Findings)
	}
	// The replica lost everything: its config is stored again, and
	// every file the ledger says it holds.
	if err := os.RemoveAll(filepath.Join(f.farDir, "bob")); err != nil {
		t.Fatal(err)
	}
	res = f.run(Options{Replicas: true})
	if fd := finding(t, res, "far", "config"); !fd.Healed || fd.From != Primary || fd.Problem != "missing" || len(res.Findings) != 3 {
		t.Fatalf("%+v", res.Findings)
	}
	for _, v := range []string{v1, v2} {
		if fd := finding(t, res, "far", backend.NameOf([]byte(v))); !fd.Healed || fd.Problem != "missing" {
			t.Fatalf("%+v", fd)
		}
	}
	if f.config(f.primary) != v2 || f.config(f.far) != v2 {
		t.Fatal("configs not healed to version 2")
	}

	// An older version is still one of the repository's.
	f.putConfig(f.far, v1)
	if res := f.run(Options{Replicas: true}); len(res.Findings) != 0 {
		t.Fatalf("%+v", res.Findings)
	}

	// Version 3 is on the primary only; the replica's config is forged:
	// the primary's config would not pass there, so nothing replaces it.
	f.put(backend.Configs, "CRC1 config version 3")
	f.putConfig(f.primary, "CRC1 config version 3")
	f.putConfig(f.far, "CRC1 forged")
	res = f.run(Options{Replicas: true})
	if fd := finding(t, res, "far", "config"); fd.Healed || fd.Error != "no other copy has a sound config" {
		t.Fatalf("%+v", fd)
	}
	if f.config(f.far) != "CRC1 forged" {
		t.Fatal("the replica's config was replaced by one it holds no version of")
	}

	// A config that cannot be replaced is reported with why.
	f.putConfig(f.far, v2)
	f.putConfig(f.primary, "CRC1 forged")
	f.primary.SetFault(func(op string, h backend.Handle) error {
		if op == mem.OpReplaceConfig {
			return errors.New("read-only file system")
		}
		return nil
	})
	res = f.run(Options{Replicas: true})
	if fd := finding(t, res, Primary, "config"); fd.Healed || !strings.Contains(fd.Error, "read-only file system") {
		t.Fatalf("%+v", fd)
	}
	f.primary.SetFault(nil)

	// An oversized config is not read whole.
	f.putConfig(f.primary, "CRC1"+strings.Repeat("x", maxConfig))
	res = f.run(Options{Replicas: true})
	if fd := finding(t, res, Primary, "config"); !fd.Healed || !strings.Contains(fd.Problem, "config is over 1048576 bytes") {
		t.Fatalf("%+v", fd)
	}
}

// farConfig is the replica's config file.
func (f *fixture) farConfig() string {
	return filepath.Join(f.farDir, filepath.FromSlash(theRepo), "config")
}

// TestAuditReplicaLostItsConfig: a directory replica that lost its config
// and kept its files is opened for the audit as it is (nothing stores a
// config before the audit looks): the audit reports the config missing
// and heals it from the primary, whose config is one of the replica's
// config versions. (R3: configs are versioned and content-addressed;
// R28: a replica's config is only ever one of its stored versions.)
func TestAuditReplicaLostItsConfig(t *testing.T) {
	v1 := "CRC1 config version 1"
	f := newFixture(t)
	f.put(backend.Configs, v1)
	f.putConfig(f.primary, v1)
	f.put(backend.Data, "a pack")
	f.replicate()
	if err := os.Remove(f.farConfig()); err != nil {
		t.Fatal(err)
	}
	res := f.run(Options{Replicas: true})
	if len(res.Errors) != 0 || len(res.Findings) != 1 {
		t.Fatalf("errors %q, findings %+v", res.Errors, res.Findings)
	}
	if fd := finding(t, res, "far", "config"); !fd.Healed || fd.From != Primary || fd.Problem != "missing" || fd.Type != "config" {
		t.Fatalf("%+v", fd)
	}
	if c := res.Clients[0]; c.Bad != 1 || c.Healed != 1 || c.Unhealed != 0 {
		t.Fatalf("client result %+v", c)
	}
	as, err := f.st.AuditStatuses(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := as["bob"]; s.Healed != 1 || s.Unhealed != 0 || s.Note != "1 bad or missing files found and healed" {
		t.Fatalf("audit status %+v", s)
	}
	if !strings.Contains(f.logs.String(), `msg="audit: healed a bad file" client=bob repo=bob/repo copy=far file=config/config problem=missing from=primary`) {
		t.Fatalf("log:\n%s", f.logs.String())
	}
	if f.config(f.far) != v1 {
		t.Fatal("the replica's config was not healed to the primary's")
	}
	if res := f.run(Options{Replicas: true}); len(res.Findings) != 0 || len(res.Errors) != 0 {
		t.Fatalf("second audit: findings %+v, errors %q", res.Findings, res.Errors)
	}
}

// TestAuditReplicaLostItsConfigPrimaryForged: two faults at once, the
// primary's config replaced in place by one that is none of the
// repository's config versions (a hostile writer's or the disk's) and
// the replica's config lost: both are reported, neither healed (no copy
// has a sound config), the forged config is never written onto the
// replica, and the audit leaves damage standing (`cairn server audit`
// exits 1, the monitor alerts). Clients would refuse the forged config
// (R2: they verify it against the owner key in their key file); the
// audit must report it, not spread it.
func TestAuditReplicaLostItsConfigPrimaryForged(t *testing.T) {
	v1, forged := "CRC1 config version 1", "CRC1 forged"
	f := newFixture(t)
	f.put(backend.Configs, v1)
	f.putConfig(f.primary, v1)
	f.put(backend.Data, "a pack")
	f.replicate()
	if err := os.Remove(f.farConfig()); err != nil {
		t.Fatal(err)
	}
	f.putConfig(f.primary, forged)
	res := f.run(Options{Replicas: true})
	if len(res.Errors) != 0 || len(res.Findings) != 2 {
		t.Fatalf("errors %q, findings %+v", res.Errors, res.Findings)
	}
	if fd := finding(t, res, Primary, "config"); fd.Healed || fd.Problem != "not a config version" || fd.Error != "no other copy has a sound config" {
		t.Fatalf("%+v", fd)
	}
	if fd := finding(t, res, "far", "config"); fd.Healed || fd.Problem != "missing" || fd.Error != "no other copy has a sound config" {
		t.Fatalf("%+v", fd)
	}
	if res.Unhealed() != 2 {
		t.Fatalf("unhealed %d, want 2", res.Unhealed())
	}
	if _, err := os.Stat(f.farConfig()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the replica got a config: %v", err)
	}
	if f.config(f.primary) != forged {
		t.Fatal("the primary's config was changed")
	}
	as, err := f.st.AuditStatuses(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := as["bob"]; s.Unhealed != 2 || !strings.Contains(s.Note, "config/config of bob/repo on primary: not a config version, not healed") {
		t.Fatalf("audit status %+v", s)
	}
	if n := strings.Count(f.logs.String(), `msg="audit: bad file not healed"`); n != 2 {
		t.Fatalf("%d log lines of damage not healed, want 2:\n%s", n, f.logs.String())
	}
	// Again: still reported, still not copied.
	res = f.run(Options{Replicas: true})
	if len(res.Findings) != 2 || res.Unhealed() != 2 {
		t.Fatalf("second audit: %+v", res.Findings)
	}
	if _, err := os.Stat(f.farConfig()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the replica got a config: %v", err)
	}
}

// primaryOnDisk copies the fixture's primary, every file, into a
// directory repository of a real local storage and makes the auditor
// open the primary there as `cairn server audit` and `server run` do
// (storage.Storage.OpenForAudit). It returns the storage and the
// primary's directory.
func (f *fixture) primaryOnDisk() (storage.Storage, string) {
	f.t.Helper()
	root := f.t.TempDir()
	st, err := storage.Connect(f.ctx, root, "", false)
	if err != nil {
		f.t.Fatal(err)
	}
	be, err := st.Create(f.ctx, theRepo)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, t := range append([]backend.FileType{backend.Config}, Audited...) {
		err := f.primary.List(f.ctx, t, func(fi backend.FileInfo) error {
			b, err := backend.LoadAll(f.ctx, f.primary, fi.Handle)
			if err != nil {
				return err
			}
			return be.Save(f.ctx, fi.Handle, backend.NewByteReader(b))
		})
		if err != nil {
			f.t.Fatal(err)
		}
	}
	f.a.cfg.Open, f.a.cfg.Repos = st.OpenForAudit, st.Repos
	return st, filepath.Join(root, filepath.FromSlash(theRepo))
}

// TestAuditPrimaryLostItsConfig: a directory primary that lost its
// config and kept its files is opened for the audit (requests still
// cannot open it: a client must not set the config of a repository that
// holds files, R3), its config reported missing and healed from the
// replica, whose config is one of the primary's config versions. With
// no copy holding a sound config (the replica's forged in place), it is
// reported and not healed, and no config is written to the primary.
func TestAuditPrimaryLostItsConfig(t *testing.T) {
	v1 := "CRC1 config version 1"
	f := newFixture(t)
	f.put(backend.Configs, v1)
	f.putConfig(f.primary, v1)
	f.put(backend.Data, "a pack")
	f.replicate()
	st, dir := f.primaryOnDisk()
	cfg := filepath.Join(dir, "config")
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Open(f.ctx, theRepo); err == nil {
		t.Fatal("a request's open took a repository that holds files and no config")
	}
	res := f.run(Options{Replicas: true})
	if len(res.Errors) != 0 || len(res.Findings) != 1 {
		t.Fatalf("errors %q, findings %+v", res.Errors, res.Findings)
	}
	if fd := finding(t, res, Primary, "config"); !fd.Healed || fd.From != "far" || fd.Problem != "missing" {
		t.Fatalf("%+v", fd)
	}
	if b, err := os.ReadFile(cfg); err != nil || string(b) != v1 {
		t.Fatalf("the primary's config after the audit: %q, %v", b, err)
	}
	if !strings.Contains(f.logs.String(), `msg="audit: healed a bad file" client=bob repo=bob/repo copy=primary file=config/config problem=missing from=far`) {
		t.Fatalf("log:\n%s", f.logs.String())
	}
	if res := f.run(Options{Replicas: true}); len(res.Findings) != 0 || len(res.Errors) != 0 {
		t.Fatalf("second audit: findings %+v, errors %q", res.Findings, res.Errors)
	}

	// Lost again, and the replica's config forged: nothing sound to heal
	// from.
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	f.putConfig(f.far, "CRC1 forged")
	res = f.run(Options{Replicas: true})
	if len(res.Errors) != 0 || len(res.Findings) != 2 || res.Unhealed() != 2 {
		t.Fatalf("errors %q, findings %+v", res.Errors, res.Findings)
	}
	if fd := finding(t, res, Primary, "config"); fd.Healed || fd.Problem != "missing" || fd.Error != "no other copy has a sound config" {
		t.Fatalf("%+v", fd)
	}
	if _, err := os.Stat(cfg); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the primary got a config: %v", err)
	}
}

// TestAuditConfigMagicDamaged: a cairn config damaged in its first
// bytes (no longer starting with the config's magic) is still checked
// against the config versions its copy keeps, not taken for a restic
// config: reported on the primary and healed from the replica, and the
// other way round.
func TestAuditConfigMagicDamaged(t *testing.T) {
	v1 := "CRC1 config version 1"
	f := newFixture(t)
	f.put(backend.Configs, v1)
	f.putConfig(f.primary, v1)
	f.replicate()
	for _, c := range []struct {
		bad  backend.Backend
		copy string
		from string
	}{{f.primary, Primary, "far"}, {f.far, "far", Primary}} {
		f.putConfig(c.bad, "XRC1 config version 1")
		res := f.run(Options{Replicas: true})
		if fd := finding(t, res, c.copy, "config"); !fd.Healed || fd.From != c.from || fd.Problem != "not a config version" || len(res.Findings) != 1 {
			t.Fatalf("%+v", res.Findings)
		}
		if f.config(c.bad) != v1 {
			t.Fatalf("%s: not healed", c.copy)
		}
	}
}

// TestAuditResticConfig: a restic replica's config must equal the
// primary's and is healed from it; the primary's is never taken from a
// replica (a restic config carries nothing to check it by).
func TestAuditResticConfig(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	f.put(backend.Data, "a pack")
	f.replicate()
	f.putConfig(f.far, "another restic config")
	res := f.run(Options{Replicas: true})
	if fd := finding(t, res, "far", "config"); !fd.Healed || fd.From != Primary || fd.Problem != "differs from the primary" {
		t.Fatalf("%+v", fd)
	}
	if f.config(f.far) != "restic config" {
		t.Fatal("not healed")
	}
	if err := f.primary.Remove(f.ctx, configH); err != nil {
		t.Fatal(err)
	}
	res = f.run(Options{Replicas: true})
	if fd := finding(t, res, Primary, "config"); fd.Healed || fd.Problem != "missing" || fd.Error != "no other copy has a sound config" {
		t.Fatalf("%+v", fd)
	}
	if _, err := f.primary.Stat(f.ctx, configH); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the primary's config was taken from a replica: %v", err)
	}
}

// noReplace hides a backend's ReplaceConfig.
type noReplace struct{ backend.Backend }

// TestAuditConfigNotReplaceable: a copy whose backend cannot replace its
// config says so rather than deleting it and storing another.
func TestAuditConfigNotReplaceable(t *testing.T) {
	f := newFixture(t)
	f.put(backend.Configs, "CRC1 v")
	f.putConfig(f.primary, "CRC1 v")
	f.replicate()
	f.putConfig(f.primary, "CRC1 forged")
	bad := &copyOf{name: Primary, be: noReplace{f.primary}}
	good := &copyOf{name: "far", key: "far", be: f.far}
	for _, c := range []*copyOf{bad, good} {
		if err := c.list(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	fd, ok := f.a.checkConfig(f.ctx, bad, []*copyOf{bad, good})
	if ok || fd.Healed || fd.Error != "this copy cannot replace its config" {
		t.Fatalf("%+v", fd)
	}
	if f.config(f.primary) != "CRC1 forged" {
		t.Fatal("the config was changed")
	}
}

// TestAuditNeverCommitted: a repository the ledger does not know (created,
// never committed to) and without a config is an init that never
// finished: its missing config is no damage, and it has no replica to
// audit.
func TestAuditNeverCommitted(t *testing.T) {
	f := newFixture(t)
	f.put(backend.Keys, "a key file")
	if err := f.st.AddDestination(f.ctx, replicas.Destination{Name: "far", Location: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	res := f.run(Options{Replicas: true})
	if len(res.Findings) != 0 || len(res.Errors) != 0 {
		t.Fatalf("findings %+v, errors %q", res.Findings, res.Errors)
	}
	if c := res.Clients[0]; c.Repos != 1 || c.Copies != 1 || c.Checked != 1 {
		t.Fatalf("client result %+v", c)
	}
}

// TestAuditCancelled: an audit whose context ends stops between files
// and says so.
func TestAuditCancelled(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	f.put(backend.Data, "pack 1")
	f.put(backend.Data, "pack 2")
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	loads := 0
	f.primary.SetFault(func(op string, h backend.Handle) error {
		if op == mem.OpLoad && h.Type == backend.Data {
			loads++
			cancel() // the operator stops the audit during the first file
		}
		return nil
	})
	if _, err := f.a.Run(ctx, Options{Fraction: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled audit: %v", err)
	}
	if loads != 1 {
		t.Fatalf("%d files read after the audit was stopped", loads-1)
	}
	if last, _ := f.st.LastAudit(f.ctx); !last.IsZero() {
		t.Fatal("a cancelled audit was recorded as done")
	}
}

// TestSpoolRewind: a spooled good copy can be read again from its start
// (a store that retries).
func TestSpoolRewind(t *testing.T) {
	fl, err := os.CreateTemp(t.TempDir(), "spool")
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if _, err := fl.WriteString("good bytes and more"); err != nil {
		t.Fatal(err)
	}
	s := &spool{f: fl, n: 10, sr: io.NewSectionReader(fl, 0, 10)}
	for range 2 {
		b, err := io.ReadAll(s)
		if err != nil || string(b) != "good bytes" || s.Length() != 10 {
			t.Fatalf("read %q %v", b, err)
		}
		if err := s.Rewind(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditClients: every repository of every client is audited, in
// order; Options.Client limits the audit to one client and records no
// status for the others.
func TestAuditClients(t *testing.T) {
	f := newFixture(t)
	if err := f.st.AddClient(f.ctx, state.Client{Name: "alice", Hash: "x"}); err != nil {
		t.Fatal(err)
	}
	f.putConfig(f.primary, "restic config")
	for _, r := range []string{"alice/r", "bob/a-first"} {
		be := mem.New()
		if err := be.Save(f.ctx, configH, backend.NewByteReader([]byte("restic config"))); err != nil {
			t.Fatal(err)
		}
		f.others[r] = be
	}
	res := f.run(Options{})
	if len(res.Clients) != 2 || res.Clients[0].Client != "alice" || res.Clients[1].Repos != 2 || len(res.Findings) != 0 {
		t.Fatalf("%+v", res)
	}
	f.now = f.now.Add(time.Hour)
	res = f.run(Options{Client: "bob"})
	if len(res.Clients) != 1 || res.Clients[0].Client != "bob" || res.Clients[0].Repos != 2 {
		t.Fatalf("%+v", res.Clients)
	}
	as, err := f.st.AuditStatuses(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !as["bob"].At.Equal(f.now) || as["alice"].At.Equal(f.now) {
		t.Fatalf("statuses %+v", as)
	}
}

// TestAuditReplicaOnlyFile: a file the primary's retention removed and
// the replica's keeps, bad on the replica, has no copy to heal from: it
// is reported and left in place.
func TestAuditReplicaOnlyFile(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	old := f.put(backend.Snapshots, "a snapshot the primary forgot")
	f.replicate()
	if err := f.primary.Remove(f.ctx, old); err != nil {
		t.Fatal(err)
	}
	f.corruptFar(old)
	res := f.run(Options{Replicas: true})
	if fd := finding(t, res, "far", old.Name); fd.Healed || fd.Error != "no other copy holds it" || len(res.Findings) != 1 {
		t.Fatalf("%+v", res.Findings)
	}
	if _, err := os.Stat(f.farPath(old)); err != nil {
		t.Fatal(err)
	}
}

// TestAuditSpoolUnusable: when the good copy cannot be spooled (here the
// spool directory's place is taken by a file), the heal fails before
// the bad file is touched, and says why.
func TestAuditSpoolUnusable(t *testing.T) {
	f := newFixture(t)
	f.putConfig(f.primary, "restic config")
	h := f.put(backend.Data, "a pack")
	f.replicate()
	f.corruptFar(h)
	before, err := os.ReadFile(f.farPath(h))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.a.cfg.SpoolDir = filepath.Join(file, "spool")
	res := f.run(Options{Replicas: true})
	if fd := finding(t, res, "far", h.Name); fd.Healed || !strings.Contains(fd.Error, "primary: spool: ") {
		t.Fatalf("%+v", fd)
	}
	if after, err := os.ReadFile(f.farPath(h)); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the bad file was touched: %v", err)
	}
}
