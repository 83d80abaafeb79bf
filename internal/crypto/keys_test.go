package crypto_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// testKeys are one repository's owner, writer and server keys.
type testKeys struct {
	ownerM, writerM, serverM *crypto.KeyMaterial
	owner, writer, server    *crypto.Keys
}

func newTestKeys(t testing.TB) *testKeys {
	t.Helper()
	om, err := crypto.NewOwner("")
	if err != nil {
		t.Fatal(err)
	}
	wm, err := om.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	sm, err := om.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	k := &testKeys{ownerM: om, writerM: wm, serverM: sm}
	for _, p := range []struct {
		m   *crypto.KeyMaterial
		dst **crypto.Keys
	}{{om, &k.owner}, {wm, &k.writer}, {sm, &k.server}} {
		if *p.dst, err = p.m.Parse(); err != nil {
			t.Fatalf("%v: %v", p.m.Role, err)
		}
	}
	return k
}

// roundTrip passes key material through a key file, as storage would.
func roundTrip(t *testing.T, m *crypto.KeyMaterial) *crypto.Keys {
	t.Helper()
	payload, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	buf, err := crypto.SealKeyFile([]byte("pw"), cheapKDF, m.Role, 0, "", payload)
	if err != nil {
		t.Fatal(err)
	}
	h, pt, err := crypto.OpenKeyFile(buf, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if h.Role != m.Role {
		t.Fatalf("header role %v, want %v", h.Role, m.Role)
	}
	m2, err := crypto.UnmarshalKeyMaterial(pt)
	if err != nil {
		t.Fatal(err)
	}
	k, err := m2.Parse()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyMaterialRoundTrip(t *testing.T) {
	tk := newTestKeys(t)
	owner := roundTrip(t, tk.ownerM)
	writer := roundTrip(t, tk.writerM)
	server := roundTrip(t, tk.serverM)

	// Every role pins the same trust anchors (R2).
	if owner.Fingerprint() != writer.Fingerprint() || owner.Fingerprint() != server.Fingerprint() {
		t.Fatal("roles pin different trust anchors")
	}
	if owner.RepoID != writer.RepoID || owner.RepoID != server.RepoID {
		t.Fatal("roles disagree on the repository ID")
	}
	if owner.OwnerIdentity == nil || owner.OwnerSign == nil || owner.MetaIdentity == nil || !bytes.Equal(owner.SignerID(), owner.OwnerSignPub) {
		t.Fatal("owner key lacks a secret")
	}
	if _, ok := owner.OwnerRecipient.(*age.HybridRecipient); !ok {
		t.Fatalf("owner recipient is %T, want the hybrid ML-KEM-768 + X25519 recipient", owner.OwnerRecipient)
	}
	if writer.OwnerIdentity != nil || writer.OwnerSign != nil || writer.MetaIdentity != nil || writer.Sign == nil {
		t.Fatal("writer key holds an identity or lacks its signing key")
	}
	if bytes.Equal(writer.SignerID(), owner.SignerID()) {
		t.Fatal("writer signs with the owner's key")
	}
	if server.OwnerIdentity != nil || server.OwnerSign != nil || server.Sign != nil || server.MetaIdentity == nil || len(server.Dedup) != 0 {
		t.Fatal("server key holds the wrong secrets")
	}
	if owner.Dedup[1] != writer.Dedup[1] || owner.CurrentDedup != 1 || writer.CurrentDedup != 1 {
		t.Fatal("writer and owner disagree on dedup generation 1")
	}
}

func TestNewOwnerWithServerMeta(t *testing.T) {
	sid, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	m, err := crypto.NewOwner(sid.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	if m.MetaIdentity != "" || m.MetaRecipient != sid.Recipient().String() {
		t.Fatal("owner of a server repository holds the metadata identity")
	}
	k := roundTrip(t, m)
	if k.MetaIdentity != nil {
		t.Fatal("parsed owner key has a metadata identity")
	}
	if _, err := m.NewServer(); err == nil {
		t.Fatal("NewServer without the metadata identity succeeded")
	}
	if _, err := crypto.NewOwner("not a recipient"); err == nil {
		t.Fatal("NewOwner accepted a malformed recipient")
	}
	w, _ := m.NewWriter()
	if _, err := w.NewWriter(); err == nil {
		t.Fatal("a writer created a writer key")
	}
}

func TestNewWriterTakesNewestDedup(t *testing.T) {
	tk := newTestKeys(t)
	m := *tk.ownerM
	m.Dedup = []crypto.DedupSecret{{Gen: 1, Secret: make([]byte, 32)}, {Gen: 3, Secret: bytes.Repeat([]byte{3}, 32)}, {Gen: 2, Secret: bytes.Repeat([]byte{2}, 32)}}
	w, err := m.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Dedup) != 1 || w.Dedup[0].Gen != 3 {
		t.Fatalf("writer dedup %+v, want only generation 3", w.Dedup)
	}
	k, err := m.Parse()
	if err != nil || k.CurrentDedup != 3 {
		t.Fatalf("owner CurrentDedup %d, %v", k.CurrentDedup, err)
	}
}

// TestParseRefuses: key material that is malformed, or that gives a role
// a secret it must not hold, is refused.
func TestParseRefuses(t *testing.T) {
	tk := newTestKeys(t)
	other := newTestKeys(t)
	cases := map[string]struct {
		base *crypto.KeyMaterial
		mod  func(m *crypto.KeyMaterial)
	}{
		"unknown role":           {tk.writerM, func(m *crypto.KeyMaterial) { m.Role = 0 }},
		"short repo ID":          {tk.writerM, func(m *crypto.KeyMaterial) { m.RepoID = m.RepoID[:31] }},
		"bad owner recipient":    {tk.writerM, func(m *crypto.KeyMaterial) { m.OwnerRecipient = "age1xyz" }},
		"short owner sign pub":   {tk.writerM, func(m *crypto.KeyMaterial) { m.OwnerSignPub = m.OwnerSignPub[:31] }},
		"hybrid meta recipient":  {tk.writerM, func(m *crypto.KeyMaterial) { m.MetaRecipient = m.OwnerRecipient }},
		"writer without seed":    {tk.writerM, func(m *crypto.KeyMaterial) { m.WriterSignSeed = nil }},
		"writer without dedup":   {tk.writerM, func(m *crypto.KeyMaterial) { m.Dedup = nil }},
		"short dedup secret":     {tk.writerM, func(m *crypto.KeyMaterial) { m.Dedup = []crypto.DedupSecret{{Gen: 1, Secret: make([]byte, 16)}} }},
		"owner identity garbage": {tk.ownerM, func(m *crypto.KeyMaterial) { m.OwnerIdentity = "AGE-SECRET-KEY-1XYZ" }},
		"owner seed mismatch":    {tk.ownerM, func(m *crypto.KeyMaterial) { m.OwnerSignSeed = other.ownerM.OwnerSignSeed }},
		"owner short seed":       {tk.ownerM, func(m *crypto.KeyMaterial) { m.OwnerSignSeed = m.OwnerSignSeed[:16] }},
		"meta identity mismatch": {tk.serverM, func(m *crypto.KeyMaterial) { m.MetaIdentity = other.serverM.MetaIdentity }},
		"server without meta":    {tk.serverM, func(m *crypto.KeyMaterial) { m.MetaIdentity = "" }},

		// A role holding a secret it must not hold (R5; docs/threat-model.md, "Keys"):
		// a writer that could open metadata or content is not read-blind,
		// and a server with dedup keys could compute IDs of guessed content.
		"writer with meta identity":  {tk.writerM, func(m *crypto.KeyMaterial) { m.MetaIdentity = tk.ownerM.MetaIdentity }},
		"writer with owner identity": {tk.writerM, func(m *crypto.KeyMaterial) { m.OwnerIdentity = tk.ownerM.OwnerIdentity }},
		"writer with owner seed":     {tk.writerM, func(m *crypto.KeyMaterial) { m.OwnerSignSeed = tk.ownerM.OwnerSignSeed }},
		"server with dedup":          {tk.serverM, func(m *crypto.KeyMaterial) { m.Dedup = tk.ownerM.Dedup }},
		"server with owner identity": {tk.serverM, func(m *crypto.KeyMaterial) { m.OwnerIdentity = tk.ownerM.OwnerIdentity }},
		"server with owner seed":     {tk.serverM, func(m *crypto.KeyMaterial) { m.OwnerSignSeed = tk.ownerM.OwnerSignSeed }},
		"server with writer seed":    {tk.serverM, func(m *crypto.KeyMaterial) { m.WriterSignSeed = tk.writerM.WriterSignSeed }},
		"owner with writer seed":     {tk.ownerM, func(m *crypto.KeyMaterial) { m.WriterSignSeed = tk.writerM.WriterSignSeed }},
	}
	for name, c := range cases {
		m := *c.base
		c.mod(&m)
		if _, err := m.Parse(); !errors.Is(err, crypto.ErrBadKeyFile) {
			t.Errorf("%s: err = %v, want ErrBadKeyFile", name, err)
		}
	}
	if _, err := crypto.UnmarshalKeyMaterial([]byte("{")); !errors.Is(err, crypto.ErrBadKeyFile) {
		t.Errorf("UnmarshalKeyMaterial of bad JSON: %v", err)
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []crypto.Role{crypto.RoleOwner, crypto.RoleWriter, crypto.RoleServer} {
		got, err := crypto.ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r, got, err)
		}
	}
	if _, err := crypto.ParseRole("admin"); err == nil {
		t.Error("ParseRole(admin) succeeded")
	}
	if crypto.Role(0).Valid() || crypto.Role(4).Valid() {
		t.Error("invalid roles report Valid")
	}
}

// FuzzKeyMaterial: decoding and parsing a key file's payload never panics;
// parsed keys have what their role needs and nothing it must not hold.
func FuzzKeyMaterial(f *testing.F) {
	tk := newTestKeys(f)
	for _, m := range []*crypto.KeyMaterial{tk.ownerM, tk.writerM, tk.serverM} {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"role":2,"repo_id":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := crypto.UnmarshalKeyMaterial(b)
		if err != nil {
			return
		}
		k, err := m.Parse()
		if err != nil {
			return
		}
		switch k.Role {
		case crypto.RoleOwner:
			if k.OwnerIdentity == nil || len(k.OwnerSign) != ed25519.PrivateKeySize {
				t.Fatal("owner without its secrets")
			}
		case crypto.RoleWriter:
			if k.OwnerIdentity != nil || k.MetaIdentity != nil || k.Sign == nil {
				t.Fatal("writer is not read-blind")
			}
		case crypto.RoleServer:
			if k.OwnerIdentity != nil || k.Sign != nil || len(k.Dedup) != 0 || k.MetaIdentity == nil {
				t.Fatal("server holds the wrong secrets")
			}
		}
	})
}
