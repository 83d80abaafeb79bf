package rest_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/backendtest"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/server"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/servertest"
	"github.com/cairnbackup/cairn/internal/server/state"
)

const password = "suite-password-1"

// startServer runs a real cairn server on a loopback listener with one
// client, "suite", that may delete (the suite removes files).
func startServer(t *testing.T, opts server.Options) (addr string, data *datadir.Data) {
	t.Helper()
	ctx := context.Background()
	data, err := datadir.Init(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := data.NewClient(ctx, state.Client{Name: "suite"}, []byte(password)); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Serve(t, srv, func() { data.Close() }), data
}

func TestSuite(t *testing.T) {
	// One repository per case: far more than a client may have by default.
	addr, _ := startServer(t, server.Options{MaxRepos: 1 << 20})
	var n atomic.Int64
	backendtest.RunSuite(t, func(t *testing.T) backend.Backend {
		u, err := rest.ParseURL(fmt.Sprintf("rest:http://suite:%s@%s/suite/r%d", password, addr, n.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		be, err := rest.Create(context.Background(), rest.Config{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		return be
	})
}

func TestCreateOpen(t *testing.T) {
	addr, _ := startServer(t, server.Options{})
	ctx := context.Background()
	u, _ := rest.ParseURL(fmt.Sprintf("rest:http://suite:%s@%s/suite/x/", password, addr))
	if _, err := rest.Open(ctx, rest.Config{URL: u}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
	be, err := rest.Create(ctx, rest.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, backend.NewByteReader([]byte("cfg"))); err != nil {
		t.Fatal(err)
	}
	if _, err := rest.Create(ctx, rest.Config{URL: u}); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("create existing: %v", err)
	}
	if _, err := rest.Open(ctx, rest.Config{URL: u}); err != nil {
		t.Fatalf("open: %v", err)
	}
	if loc := be.Properties().Location; loc != fmt.Sprintf("rest:http://suite:***@%s/suite/x/", addr) {
		t.Fatalf("location %q shows the password or is wrong", loc)
	}
	bad, _ := rest.ParseURL(fmt.Sprintf("rest:http://suite:wrong@%s/suite/x/", addr))
	if _, err := rest.Open(ctx, rest.Config{URL: bad}); err == nil {
		t.Fatal("wrong password accepted")
	}
}

func TestTransportSecurity(t *testing.T) {
	for _, tt := range []struct {
		loc      string
		insecure bool
		ok       bool
	}{
		{"rest:http://u:p@127.0.0.1:1/r/", false, true},
		{"rest:http://u:p@[::1]:1/r/", false, true},
		{"rest:http://u:p@localhost:1/r/", false, true},
		{"rest:https://u:p@backup.example:1/r/", false, true},
		{"rest:http://u:p@backup.example:1/r/", false, false},
		{"rest:http://u:p@192.0.2.1:1/r/", false, false},
		{"rest:http://u:p@192.0.2.1:1/r/", true, true},
	} {
		u, err := rest.ParseURL(tt.loc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = rest.Open(context.Background(), rest.Config{URL: u, Insecure: tt.insecure})
		if refused := errors.Is(err, rest.ErrInsecure); refused == tt.ok {
			t.Errorf("%s insecure=%v: got %v", tt.loc, tt.insecure, err)
		}
	}
	for _, bad := range []string{"rest:ftp://h/", "rest:http:///x", "rest:http://h/x?y=1"} {
		if _, err := rest.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}
