package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/retention"
)

func testOwnerKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func testRequest() *OwnerRequest {
	return &OwnerRequest{
		RepoID: strings.Repeat("ab", 32), Head: SnapshotHead([]string{"b", "a"}),
		Time: time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC), Nonce: strings.Repeat("0f", 16),
		Action: ActionForget, Policy: &RequestPolicy{Keep: retention.Policy{Daily: 7}, Within: 36 * time.Hour, GroupBy: "host,paths"},
		Prune: true, Grace: time.Hour, RepackThreshold: 0.5,
	}
}

func TestOwnerRequestRoundTrip(t *testing.T) {
	key := testOwnerKey(1)
	buf, err := SealOwnerRequest(testRequest(), key)
	if err != nil {
		t.Fatal(err)
	}
	got, signer, err := OpenOwnerRequest(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !signer.Equal(key.Public()) {
		t.Fatal("signer is not the key that signed")
	}
	want := testRequest()
	if got.RepoID != want.RepoID || got.Head != want.Head || !got.Time.Equal(want.Time) || got.Nonce != want.Nonce ||
		got.Action != want.Action || !reflect.DeepEqual(got.Policy.Rules(), want.Policy.Rules()) || got.Policy.GroupBy != want.Policy.GroupBy ||
		!got.Prune || got.Grace != time.Hour || got.RepackThreshold != 0.5 {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if got.Policy.Rules().Within != 36*time.Hour {
		t.Fatalf("within %v lost", got.Policy.Rules().Within)
	}
}

func TestOwnerRequestRefusesTampering(t *testing.T) {
	key := testOwnerKey(1)
	buf, err := SealOwnerRequest(testRequest(), key)
	if err != nil {
		t.Fatal(err)
	}
	// Every byte of the body and the signature is covered.
	for i := 8; i < len(buf); i++ {
		if i >= len(buf)-96 && i < len(buf)-64 {
			continue // the signer key: a changed one fails too, checked below
		}
		b := bytes.Clone(buf)
		b[i] ^= 0x01
		if _, _, err := OpenOwnerRequest(b); !errors.Is(err, crypto.ErrBadSignature) {
			t.Fatalf("byte %d flipped: %v, want a bad signature", i, err)
		}
	}
	// Another key named as the signer.
	b := bytes.Clone(buf)
	copy(b[len(b)-96:], testOwnerKey(2).Public().(ed25519.PublicKey))
	if _, _, err := OpenOwnerRequest(b); !errors.Is(err, crypto.ErrBadSignature) {
		t.Fatalf("signer replaced: %v", err)
	}
	// A signature under another context (a tombstone's) never verifies.
	js := buf[8 : len(buf)-96]
	b = append(bytes.Clone(buf[:len(buf)-64]), crypto.Sign(key, crypto.SigTombstone, js)...)
	if _, _, err := OpenOwnerRequest(b); !errors.Is(err, crypto.ErrBadSignature) {
		t.Fatalf("tombstone context accepted: %v", err)
	}
}

func TestOwnerRequestMalformed(t *testing.T) {
	key := testOwnerKey(1)
	good, _ := SealOwnerRequest(testRequest(), key)
	resign := func(body string) []byte {
		b := append([]byte("CRO1"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
		b = append(b, body...)
		b = append(b, key.Public().(ed25519.PublicKey)...)
		return append(b, crypto.Sign(key, SigOwnerRequest, []byte(body))...)
	}
	for name, buf := range map[string][]byte{
		"empty":        nil,
		"wrong magic":  append([]byte("CRC1"), good[4:]...),
		"truncated":    good[:len(good)-1],
		"longer":       append(bytes.Clone(good), 0),
		"too large":    make([]byte, MaxOwnerRequest+1),
		"not json":     resign("{"),
		"unknown":      resign(`{"repo_id":"` + strings.Repeat("ab", 32) + `","surprise":1}`),
		"two values":   resign(`{} {}`),
		"no action":    resign(`{"repo_id":"` + strings.Repeat("ab", 32) + `","head":"` + strings.Repeat("00", 32) + `","nonce":"` + strings.Repeat("00", 16) + `","time":"2026-12-06T17:00:00Z"}`),
		"short repoid": resign(`{"repo_id":"abcd","head":"` + strings.Repeat("00", 32) + `","nonce":"` + strings.Repeat("00", 16) + `","time":"2026-12-06T17:00:00Z","action":"prune"}`),
	} {
		if _, _, err := OpenOwnerRequest(buf); !errors.Is(err, ErrOwnerRequest) {
			t.Errorf("%s: %v, want ErrOwnerRequest", name, err)
		}
	}
}

func TestOwnerRequestCheck(t *testing.T) {
	for name, mod := range map[string]func(r *OwnerRequest){
		"no nonce":        func(r *OwnerRequest) { r.Nonce = "" },
		"no time":         func(r *OwnerRequest) { r.Time = time.Time{} },
		"bad head":        func(r *OwnerRequest) { r.Head = "zz" },
		"unknown action":  func(r *OwnerRequest) { r.Action = "delete-everything" },
		"nothing to do":   func(r *OwnerRequest) { r.Policy = nil },
		"empty policy":    func(r *OwnerRequest) { r.Policy = &RequestPolicy{GroupBy: "host"} },
		"two kinds":       func(r *OwnerRequest) { r.Policy.Importance = 3 },
		"bad group":       func(r *OwnerRequest) { r.Policy.GroupBy = "colour" },
		"bad snapshot":    func(r *OwnerRequest) { r.Snapshots = []string{"../config"} },
		"prune w/ policy": func(r *OwnerRequest) { r.Action = ActionPrune },
		"negative grace":  func(r *OwnerRequest) { r.Grace = -time.Second },
		"threshold":       func(r *OwnerRequest) { r.RepackThreshold = 2 },
	} {
		r := testRequest()
		mod(r)
		if _, err := SealOwnerRequest(r, testOwnerKey(1)); !errors.Is(err, ErrOwnerRequest) {
			t.Errorf("%s: sealed (%v)", name, err)
		}
	}
	ids := &OwnerRequest{RepoID: strings.Repeat("ab", 32), Head: SnapshotHead(nil), Time: time.Now(), Nonce: strings.Repeat("01", 16),
		Action: ActionForget, Snapshots: []string{strings.Repeat("cd", 32)}}
	if err := ids.Check(); err != nil {
		t.Fatalf("forget by ID: %v", err)
	}
}

func TestSnapshotHead(t *testing.T) {
	if SnapshotHead([]string{"a", "b"}) != SnapshotHead([]string{"b", "a"}) {
		t.Fatal("the head depends on listing order")
	}
	for _, other := range [][]string{{"a"}, {"a", "b", "c"}, {"ab"}, nil} {
		if SnapshotHead(other) == SnapshotHead([]string{"a", "b"}) {
			t.Fatalf("%q has the head of [a b]", other)
		}
	}
}

// FuzzOpenOwnerRequest: the server's decoder of requests from the
// network never panics, and whatever it accepts passes Check and
// verifies under the key it names.
func FuzzOpenOwnerRequest(f *testing.F) {
	key := testOwnerKey(1)
	good, _ := SealOwnerRequest(testRequest(), key)
	f.Add(good)
	ids := testRequest()
	ids.Policy, ids.Snapshots = nil, []string{strings.Repeat("cd", 32)}
	b, _ := SealOwnerRequest(ids, key)
	f.Add(b)
	f.Add([]byte("CRO1"))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, buf []byte) {
		r, signer, err := OpenOwnerRequest(buf)
		if err != nil {
			if r != nil || signer != nil {
				t.Fatal("a refused request came back with a value")
			}
			return
		}
		if err := r.Check(); err != nil {
			t.Fatalf("accepted a request Check refuses: %v", err)
		}
		l := binary.LittleEndian.Uint32(buf[4:])
		if crypto.Verify(signer, SigOwnerRequest, buf[8:8+l], buf[len(buf)-64:]) != nil {
			t.Fatal("accepted a signature that does not verify")
		}
	})
}
