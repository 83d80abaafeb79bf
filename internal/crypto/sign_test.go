package crypto_test

import (
	"crypto/ed25519"
	"errors"
	"regexp"
	"testing"

	"github.com/cairnbackup/cairn/internal/crypto"
)

var contexts = []string{crypto.SigConfig, crypto.SigRoster, crypto.SigSnapshot, crypto.SigReceipt, crypto.SigTombstone}

func TestSignContexts(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	msg := []byte("object bytes")
	for _, c := range contexts {
		sig := crypto.Sign(priv, c, msg)
		if err := crypto.Verify(pub, c, msg, sig); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		for _, d := range contexts {
			if d != c {
				if err := crypto.Verify(pub, d, msg, sig); !errors.Is(err, crypto.ErrBadSignature) {
					t.Errorf("a %q signature verifies as %q", c, d)
				}
			}
		}
		if crypto.Verify(otherPub, c, msg, sig) == nil {
			t.Errorf("%s: verifies under another key", c)
		}
		if crypto.Verify(pub, c, []byte("object bytez"), sig) == nil {
			t.Errorf("%s: verifies another message", c)
		}
		// A plain Ed25519 signature over the message alone is not one.
		if crypto.Verify(pub, c, msg, ed25519.Sign(priv, msg)) == nil {
			t.Errorf("%s: context-free signature verifies", c)
		}
	}
	// The context is separated from the message by a NUL, so moving bytes
	// between them does not keep a signature valid.
	sig := crypto.Sign(priv, "ab", []byte("c"))
	if crypto.Verify(pub, "a", []byte("bc"), sig) == nil || crypto.Verify(pub, "abc", nil, sig) == nil {
		t.Error("context/message boundary is ambiguous")
	}
	if crypto.Verify(pub[:31], crypto.SigConfig, msg, crypto.Sign(priv, crypto.SigConfig, msg)) == nil {
		t.Error("short public key accepted")
	}
	if crypto.Verify(pub, crypto.SigConfig, msg, nil) == nil {
		t.Error("empty signature accepted")
	}
	seen := map[string]bool{}
	for _, c := range contexts {
		if seen[c] {
			t.Errorf("context %q used twice", c)
		}
		seen[c] = true
	}
}

func TestFingerprint(t *testing.T) {
	fp := crypto.Fingerprint([]byte("a"), []byte("b"))
	if !regexp.MustCompile(`^SHA256:([0-9a-f]{4}-){7}[0-9a-f]{4}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q", fp)
	}
	// SHA-256("ab") = fb8e20fc2e4c3f24...
	if fp[:16] != "SHA256:fb8e-20fc" {
		t.Fatalf("fingerprint %q is not over the concatenated inputs", fp)
	}
	if crypto.Fingerprint([]byte("a")) == fp {
		t.Fatal("fingerprint ignores an input")
	}
}
