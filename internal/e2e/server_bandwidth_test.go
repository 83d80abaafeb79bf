//go:build linux

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestServerBandwidthRate: `server destination add --bandwidth` reads a
// rate as --limit-upload does: a bare number is refused with the same
// message (restic's --limit-upload counts KiB/s), a rate with a unit is
// taken.
func TestServerBandwidthRate(t *testing.T) {
	e := newEnv(t)
	e.vars["CAIRN_SERVER_DATA"] = filepath.Join(e.dir, "server")
	e.ok("server", "init")
	replicas := filepath.Join(e.dir, "replicas")
	r := e.run("server", "destination", "add", "x", "--location", replicas, "--all", "--bandwidth", "20")
	expectExit(t, r, 1, `--bandwidth: invalid rate "20": give a unit, such as 20MiB/s or 500KiB/s`)
	lu := e.run("--limit-upload", "20", "snapshots")
	expectExit(t, lu, 1, `--limit-upload: invalid rate "20": give a unit, such as 20MiB/s or 500KiB/s`)
	if a, b := strings.TrimPrefix(r.stderr, "cairn: --bandwidth"), strings.TrimPrefix(lu.stderr, "cairn: --limit-upload"); a != b {
		t.Errorf("the two flags' messages differ:\n%s%s", r.stderr, lu.stderr)
	}
	expectExit(t, e.run("server", "destination", "add", "x", "--location", replicas, "--all", "--bandwidth", "0MiB/s"), 1, "want a rate above zero")
	e.ok("server", "destination", "add", "x", "--location", replicas, "--all", "--bandwidth", "20MiB/s")
}
