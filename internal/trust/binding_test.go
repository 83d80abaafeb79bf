package trust_test

import (
	"bytes"
	"crypto/ed25519"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/trust"
)

var boundPub, _, _ = ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{4}, 64)))

// TestRosterHostsRoundTrip: a writer's host binding survives encoding,
// and a roster written before binding existed (no "hosts") still decodes.
func TestRosterHostsRoundTrip(t *testing.T) {
	r := sampleRoster()
	r.Writers = append(r.Writers, trust.Writer{ID: boundPub, Name: "db", Added: r.Created, DedupGen: 1, Hosts: []string{"db-1", "db-2"}})
	r.Revoked[0].Name, r.Revoked[0].Hosts = "old", []string{"old-host"}
	b, err := trust.MarshalRoster(r, ownerPriv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := trust.ParseRoster(b, ownerPub)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("roster %+v, want %+v", got, r)
	}
	legacy, _ := trust.MarshalRoster(sampleRoster(), ownerPriv)
	if bytes.Contains(legacy, []byte(`"hosts"`)) || bytes.Contains(legacy, []byte(`"name":""`)) {
		t.Fatalf("an unbound roster encodes host fields: %s", legacy)
	}
	if _, err := trust.ParseRoster(legacy, ownerPub); err != nil {
		t.Fatal(err)
	}
}

func TestRosterBinding(t *testing.T) {
	r := sampleRoster()
	r.Writers = append(r.Writers, trust.Writer{ID: boundPub, Name: "db", Hosts: []string{"db-1", "db-2"}})
	cases := []struct {
		name    string
		id      []byte
		host    string
		known   bool
		allows  bool
		revoked bool
	}{
		{"unbound writer uses its name", writerPub, "web-1", true, true, false},
		{"unbound writer, another label", writerPub, "db-1", true, false, false},
		{"bound writer, first host", boundPub, "db-1", true, true, false},
		{"bound writer, second host", boundPub, "db-2", true, true, false},
		{"bound writer, its name is not a host", boundPub, "db", true, false, false},
		{"bound writer, owner's host", boundPub, "laptop", true, false, false},
		{"revoked without binding", otherPub, "", true, false, true},
		{"revoked without binding, any label", otherPub, "web-1", true, false, true},
		{"owner is not in the roster", ownerPub, "laptop", false, false, false},
	}
	for _, c := range cases {
		b, ok := r.Binding(c.id)
		if ok != c.known || b.Allows(c.host) != c.allows || b.Revoked != c.revoked {
			t.Errorf("%s: binding %+v known %v allows(%q) %v", c.name, b, ok, c.host, b.Allows(c.host))
		}
	}
}

// TestRevokeKeepsBinding: a revocation carries the writer's name and
// hosts, so its remaining snapshots stay attributed and bound.
func TestRevokeKeepsBinding(t *testing.T) {
	r := sampleRoster()
	r.Writers = append(r.Writers, trust.Writer{ID: boundPub, Name: "db", Hosts: []string{"db-1"}})
	at := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	out, err := r.Revoke(boundPub, 7, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Writers) != 2 || len(out.Writers) != 1 || len(out.Revoked) != 2 {
		t.Fatalf("revoke changed the original or lost entries: %+v / %+v", r, out)
	}
	b, ok := out.Binding(boundPub)
	if !ok || !b.Revoked || b.Name != "db" || !b.Allows("db-1") || out.Has(boundPub, 8) || !out.Has(boundPub, 7) {
		t.Fatalf("revoked binding %+v", b)
	}
	if _, err := r.Revoke(ownerPub, 1, at); err == nil {
		t.Fatal("revoked a key the roster does not list")
	}
}

func TestRosterRefusesBadHosts(t *testing.T) {
	for name, hosts := range map[string][]string{
		"empty":     {""},
		"over-long": {strings.Repeat("h", 256)},
	} {
		r := sampleRoster()
		r.Writers[0].Hosts = hosts
		b, _ := trust.MarshalRoster(r, ownerPriv)
		if _, err := trust.ParseRoster(b, ownerPub); err == nil {
			t.Errorf("%s host label accepted", name)
		}
		r = sampleRoster()
		r.Revoked[0].Hosts = hosts
		b, _ = trust.MarshalRoster(r, ownerPriv)
		if _, err := trust.ParseRoster(b, ownerPub); err == nil {
			t.Errorf("%s host label of a revoked writer accepted", name)
		}
	}
}
