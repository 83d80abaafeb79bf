package repository_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/trust"
)

// logBuf collects log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func capture(t *testing.T) (repository.Options, *logBuf) {
	lb := &logBuf{}
	return repository.Options{KDF: &quickKDF, CacheDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))}, lb
}

func plant(t *testing.T, be backend.Backend, typ backend.FileType, buf []byte) string {
	t.Helper()
	name := backend.NameOf(buf)
	if err := be.Save(context.Background(), backend.Handle{Type: typ, Name: name}, backend.NewByteReader(buf)); err != nil {
		t.Fatal(err)
	}
	return name
}

func initMem(t *testing.T) (*mem.Backend, *repository.Repository) {
	t.Helper()
	be := mem.New()
	r, err := repository.Init(context.Background(), be, []byte("pw"), repository.Options{KDF: &quickKDF, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return be, r
}

// TestJunkRosterSkipped (R24): a roster that is junk, signed by another
// key or of another repository is skipped with a warning naming it; the newest valid roster counts,
// also when the junk claims a higher seq.
func TestJunkRosterSkipped(t *testing.T) {
	ctx := context.Background()
	be, owner := initMem(t)
	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddWriter(ctx, wm, "web-1"); err != nil {
		t.Fatal(err)
	}
	other, _ := crypto.NewOwner("")
	ok, _ := other.Parse()
	forged := *owner.Roster()
	forged.Seq, forged.Writers = 99, nil
	forgedBuf, _ := trust.MarshalRoster(&forged, ok.OwnerSign)
	alien := forged
	alien.RepoID = bytes.Repeat([]byte{7}, 32)
	alienBuf, _ := trust.MarshalRoster(&alien, owner.Keys().OwnerSign)
	planted := []string{
		plant(t, be, backend.Rosters, []byte("junk")),
		plant(t, be, backend.Rosters, forgedBuf),
		plant(t, be, backend.Rosters, alienBuf),
	}

	opts, lb := capture(t)
	r, err := repository.Open(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatalf("open with junk rosters: %v", err)
	}
	if r.Roster().Seq != 2 || len(r.Roster().Writers) != 1 {
		t.Fatalf("roster seq %d with %d writers, want the owner's seq 2 with 1", r.Roster().Seq, len(r.Roster().Writers))
	}
	for _, n := range planted {
		if !strings.Contains(lb.String(), "rosters/"+n) {
			t.Errorf("no warning names rosters/%s:\n%s", n[:8], lb.String())
		}
	}
	// A writer opens too.
	wk, _ := wm.Parse()
	if _, err := repository.OpenWithKeys(ctx, be, wk, "", configBytesOf(t, be), repository.Options{CacheDir: t.TempDir()}); err != nil {
		t.Fatalf("writer open with junk rosters: %v", err)
	}
	// Rollback protection is unchanged: with only junk newer than what
	// the cache saw, the reader still refuses an older valid roster.
	if err := be.Remove(ctx, backend.Handle{Type: backend.Rosters, Name: backend.NameOf(rosterBytes(t, owner))}); err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Open(ctx, be, []byte("pw"), opts); err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("older roster accepted after junk hid the newest: %v", err)
	}
}

func rosterBytes(t *testing.T, r *repository.Repository) []byte {
	b, err := trust.MarshalRoster(r.Roster(), r.Keys().OwnerSign)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func configBytesOf(t *testing.T, be backend.Backend) []byte {
	b, err := backend.LoadAll(context.Background(), be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJunkConfigSkipped (R24): junk in configs/ is harmless, and a config
// that does not verify falls back to the newest valid version in
// configs/, with a warning; with no valid version the open fails.
func TestJunkConfigSkipped(t *testing.T) {
	ctx := context.Background()
	be, owner := initMem(t)
	junk := plant(t, be, backend.Configs, []byte("CRC1junk"))
	opts, lb := capture(t)
	if _, err := repository.Open(ctx, be, []byte("pw"), opts); err != nil {
		t.Fatalf("open with a junk config version: %v", err)
	}
	if err := be.ReplaceConfig(ctx, backend.NewByteReader([]byte("junk"))); err != nil {
		t.Fatal(err)
	}
	r, err := repository.Open(ctx, be, []byte("pw"), opts)
	if err != nil {
		t.Fatalf("open with a junk config: %v", err)
	}
	if !bytes.Equal(r.Config().OwnerSignPub, owner.Keys().OwnerSignPub) || r.Config().Seq != 1 {
		t.Fatalf("config %+v", r.Config())
	}
	if !strings.Contains(lb.String(), "configs/"+junk) || !strings.Contains(lb.String(), "file=config") {
		t.Fatalf("warnings do not name the files:\n%s", lb.String())
	}
	// Without a valid version, nothing to fall back to.
	if err := be.Remove(ctx, backend.Handle{Type: backend.Configs, Name: backend.NameOf(mustConfig(t, owner))}); err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Open(ctx, be, []byte("pw"), opts); err == nil {
		t.Fatal("opened with no valid config")
	}
}

func mustConfig(t *testing.T, r *repository.Repository) []byte {
	b, err := trust.MarshalConfig(r.Config(), r.Keys().OwnerSign)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setKDF rewrites a key file's argon2id parameters in place (the header
// is authenticated, so the file no longer opens, but it parses).
func setKDF(buf []byte, p crypto.KDFParams) []byte {
	b := bytes.Clone(buf)
	binary.LittleEndian.PutUint32(b[10:], p.Memory)
	binary.LittleEndian.PutUint32(b[14:], p.Time)
	b[18] = p.Threads
	return b
}

// TestPlantedKeyFilesSkipped (R24, issue 10 item 11): stored key files
// above MaxStoredKDF, malformed ones and those beyond MaxStoredKeyTries
// are never tried; Open says so with a warning.
func TestPlantedKeyFilesSkipped(t *testing.T) {
	ctx := context.Background()
	be, owner := initMem(t)
	m := owner.Keys().Material
	good, err := repository.ExportKey(&m, []byte("attacker"), quickKDF, owner.Now(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if h, _, err := crypto.ParseKeyFileHeader(setKDF(good, crypto.KDFParams{Memory: 512 * 1024, Time: 4, Threads: 4})); err != nil || h.KDF.Memory != 512*1024 {
		t.Fatalf("setKDF: %v %+v", err, h)
	}
	var heavy []string
	for _, p := range []crypto.KDFParams{
		{Memory: 512 * 1024, Time: 4, Threads: 4},
		{Memory: 64 * 1024, Time: 64, Threads: 4},
		{Memory: 64 * 1024, Time: 3, Threads: 64},
	} {
		heavy = append(heavy, plant(t, be, backend.Keys, setKDF(good, p)))
	}
	bad := plant(t, be, backend.Keys, []byte("CAIRNKEY junk"))
	opts, lb := capture(t)
	if _, err := repository.Open(ctx, be, []byte("pw"), opts); err != nil {
		t.Fatal(err)
	}
	log := lb.String()
	for _, n := range append(heavy, bad) {
		if !strings.Contains(log, "skipping a key file") || !strings.Contains(log, "keys/"+n) {
			t.Errorf("no warning names keys/%s", n[:8])
		}
		if strings.Contains(log, `msg="trying key file" file=keys/`+n) {
			t.Errorf("keys/%s tried", n[:8])
		}
	}
	// Bounded: with many cheap planted files, at most MaxStoredKeyTries are tried.
	for i := 0; i < repository.MaxStoredKeyTries+4; i++ {
		k, err := repository.ExportKey(&m, []byte("attacker"), quickKDF, owner.Now(), "x")
		if err != nil {
			t.Fatal(err)
		}
		plant(t, be, backend.Keys, k)
	}
	opts, lb = capture(t)
	repository.Open(ctx, be, []byte("wrong"), opts)
	if n := strings.Count(lb.String(), "trying key file"); n != repository.MaxStoredKeyTries {
		t.Fatalf("%d key files tried, want %d", n, repository.MaxStoredKeyTries)
	}
	if !strings.Contains(lb.String(), "too many key files") {
		t.Fatal("no warning about untried key files")
	}
	// key list shows the junk file as invalid and does not fail.
	keys, err := owner.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	invalid := 0
	for _, k := range keys {
		if k.Invalid != "" {
			invalid++
		}
	}
	if invalid != 1 {
		t.Fatalf("%d invalid key files listed, want 1", invalid)
	}
}

// TestRevokeWriter: a revoked writer's statements up to its last one stay
// valid, later ones do not; the roster lists it as revoked only.
func TestRevokeWriter(t *testing.T) {
	ctx := context.Background()
	be, owner := initMem(t)
	wm, _ := owner.NewKeyMaterial(crypto.RoleWriter)
	if err := owner.AddWriter(ctx, wm, "web-1"); err != nil {
		t.Fatal(err)
	}
	wk, _ := wm.Parse()
	w, err := repository.OpenWithKeys(ctx, be, wk, "", configBytesOf(t, be), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	commitOne(t, w, "one")
	commitOne(t, w, "two")
	id := ed25519.PublicKey(wk.SignerID())
	wr, err := repository.OpenWithKeys(ctx, be, wk, "", configBytesOf(t, be), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wr.RevokeWriter(ctx, id); err == nil {
		t.Fatal("a writer revoked a writer")
	}
	last, err := owner.RevokeWriter(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if last != 2 {
		t.Fatalf("last seq %d, want 2", last)
	}
	r, err := repository.Open(ctx, be, []byte("pw"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ro := r.Roster()
	if len(ro.Writers) != 0 || len(ro.Revoked) != 1 || !r.MayCommit(id, 2) || r.MayCommit(id, 3) {
		t.Fatalf("roster after revocation: %+v", ro)
	}
	if _, err := owner.RevokeWriter(ctx, id); err == nil {
		t.Fatal("revoked twice")
	}
}
