// Package profile serves Go's runtime profiles of a running server
// (`server run --pprof-listen`), on a loopback address only.
package profile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// Listen opens addr for Go's runtime profiles (/debug/pprof/), for
// performance work on a running server (`server run --pprof-listen`). The
// profiles name code and hold no credentials, but they are served without
// any, so addr must be a loopback address.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address: profiles are served without credentials", addr)
	}
	return net.Listen("tcp", addr)
}

// Serve serves /debug/pprof/ on ln until ctx ends. It turns on
// the mutex and block profiles (a contended lock in 5 is sampled, a wait
// of 10 µs or more on a lock or channel), which cost a little while on.
func Serve(ctx context.Context, ln net.Listener) error {
	runtime.SetMutexProfileFraction(5)
	runtime.SetBlockProfileRate(int((10 * time.Microsecond).Nanoseconds()))
	defer runtime.SetMutexProfileFraction(0)
	defer runtime.SetBlockProfileRate(0)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
