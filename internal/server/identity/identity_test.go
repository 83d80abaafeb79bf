package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteRead: an identity written is read back the same, with the same
// fingerprint; it is never replaced, and a damaged one is refused.
func TestWriteRead(t *testing.T) {
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "identity.json")
	if err := Write(path, id); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v, want mode 0600", fi.Mode(), err)
	}
	back, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := id.Fingerprint()
	if got, err := back.Fingerprint(); err != nil || got != want {
		t.Fatalf("fingerprint read back %q (%v), want %q", got, err, want)
	}
	pub, err := back.Public()
	if err != nil || !pub.CoordPub.Equal(id.SignPublic()) {
		t.Fatalf("public identity: %v", err)
	}
	other, _ := New()
	if err := Write(path, other); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("an identity was replaced: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"meta_identity":"x","sign_seed":"AAAA"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Fatal("a damaged identity was read")
	}
}
