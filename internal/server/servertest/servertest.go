// Package servertest runs a cairn server on a loopback listener for a
// test: the listener, the goroutine that serves, and at the end of the
// test a shutdown that must be clean. The server's own tests and the REST
// backend's start their servers this way.
//
// It imports no cairn package, so that the server package's own tests
// can use it: it runs anything with the server's Serve method.
package servertest

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
)

// Server is what Serve runs: a *server.Server.
type Server interface {
	Serve(ctx context.Context, ln, metricsLn net.Listener, tlsConf *tls.Config) error
}

// Serve runs srv over plain HTTP on a loopback listener until the test
// ends. Then it stops srv, fails the test if serving ended with an error,
// and calls each of after in order (closing what srv used: its storage,
// its data directory). It returns the listener's address, host:port.
func Serve(t testing.TB, srv Server, after ...func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		for _, f := range after {
			f()
		}
	})
	return ln.Addr().String()
}
