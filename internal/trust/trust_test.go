package trust_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/trust"
)

var (
	ownerPub, ownerPriv, _ = ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	otherPub, otherPriv, _ = ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{2}, 64)))
	writerPub, _, _        = ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{3}, 64)))
)

func repoID() []byte { return bytes.Repeat([]byte{0xaa}, 32) }

func sampleConfig() *trust.Config {
	return &trust.Config{
		Format: trust.FormatVersion, Seq: 1, RepoID: repoID(), Created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Chunker: "fastcdc-gear-v1", ChunkMin: 256 << 10, ChunkAvg: 1 << 20, ChunkMax: 4 << 20,
		Compression: "zstd", PackSize: 16 << 20, Wrap: trust.WrapHybrid,
		OwnerRecipient: "age1pq1...", OwnerSignPub: ownerPub, MetaRecipient: "age1...", DedupGen: 1,
	}
}

func sampleRoster() *trust.Roster {
	return &trust.Roster{
		RepoID: repoID(), Seq: 3, Created: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC),
		Writers: []trust.Writer{{ID: writerPub, Name: "web-1", Added: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), DedupGen: 1}},
		Revoked: []trust.Revocation{{ID: otherPub, LastSeq: 12, At: time.Date(2025, 1, 20, 0, 0, 0, 0, time.UTC)}},
	}
}

func TestConfigRoundTrip(t *testing.T) {
	c := sampleConfig()
	b, err := trust.MarshalConfig(c, ownerPriv)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:4]) != "CRC1" || int(binary.LittleEndian.Uint32(b[4:]))+8+64 != len(b) {
		t.Fatalf("envelope %q, length field %d, file %d", b[:4], binary.LittleEndian.Uint32(b[4:]), len(b))
	}
	got, err := trust.ParseConfig(b, ownerPub)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("config %+v, want %+v", got, c)
	}
}

func TestRosterRoundTrip(t *testing.T) {
	r := sampleRoster()
	b, err := trust.MarshalRoster(r, ownerPriv)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:4]) != "CRR1" {
		t.Fatalf("magic %q", b[:4])
	}
	got, err := trust.ParseRoster(b, ownerPub)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("roster %+v, want %+v", got, r)
	}
	if !got.Has(writerPub, 1) || !got.Has(writerPub, 1<<40) {
		t.Error("listed writer may not sign")
	}
	if !got.Has(otherPub, 12) || got.Has(otherPub, 13) {
		t.Error("revoked writer: up to LastSeq only")
	}
	if got.Has(ownerPub, 1) {
		t.Error("unlisted key may sign")
	}
	// In memory (before marshalling), a key both listed and revoked is
	// limited by its revocation.
	both := sampleRoster()
	both.Revoked[0].ID = writerPub
	if both.Has(writerPub, 13) || !both.Has(writerPub, 12) {
		t.Error("a listed key's revocation is ignored")
	}
}

// TestSignedByAnotherKey: a config or roster signed by any key but the
// pinned owner key is refused (R2, R3).
func TestSignedByAnotherKey(t *testing.T) {
	cb, _ := trust.MarshalConfig(sampleConfig(), otherPriv)
	if _, err := trust.ParseConfig(cb, ownerPub); !errors.Is(err, crypto.ErrBadSignature) {
		t.Errorf("config signed by another key: %v", err)
	}
	rb, _ := trust.MarshalRoster(sampleRoster(), otherPriv)
	if _, err := trust.ParseRoster(rb, ownerPub); !errors.Is(err, crypto.ErrBadSignature) {
		t.Errorf("roster signed by another key: %v", err)
	}
	if _, err := trust.ParseConfig(cb, nil); err == nil {
		t.Error("config accepted with no pinned key")
	}
}

