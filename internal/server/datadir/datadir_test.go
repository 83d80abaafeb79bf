package datadir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/server/state"
)

func initData(t *testing.T) *Data {
	t.Helper()
	d, err := Init(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestInitOpen: a directory initialised once opens with the same identity;
// a second init is refused and keeps the identity (the key every cairn
// repository seals its metadata to, R21); a directory without a server,
// or with a damaged identity or state database, is refused with its path
// and nothing in it is replaced.
func TestInitOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Init(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := d.Identity.Fingerprint()
	d.Close()
	if fi, err := os.Stat(filepath.Join(dir, ReposDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("repos/: %v %v, want a directory of mode 0700", fi, err)
	}
	idBefore, _ := os.ReadFile(filepath.Join(dir, IdentityFile))
	if _, err := Init(ctx, dir); err == nil || !strings.Contains(err.Error(), "already holds a cairn server") {
		t.Fatalf("second init: %v", err)
	}
	if idAfter, _ := os.ReadFile(filepath.Join(dir, IdentityFile)); string(idAfter) != string(idBefore) {
		t.Fatal("a second init changed the server's identity")
	}
	d, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Identity.Fingerprint(); got != fp {
		t.Fatalf("reopened with fingerprint %s, initialised with %s", got, fp)
	}
	d.Close()

	empty := t.TempDir()
	if _, err := Open(ctx, empty); !errors.Is(err, ErrNotInitialized) || !strings.Contains(err.Error(), empty) {
		t.Fatalf("open of an empty directory: %v", err)
	}
	if exists(t, filepath.Join(empty, StateFile)) {
		t.Fatal("opening an empty directory made a state database")
	}

	damaged := t.TempDir()
	if err := os.WriteFile(filepath.Join(damaged, IdentityFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, damaged); err == nil || errors.Is(err, ErrNotInitialized) || !strings.Contains(err.Error(), "server identity") {
		t.Fatalf("open with a damaged identity: %v", err)
	}
	if _, err := Init(ctx, damaged); err == nil {
		t.Fatal("init over a damaged identity replaced it")
	}
	if b, _ := os.ReadFile(filepath.Join(damaged, IdentityFile)); string(b) != "{not json" {
		t.Fatal("the damaged identity was changed")
	}

	// A state database that is not one is refused, not replaced by an
	// empty one (which would drop every client record).
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(strings.Repeat("not a database ", 300)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir); err == nil {
		t.Fatal("a damaged state database opened")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, StateFile)); !strings.HasPrefix(string(b), "not a database") {
		t.Fatal("the damaged state database was overwritten")
	}
}

// TestInitFailures: an init that cannot finish says why and leaves no
// identity behind, so a second try after the cause is fixed succeeds; an
// identity file planted as a symbolic link is never written through (the
// server's secret keys would land where the link points).
func TestInitFailures(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(ctx, filepath.Join(file, "data")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("init under a file: %v", err)
	}

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, StateFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(ctx, dir); err == nil {
		t.Fatal("init with a directory in the state database's place")
	}
	if exists(t, filepath.Join(dir, IdentityFile)) {
		t.Fatal("a failed init left an identity behind")
	}
	if err := os.Remove(filepath.Join(dir, StateFile)); err != nil {
		t.Fatal(err)
	}
	d, err := Init(ctx, dir)
	if err != nil {
		t.Fatalf("init after the cause was removed: %v", err)
	}
	d.Close()

	planted := t.TempDir()
	target := filepath.Join(t.TempDir(), "stolen.json")
	if err := os.Symlink(target, filepath.Join(planted, IdentityFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(ctx, planted); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("init with a planted link: %v", err)
	}
	if exists(t, target) {
		t.Fatal("the server's identity was written through a planted link")
	}
}

// TestNewClient: a bad name or password is refused before anything is
// recorded; the password is stored only as a bcrypt hash.
func TestNewClient(t *testing.T) {
	ctx := context.Background()
	d := initData(t)
	for _, c := range []struct{ name, pw, want string }{
		{"../etc", "long enough pw", "client name"},
		{".hidden", "long enough pw", "client name"},
		{"bob", "short", "too short"},
		{"bob", strings.Repeat("x", 73), "too long"},
	} {
		if err := d.NewClient(ctx, state.Client{Name: c.name}, []byte(c.pw)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("client %q, password of %d bytes: %v, want %q", c.name, len(c.pw), err, c.want)
		}
	}
	if cs, err := d.State.Clients(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("refused clients were recorded: %v %v", cs, err)
	}
	pw := []byte(GeneratePassword())
	if err := d.NewClient(ctx, state.Client{Name: "bob"}, pw); err != nil {
		t.Fatal(err)
	}
	c, err := d.State.Client(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Hash, "$2") || strings.Contains(c.Hash, string(pw)) {
		t.Fatalf("stored %q, want a bcrypt hash", c.Hash)
	}
	if err := d.NewClient(ctx, state.Client{Name: "bob"}, pw); !errors.Is(err, state.ErrClientExists) {
		t.Fatalf("second client bob: %v", err)
	}
}

// TestGeneratePassword: 128 random bits, URL-safe, accepted by
// HashPassword.
func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 16 {
		pw := GeneratePassword()
		if len(pw) != 22 || strings.ContainsAny(pw, "+/=%:@") || seen[pw] {
			t.Fatalf("password %q (seen before: %v)", pw, seen[pw])
		}
		seen[pw] = true
	}
	if _, err := HashPassword([]byte(GeneratePassword())); err != nil {
		t.Fatal(err)
	}
}

// TestRemove: a client is removed with or without its files; a purge
// deletes only that client's; an unknown or invalid name removes nothing;
// when the storage cannot be reached the record stays, so the client's
// files are not orphaned unnamed. Client names are path components of
// the storage, so a name with a path in it is refused before a purge
// could delete outside the client's directory.
func TestRemove(t *testing.T) {
	ctx := context.Background()
	d := initData(t)
	for _, name := range []string{"alice", "bob", "bobby"} {
		if err := d.NewClient(ctx, state.Client{Name: name}, []byte("password "+name)); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(d.Dir, ReposDir, name, "repo", "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Dir, ReposDir, name, "repo", "config"), []byte("12345"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.StoredBytes("bob"); err != nil || n != 5 {
		t.Fatalf("bob stores %d bytes (%v), want 5", n, err)
	}
	if where, err := d.ClientWhere(ctx, "bob"); err != nil || where != filepath.Join(d.Dir, ReposDir, "bob") {
		t.Fatalf("bob's repositories are at %q (%v)", where, err)
	}

	if err := d.Remove(ctx, "../bob", true); err == nil || !strings.Contains(err.Error(), "client name") {
		t.Fatalf("remove ../bob: %v", err)
	}
	if err := d.Remove(ctx, "carol", true); !errors.Is(err, state.ErrNoClient) {
		t.Fatalf("remove of an unknown client: %v", err)
	}
	if err := d.Remove(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.State.Client(ctx, "alice"); !errors.Is(err, state.ErrNoClient) {
		t.Fatalf("alice after remove: %v", err)
	}
	if !exists(t, filepath.Join(d.Dir, ReposDir, "alice", "repo", "config")) {
		t.Fatal("remove without purge deleted alice's files")
	}
	if err := d.Remove(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	if exists(t, filepath.Join(d.Dir, ReposDir, "bob")) {
		t.Fatal("purge left bob's files")
	}
	if !exists(t, filepath.Join(d.Dir, ReposDir, "bobby", "repo", "config")) {
		t.Fatal("purging bob deleted bobby's files")
	}

	// The storage the state database names is gone (an unmounted disk).
	other := filepath.Join(t.TempDir(), "store")
	d2 := initData(t)
	if err := d2.SetStorage(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := d2.NewClient(ctx, state.Client{Name: "bob"}, []byte("password bob")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	if err := d2.Remove(ctx, "bob", true); err == nil || !strings.Contains(err.Error(), "client bob not removed") {
		t.Fatalf("purge with the storage gone: %v", err)
	}
	if _, err := d2.State.Client(ctx, "bob"); err != nil {
		t.Fatalf("a purge that could not reach the storage removed the record: %v", err)
	}
	if _, err := d2.StoredBytes("bob"); err == nil || !strings.Contains(err.Error(), "measure storage of bob") {
		t.Fatalf("stored bytes with the storage gone: %v", err)
	}
	if _, err := d2.ClientWhere(ctx, "bob"); err == nil {
		t.Fatal("ClientWhere with the storage gone")
	}
}

// TestRemovePurgeFails: a purge that fails once the record is gone says
// so and where the client's files are. The storage's place is taken by a
// file here, standing in for a storage that refuses the deletion.
func TestRemovePurgeFails(t *testing.T) {
	ctx := context.Background()
	d := initData(t)
	store := filepath.Join(t.TempDir(), "store")
	if err := d.SetStorage(ctx, store); err != nil {
		t.Fatal(err)
	}
	if err := d.NewClient(ctx, state.Client{Name: "bob"}, []byte("password bob")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(store); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := d.Remove(ctx, "bob", true)
	if err == nil || !strings.Contains(err.Error(), "client bob removed, but its repositories in "+filepath.Join(store, "bob")+" were not all deleted") {
		t.Fatalf("purge that fails: %v", err)
	}
}

// TestSetStorage: the storage is recorded once; setting the same again
// is accepted, moving it or a data directory that already holds
// repositories is refused (they would be left behind), and another REST
// server or a malformed location is refused before anything is recorded.
func TestSetStorage(t *testing.T) {
	ctx := context.Background()
	d := initData(t)
	if loc, err := d.Storage(ctx); err != nil || loc != "" {
		t.Fatalf("storage of a new server: %q %v", loc, err)
	}
	for _, c := range []struct{ loc, want string }{
		{"rest:https://example.com/", "not on another REST server"},
		{"s3:ftp://host/bucket", "--storage"},
	} {
		if err := d.SetStorage(ctx, c.loc); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("storage %s: %v, want %q", c.loc, err, c.want)
		}
	}
	// A directory that cannot be made (its parent is a file).
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.SetStorage(ctx, filepath.Join(file, "store")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("storage under a file: %v", err)
	}
	if loc, _ := d.Storage(ctx); loc != "" {
		t.Fatalf("a refused storage was recorded: %q", loc)
	}

	busy := initData(t)
	if err := os.MkdirAll(filepath.Join(busy.Dir, ReposDir, "bob", "repo"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := busy.SetStorage(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "already keeps repositories in") {
		t.Fatalf("storage of a server with repositories: %v", err)
	}

	store := filepath.Join(t.TempDir(), "store")
	if err := d.SetStorage(ctx, store); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(store); err != nil || !fi.IsDir() {
		t.Fatalf("the storage directory was not made: %v", err)
	}
	if loc, _ := d.Storage(ctx); loc != store {
		t.Fatalf("recorded storage %q, want %q", loc, store)
	}
	if err := d.SetStorage(ctx, store); err != nil {
		t.Fatalf("the same storage again: %v", err)
	}
	elsewhere := t.TempDir()
	if err := d.SetStorage(ctx, elsewhere); err == nil || !strings.Contains(err.Error(), "keeps its repositories at "+store) {
		t.Fatalf("moving the storage: %v", err)
	}
	if loc, _ := d.Storage(ctx); loc != store {
		t.Fatalf("storage after a refused move: %q", loc)
	}
	if st, err := d.OpenStorage(ctx); err != nil || st.ClientWhere("bob") != filepath.Join(store, "bob") {
		t.Fatalf("open storage: %v", err)
	}
}
