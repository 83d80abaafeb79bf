package crypto_test

import (
	"bytes"
	"errors"
	"testing"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// TestReadBlindness is R5 at the crypto level. Metadata (pack headers, index
// fragments, metadata headers, metadata key slots) is sealed to the
// metadata identity; content key slots and owner headers are sealed to the
// owner. A writer opens none of them, whatever identity it tries; the
// server opens metadata only; the owner opens everything.
func TestReadBlindness(t *testing.T) {
	k := newTestKeys(t)
	var session [32]byte
	copy(session[:], bytes.Repeat([]byte{7}, 32))

	metaObj, err := crypto.Seal([]byte("CRH1 pack header or CRI1 index fragment"), k.owner.MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	ownerHdr, err := crypto.Seal([]byte(`{"paths":["/home"]}`), k.owner.OwnerRecipient)
	if err != nil {
		t.Fatal(err)
	}
	contentSlot, err := crypto.WrapSessionKey(&session, k.writer.OwnerRecipient)
	if err != nil {
		t.Fatal(err)
	}
	metaSlot, err := crypto.WrapSessionKey(&session, k.writer.MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	// An identity a writer can make for itself matches no stanza.
	own, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ownHybrid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}

	type attempt struct {
		name     string
		ct       []byte
		id       age.Identity
		notMine  error
		slot     bool
		wantOpen bool
	}
	attempts := []attempt{
		// writer: nothing opens
		{"writer: pack header / index fragment", metaObj, k.writer.MetaIdentity, crypto.ErrNeedsMetadata, false, false},
		{"writer own X25519: pack header", metaObj, own, crypto.ErrNeedsMetadata, false, false},
		{"writer own hybrid: pack header", metaObj, ownHybrid, crypto.ErrNeedsMetadata, false, false},
		{"writer: owner header", ownerHdr, k.writer.OwnerIdentity, crypto.ErrNeedsOwner, false, false},
		{"writer own hybrid: owner header", ownerHdr, ownHybrid, crypto.ErrNeedsOwner, false, false},
		{"writer own X25519: owner header", ownerHdr, own, crypto.ErrNeedsOwner, false, false},
		{"writer: content key slot", contentSlot, k.writer.OwnerIdentity, crypto.ErrNeedsOwner, true, false},
		{"writer own hybrid: content key slot", contentSlot, ownHybrid, crypto.ErrNeedsOwner, true, false},
		{"writer: metadata key slot", metaSlot, k.writer.MetaIdentity, crypto.ErrNeedsMetadata, true, false},
		{"writer own X25519: metadata key slot", metaSlot, own, crypto.ErrNeedsMetadata, true, false},
		// server: metadata only
		{"server: pack header", metaObj, k.server.MetaIdentity, crypto.ErrNeedsMetadata, false, true},
		{"server: metadata key slot", metaSlot, k.server.MetaIdentity, crypto.ErrNeedsMetadata, true, true},
		{"server: owner header", ownerHdr, k.server.OwnerIdentity, crypto.ErrNeedsOwner, false, false},
		{"server meta identity: owner header", ownerHdr, k.server.MetaIdentity, crypto.ErrNeedsOwner, false, false},
		{"server meta identity: content key slot", contentSlot, k.server.MetaIdentity, crypto.ErrNeedsOwner, true, false},
		// owner: everything
		{"owner: pack header", metaObj, k.owner.MetaIdentity, crypto.ErrNeedsMetadata, false, true},
		{"owner: owner header", ownerHdr, k.owner.OwnerIdentity, crypto.ErrNeedsOwner, false, true},
		{"owner: content key slot", contentSlot, k.owner.OwnerIdentity, crypto.ErrNeedsOwner, true, true},
		{"owner: metadata key slot", metaSlot, k.owner.MetaIdentity, crypto.ErrNeedsMetadata, true, true},
		// the owner's content identity does not open metadata
		{"owner identity: pack header", metaObj, k.owner.OwnerIdentity, crypto.ErrNeedsMetadata, false, false},
	}
	for _, a := range attempts {
		var err error
		if a.slot {
			var got [32]byte
			got, err = crypto.UnwrapSessionKey(a.ct, a.id, a.notMine)
			if err == nil && got != session {
				t.Errorf("%s: unwrapped a different key", a.name)
			}
		} else {
			_, err = crypto.Open(a.ct, a.id, a.notMine)
		}
		switch {
		case a.wantOpen && err != nil:
			t.Errorf("%s: %v", a.name, err)
		case !a.wantOpen && !errors.Is(err, a.notMine):
			t.Errorf("%s: err = %v, want %v", a.name, err, a.notMine)
		}
	}
}

func TestOpenCorrupted(t *testing.T) {
	k := newTestKeys(t)
	ct, err := crypto.Seal([]byte("metadata"), k.owner.MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{len(ct) - 1, len(ct) - 20, len(ct) / 2} {
		b := bytes.Clone(ct)
		b[i] ^= 0x40
		if _, err := crypto.Open(b, k.server.MetaIdentity, crypto.ErrNeedsMetadata); !errors.Is(err, crypto.ErrDecrypt) && !errors.Is(err, crypto.ErrNeedsMetadata) {
			t.Errorf("flip at %d: err = %v", i, err)
		} else if err == nil {
			t.Errorf("flip at %d opened", i)
		}
	}
	for _, b := range [][]byte{nil, []byte("not age"), ct[:len(ct)-1]} {
		if _, err := crypto.Open(b, k.server.MetaIdentity, crypto.ErrNeedsMetadata); !errors.Is(err, crypto.ErrDecrypt) {
			t.Errorf("Open(%d bytes) err = %v, want ErrDecrypt", len(b), err)
		}
	}
	// A slot that holds anything but 32 bytes is refused.
	bad, _ := crypto.Seal(make([]byte, 31), k.owner.OwnerRecipient)
	if _, err := crypto.UnwrapSessionKey(bad, k.owner.OwnerIdentity, crypto.ErrNeedsOwner); !errors.Is(err, crypto.ErrDecrypt) {
		t.Errorf("31-byte slot: err = %v, want ErrDecrypt", err)
	}
}

func TestParseRecipientIdentity(t *testing.T) {
	k := newTestKeys(t)
	if _, err := crypto.ParseRecipient(k.ownerM.OwnerRecipient); err != nil {
		t.Error(err)
	}
	if _, err := crypto.ParseRecipient(k.ownerM.MetaRecipient); err != nil {
		t.Error(err)
	}
	if _, err := crypto.ParseIdentity(k.ownerM.OwnerIdentity); err != nil {
		t.Error(err)
	}
	if _, err := crypto.ParseIdentity(k.ownerM.MetaIdentity); err != nil {
		t.Error(err)
	}
	if _, err := crypto.ParseRecipient("age1qqq"); err == nil {
		t.Error("ParseRecipient accepted garbage")
	}
}
