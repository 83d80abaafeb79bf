package rest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server"
)

// TestFetchIdentity: the identity a client fetches is the server's (same
// fingerprint); wrong credentials get an error naming the status, without
// the password.
func TestFetchIdentity(t *testing.T) {
	addr, data := startServer(t, server.Options{})
	ctx := context.Background()
	u, _ := rest.ParseURL(fmt.Sprintf("rest:http://suite:%s@%s/suite/x", password, addr))
	id, err := rest.FetchIdentity(ctx, nil, u)
	if err != nil {
		t.Fatal(err)
	}
	pub := repository.ServerPublic(id)
	if err := pub.Validate(); err != nil {
		t.Fatal(err)
	}
	want, _ := data.Identity.Fingerprint()
	if pub.Fingerprint() != want {
		t.Fatalf("fetched fingerprint %s, server's %s", pub.Fingerprint(), want)
	}
	bad, _ := rest.ParseURL(fmt.Sprintf("rest:http://suite:wrong-password-9@%s/suite/x", addr))
	_, err = rest.FetchIdentity(ctx, nil, bad)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-password-9") {
		t.Fatalf("wrong credentials: %v", err)
	}
}
