//go:build linux

package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServerPprofListen: `server run --pprof-listen` serves Go's profiles
// on a loopback address, and refuses any other address.
func TestServerPprofListen(t *testing.T) {
	s := runCairnServer(t)
	r := s.run("server", "run", "--listen", "127.0.0.1:0", "--pprof-listen", "0.0.0.0:0")
	expectExit(t, r, 1, "not a loopback address")

	s.start(t, "--pprof-listen", "127.0.0.1:0")
	if s.pprof == "" {
		t.Fatalf("server did not report its profiles' address; log:\n%s", s.log())
	}
	resp, err := http.Get("http://" + s.pprof + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200s", resp.StatusCode, body)
	}
}
