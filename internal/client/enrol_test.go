package client

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

func TestSameFingerprint(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"sha256:ABCD", "abcd", true},
		{"  abcd\n", "SHA256:abcd", true},
		{"abcd", "abce", false},
		{"", "abcd", false},
	} {
		if got := SameFingerprint(tc.a, tc.b); got != tc.same {
			t.Errorf("SameFingerprint(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// TestServerIdentityRefusesPlainHTTP: no request goes in the clear to a
// host off loopback unless Insecure; loopback is allowed (and here finds
// nothing to talk to).
func TestServerIdentityRefusesPlainHTTP(t *testing.T) {
	ctx := context.Background()
	u, _ := url.Parse("http://backup.example.org:8000/bob/repo/")
	if _, err := ServerIdentity(ctx, Options{}, u); err == nil || !strings.Contains(err.Error(), "refusing plain http://") {
		t.Errorf("plain http off loopback: %v", err)
	}
	lo, _ := url.Parse("http://127.0.0.1:1/bob/repo/") // port 1: nothing listens
	if _, err := ServerIdentity(ctx, Options{}, lo); err == nil || strings.Contains(err.Error(), "refusing plain http://") {
		t.Errorf("plain http to loopback is allowed (and fails to connect here): %v", err)
	}
}