// TestContextsNotInterchangeable: a config's signature does not make it
// (or its body) a valid roster, and vice versa, even where the JSON body
// would decode as the other.
func TestContextsNotInterchangeable(t *testing.T) {
	// A body that is valid as both: only fields both types share.
	body := []byte(`{"repo_id":"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqo=","seq":5}`)
	envelope := func(magic, ctx string) []byte {
		b := append([]byte(magic), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
		b = append(b, body...)
		return append(b, crypto.Sign(ownerPriv, ctx, body)...)
	}
	if _, err := trust.ParseRoster(envelope("CRR1", crypto.SigRoster), ownerPub); err != nil {
		t.Fatalf("control: %v", err)
	}
	if _, err := trust.ParseRoster(envelope("CRR1", crypto.SigConfig), ownerPub); !errors.Is(err, crypto.ErrBadSignature) {
		t.Errorf("config-signed body parsed as a roster: %v", err)
	}
	if _, err := trust.ParseConfig(envelope("CRC1", crypto.SigRoster), ownerPub); !errors.Is(err, crypto.ErrBadSignature) {
		t.Errorf("roster-signed body parsed as a config: %v", err)
	}
	// A whole config relabelled as a roster.
	cb, _ := trust.MarshalConfig(sampleConfig(), ownerPriv)
	copy(cb, "CRR1")
	if _, err := trust.ParseRoster(cb, ownerPub); err == nil {
		t.Error("relabelled config parsed as a roster")
	}
	// A snapshot-statement signature over the same body is not a config one.
	if _, err := trust.ParseConfig(envelope("CRC1", crypto.SigSnapshot), ownerPub); !errors.Is(err, crypto.ErrBadSignature) {
		t.Errorf("statement-signed body parsed as a config: %v", err)
	}
}

func TestConfigRefuses(t *testing.T) {
	sign := func(body []byte) []byte {
		b := append([]byte("CRC1"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
		b = append(b, body...)
		return append(b, crypto.Sign(ownerPriv, crypto.SigConfig, body)...)
	}
	mod := func(f func(m map[string]any)) []byte {
		js, _ := json.Marshal(sampleConfig())
		var m map[string]any
		json.Unmarshal(js, &m)
		f(m)
		js, _ = json.Marshal(m)
		return sign(js)
	}
	good, _ := trust.MarshalConfig(sampleConfig(), ownerPriv)
	cases := map[string][]byte{
		"format 1":      mod(func(m map[string]any) { m["format"] = 1 }), // before signed packs (R23)
		"format 3":      mod(func(m map[string]any) { m["format"] = 3 }),
		"format 0":      mod(func(m map[string]any) { m["format"] = 0 }),
		"seq 0":         mod(func(m map[string]any) { m["seq"] = 0 }),
		"short repo ID": mod(func(m map[string]any) { m["repo_id"] = "qqo=" }),
		"unknown field": mod(func(m map[string]any) { m["owner_identity"] = "AGE-SECRET-KEY-1..." }),
		"not JSON":      sign([]byte("not json")),
		"bad magic":     append([]byte("CRX1"), good[4:]...),
		"truncated":     good[:len(good)-1],
		"trailing":      append(bytes.Clone(good), 0),
		"empty":         nil,
		"length lies":   func() []byte { b := bytes.Clone(good); b[4]++; return b }(),
		"flipped body":  func() []byte { b := bytes.Clone(good); b[20] ^= 1; return b }(),
		"too large":     append([]byte("CRC1"), make([]byte, 4<<20)...),
	}
	for name, b := range cases {
		if _, err := trust.ParseConfig(b, ownerPub); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRosterRefuses(t *testing.T) {
	bad := map[string]*trust.Roster{
		"seq 0":          func() *trust.Roster { r := sampleRoster(); r.Seq = 0; return r }(),
		"short repo ID":  func() *trust.Roster { r := sampleRoster(); r.RepoID = r.RepoID[:31]; return r }(),
		"short writer":   func() *trust.Roster { r := sampleRoster(); r.Writers[0].ID = r.Writers[0].ID[:31]; return r }(),
		"no writer key":  func() *trust.Roster { r := sampleRoster(); r.Writers[0].ID = nil; return r }(),
		"short revoked":  func() *trust.Roster { r := sampleRoster(); r.Revoked[0].ID = r.Revoked[0].ID[:5]; return r }(),
		"listed+revoked": func() *trust.Roster { r := sampleRoster(); r.Revoked[0].ID = writerPub; return r }(),
	}
	for name, r := range bad {
		b, err := trust.MarshalRoster(r, ownerPriv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := trust.ParseRoster(b, ownerPub); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	good, _ := trust.MarshalConfig(sampleConfig(), ownerPriv)
	f.Add(good, false)
	js, _ := json.Marshal(sampleConfig())
	f.Add(js, true)
	f.Fuzz(func(t *testing.T, b []byte, signBody bool) {
		if signBody { // reach the decoder behind the signature
			body := b
			b = append([]byte("CRC1"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
			b = append(b, body...)
			b = append(b, crypto.Sign(ownerPriv, crypto.SigConfig, body)...)
		}
		c, err := trust.ParseConfig(b, ownerPub)
		if err != nil {
			return
		}
		if c.Format != trust.FormatVersion || len(c.RepoID) != 32 || c.Seq == 0 {
			t.Fatalf("accepted config %+v", c)
		}
	})
}

func FuzzParseRoster(f *testing.F) {
	good, _ := trust.MarshalRoster(sampleRoster(), ownerPriv)
	f.Add(good, false)
	js, _ := json.Marshal(sampleRoster())
	f.Add(js, true)
	f.Fuzz(func(t *testing.T, b []byte, signBody bool) {
		if signBody {
			body := b
			b = append([]byte("CRR1"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
			b = append(b, body...)
			b = append(b, crypto.Sign(ownerPriv, crypto.SigRoster, body)...)
		}
		r, err := trust.ParseRoster(b, ownerPub)
		if err != nil {
			return
		}
		if len(r.RepoID) != 32 || r.Seq == 0 {
			t.Fatalf("accepted roster %+v", r)
		}
		for _, w := range r.Writers {
			if len(w.ID) != ed25519.PublicKeySize {
				t.Fatalf("accepted writer key of %d bytes", len(w.ID))
			}
		}
		r.Has(writerPub, 1)
	})
}
