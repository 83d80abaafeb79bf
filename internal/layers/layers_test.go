// Package layers holds the test that states who may import whom among
// cairn's packages, and fails on a violation:
//
//   - layers: imports flow one way, cmd → server → client → services →
//     archiver/walker/checker → repository → format packages → backend.
//     A package may import only packages of a strictly lower layer.
//   - mayImport: a package listed there may import only the cairn packages
//     listed with it (the server's inner packages stay narrow).
//   - importedOnlyBy: a package listed there may be imported only by the
//     packages listed with it (the repository format stays behind
//     internal/repository; the server's parts behind the server).
//
// Every package named in the tables must exist, and every package must
// have a layer.
package layers

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/cairnbackup/cairn/"

// layer of each package; lower numbers sit lower.
var layer = map[string]int{
	"internal/blob":                       0,
	"internal/ticker":                     0,
	"internal/alert":                      0,
	"internal/schedule":                   0,
	"internal/units":                      0,
	"internal/atomicfile":                 0,
	"internal/clock":                      0, // a sleep a context ends (ratelimit, backend/retry)
	"internal/ratelimit":                  1, // a token bucket for bandwidth limits (client flags, replication)
	"internal/backend":                    1,
	"internal/backend/mem":                2,
	"internal/backend/blockcache":         2, // small reads of a pack served from cached blocks (s3, rest)
	"internal/backend/local":              2,
	"internal/backend/backendtest":        3,
	"internal/backend/retry":              2,
	"internal/replicate":                  2,
	"internal/backend/s3":                 3,
	"internal/backend/location":           4,
	"internal/minioserver":                1,
	"internal/restapi":                    2,
	"internal/backend/rest":               3,
	"internal/crypto":                     1,
	"internal/chunker":                    1,
	"internal/snapshot":                   2,
	"internal/pack":                       2,
	"internal/index":                      2,
	"internal/trust":                      2,
	"internal/fsmeta":                     3,
	"internal/retention":                  1, // imports no cairn package; trust (2) names policies in owner requests
	"internal/repository":                 4,
	"internal/archiver":                   5,
	"internal/walker":                     5, // trees: check, repair, copy, mount, ls, find, diff, stats
	"internal/restorer":                   6, // restore, on walker (5)
	"internal/forget":                     5,
	"internal/prune":                      6,
	"internal/checker":                    6,
	"internal/copier":                     6, // archiver and walker (5)
	"internal/fusefs":                     6,
	"internal/agent":                      11, // schedule; cmd/cairn runs it
	"internal/repair":                     7,  // uses prune's index rewrite (6)
	"internal/client":                     7,  // what cmd/cairn, the agent and the server's maintenance share
	"internal/server/storage":             5,
	"internal/server/repohttp":            3,
	"internal/server/state":               9, // clients, policies (7), sessions, chains; carries reports and replicas
	"internal/server/state/schema":        1, // the state database's tables and migrations: no cairn package
	"internal/server/state/reports":       2, // monitoring's records, on schema (1)
	"internal/server/state/policy":        7, // a retention policy: forget (5), prune (6)
	"internal/server/state/replicas":      8, // records of the repositories' copies: a destination's policy (7)
	"internal/server/maintain":            10,
	"internal/server/verify":              10,
	"internal/server/metrics":             10,
	"internal/server/tenant":              10,
	"internal/server/coord":               6,  // storage's leases (5)
	"internal/server/identity":            5,  // repository's ServerPublic (4)
	"internal/server/writerlist":          11, // a writer's snapshot list: verify and tenant (10)
	"internal/server/replicatenant":       3,  // what a replica tenant stores and deletes: backend, restapi (2)
	"internal/server/enrol":               6,  // ?identity: identity (5), repohttp (3)
	"internal/server/counters":            0,  // request counters: no cairn package
	"internal/server/profile":             0,  // runtime profiles: no cairn package
	"internal/server/datadir":             10, // state (9), storage and identity (5)
	"internal/server/sessions":            10,
	"internal/server":                     12, // imports owner (11)
	"internal/server/owner":               11, // owner requests: maintain (10) carries them out
	"internal/server/agentreport":         11, // agent run reports into the state database
	"internal/server/monitor":             10, // backup levels and alerts from the state database
	"internal/server/web":                 11, // the status page: monitor and state; cmd/cairn mounts it
	"internal/server/replication/closure": 7,  // what a replica needs: prune's marking (6), repository (4)
	"internal/server/replication":         11, // copies repositories to destinations; cmd/cairn starts it beside the server
	"internal/server/audit":               12, // re-hashes and heals the primary and replication's replicas (11); cmd/cairn starts it
	"internal/server/servertest":          1,  // test helper importing no cairn package, so the server's own tests can use it
	"internal/testutil/smtptest":          0,  // test helper: an SMTP receiver for alert's and the e2e monitor tests
	"cmd/cairn":                           13,
}

// mayImport: the only cairn packages each listed package may import.
var mayImport = map[string][]string{
	// The state database knows its records, each domain's package (a
	// replica ledger's are file handles), nothing of HTTP, storage or
	// repositories.
	"internal/server/state": {"internal/server/state/policy", "internal/server/state/replicas", "internal/server/state/reports", "internal/server/state/schema"},
	// The schema owns the tables; the record packages query them.
	"internal/server/state/schema":   {},
	"internal/server/state/reports":  {"internal/server/state/schema"},
	"internal/server/state/replicas": {"internal/backend", "internal/server/state/policy", "internal/server/state/schema"},
	"internal/server/state/policy":   {"internal/forget", "internal/prune", "internal/retention"},
	// The scheduler reaches repositories through its Host (the server).
	"internal/server/maintain": {"internal/backend", "internal/forget", "internal/prune",
		"internal/repository", "internal/retention", "internal/server/state", "internal/server/state/policy"},
	// Where repositories are kept: backends, nothing of tenants.
	"internal/server/storage": {"internal/backend", "internal/backend/local", "internal/backend/location", "internal/backend/s3",
		"internal/restapi"}, // client names' rules, before a client's files are deleted
	// One repository's REST handler: nothing of tenants, state or storage.
	"internal/server/repohttp": {"internal/backend", "internal/restapi", "internal/units"},
	// Metrics read the state database; nothing of HTTP handling or storage.
	"internal/server/metrics": {"internal/restapi", "internal/server/state"},
	// Who a client is and what it holds: credentials, login and upload
	// limits, bytes stored; nothing of HTTP or storage.
	"internal/server/tenant": {"internal/server/state"},
	// Coordination: locks and storage leases, nothing of HTTP or tenants.
	"internal/server/coord": {"internal/backend/s3", "internal/server/storage"},
	// The server's own keys: crypto, and repository for what clients enrol.
	"internal/server/identity": {"internal/atomicfile", "internal/crypto", "internal/repository"},
	// The server's small jobs, each beside the wiring: nothing of the
	// state database, storage or tenants but what each names.
	"internal/server/writerlist":    {"internal/backend", "internal/restapi", "internal/server/repohttp", "internal/server/tenant", "internal/server/verify"},
	"internal/server/replicatenant": {"internal/backend", "internal/restapi"},
	"internal/server/enrol":         {"internal/restapi", "internal/server/identity", "internal/server/repohttp"},
	"internal/server/counters":      {},
	"internal/server/profile":       {},
	// The data directory: state database, identity, client records, storage.
	"internal/server/datadir": {"internal/backend/location", "internal/restapi", "internal/server/identity",
		"internal/server/state", "internal/server/storage"},
	// Upload validation goes through the repository's verifier: it reads
	// no key material or trust format itself (no crypto, no trust).
	"internal/server/verify": {"internal/backend", "internal/blob", "internal/repository", "internal/restapi",
		"internal/server/repohttp", "internal/server/state", "internal/snapshot"},
	// Backup sessions: their REST requests and the state database's table.
	"internal/server/sessions": {"internal/restapi", "internal/server/repohttp", "internal/server/state"},
	// The REST client speaks the protocol; it never imports the server.
	"internal/backend/rest": {"internal/backend", "internal/backend/blockcache", "internal/blob", "internal/clock", "internal/crypto", "internal/ratelimit", "internal/restapi", "internal/snapshot"},
	"internal/restapi":      {"internal/backend"},
	// Trees: read through the repository, nothing of files on disk,
	// restores or commands.
	"internal/walker": {"internal/blob", "internal/repository", "internal/snapshot"},
	// Monitoring reads the state database and notifies; nothing of HTTP,
	// storage or repositories.
	"internal/server/monitor": {"internal/alert", "internal/server/state", "internal/server/state/replicas", "internal/server/state/reports"},
	// The audit reads stored files (content-named: no key, no format) and
	// heals them through backends; the state database keeps its coverage.
	"internal/server/audit": {"internal/backend", "internal/repository", "internal/server/replication", "internal/server/state", "internal/server/state/replicas"},
	// The snapshot closure reads repositories; nothing of the state
	// database, destinations or HTTP.
	"internal/server/replication/closure": {"internal/backend", "internal/blob", "internal/prune", "internal/repository", "internal/snapshot"},
	// Agent run reports: a request in, a row in the state database.
	"internal/server/agentreport": {"internal/restapi", "internal/server/repohttp", "internal/server/state", "internal/server/state/reports"},
	// Owner requests reach the server through its Host.
	"internal/server/owner": {"internal/backend", "internal/crypto", "internal/forget", "internal/prune", "internal/repository",
		"internal/restapi", "internal/retention", "internal/server/maintain", "internal/server/repohttp", "internal/server/state", "internal/server/state/reports", "internal/trust"},
	// The status page reads what monitoring computes; nothing of storage
	// or repositories.
	"internal/server/web": {"internal/alert", "internal/server/monitor", "internal/server/state", "internal/server/state/reports"},
	// The client core: opening, selection, walking; never the server.
	"internal/client": {"internal/atomicfile", "internal/backend", "internal/backend/location", "internal/backend/rest", "internal/blob", "internal/crypto",
		"internal/ratelimit", "internal/repository", "internal/restapi", "internal/snapshot", "internal/trust", "internal/walker"},
}

// importedOnlyBy: the only packages that may import each listed package.
var importedOnlyBy = map[string][]string{
	// Stored objects' formats: internal/repository reads and writes them.
	// checker, prune, repair and restorer still reach in; each entry here
	// is one to take out, never one to add.
	"internal/pack":  {"internal/repository", "internal/checker", "internal/prune"},
	"internal/index": {"internal/repository", "internal/checker", "internal/prune", "internal/repair", "internal/restorer"},
	// Restoring to disk is the restore command's; everything else that
	// reads trees walks them with internal/walker.
	"internal/restorer": {"cmd/cairn"},
	// The client core serves front ends: the command, the agent, and the
	// server's replication when it is a client of another cairn server
	// (it checks that server's pinned fingerprint the way a client does).
	"internal/client": {"cmd/cairn", "internal/agent", "internal/server/replication"},
	// The server's parts are the server's.
	"internal/server":                     {"cmd/cairn"},
	"internal/server/state":               {"internal/server", "internal/server/datadir", "internal/server/owner", "internal/server/agentreport", "internal/server/maintain", "internal/server/verify", "internal/server/metrics", "internal/server/tenant", "internal/server/sessions", "internal/server/monitor", "internal/server/replication", "internal/server/audit", "internal/server/web", "cmd/cairn"}, // cmd/cairn manages clients and policies in it
	"internal/server/state/schema":        {"internal/server/state", "internal/server/state/reports", "internal/server/state/replicas"},
	"internal/server/state/reports":       {"internal/server/state", "internal/server", "internal/server/agentreport", "internal/server/monitor", "internal/server/owner", "internal/server/web", "cmd/cairn"},
	"internal/server/state/replicas":      {"internal/server/state", "internal/server/replication", "internal/server/audit", "internal/server/monitor", "cmd/cairn"},
	"internal/server/state/policy":        {"internal/server/state", "internal/server/state/replicas", "internal/server/maintain", "cmd/cairn"},
	"internal/server/maintain":            {"internal/server", "internal/server/owner", "internal/server/replication"}, // replication applies a destination's retention with maintain.Apply
	"internal/server/storage":             {"internal/server", "internal/server/datadir", "internal/server/coord"},
	"internal/server/repohttp":            {"internal/server", "internal/server/owner", "internal/server/agentreport", "internal/server/verify", "internal/server/sessions", "internal/server/writerlist", "internal/server/enrol"},
	"internal/server/verify":              {"internal/server", "internal/server/writerlist"},
	"internal/server/writerlist":          {"internal/server"},
	"internal/server/replicatenant":       {"internal/server"},
	"internal/server/enrol":               {"internal/server"},
	"internal/server/counters":            {"internal/server"},
	"internal/server/profile":             {"cmd/cairn"},
	"internal/server/metrics":             {"internal/server"},
	"internal/server/tenant":              {"internal/server", "internal/server/writerlist"},
	"internal/server/coord":               {"internal/server"},
	"internal/server/identity":            {"internal/server/datadir", "internal/server/enrol"},
	"internal/server/datadir":             {"internal/server", "cmd/cairn"}, // cmd/cairn opens the data directory for its server subcommands
	"internal/server/sessions":            {"internal/server"},
	"internal/server/monitor":             {"cmd/cairn", "internal/server/web"},
	"internal/server/replication/closure": {"internal/server/replication"},
	"internal/server/replication":         {"cmd/cairn", "internal/server/audit"}, // the audit opens the replicas (OpenReplica)
	"internal/server/web":                 {"cmd/cairn"},
	"internal/server/owner":               {"internal/server"},
	"internal/server/agentreport":         {"internal/server"},
}

// check returns every violation of the tables in graph (package → the
// cairn packages it imports).
func check(graph map[string][]string) []string {
	var bad []string
	for _, tables := range []map[string][]string{mayImport, importedOnlyBy} {
		for p, list := range tables {
			for _, q := range append([]string{p}, list...) {
				if _, ok := graph[q]; !ok {
					bad = append(bad, fmt.Sprintf("the rules name %s, which does not exist: fix the table in this test", q))
				}
			}
		}
	}
	for p := range layer {
		if _, ok := graph[p]; !ok {
			bad = append(bad, fmt.Sprintf("the layers name %s, which does not exist: remove it from the table in this test", p))
		}
	}
	for from, imps := range graph {
		lf, ok := layer[from]
		if !ok {
			bad = append(bad, fmt.Sprintf("package %s has no layer: add it to the table in this test", from))
			continue
		}
		for _, to := range imps {
			lt, ok := layer[to]
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s imports %s, which has no layer", from, to))
			case lt >= lf:
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): imports must flow down", from, lf, to, lt))
			}
			if allowed, ok := mayImport[from]; ok && !slices.Contains(allowed, to) {
				bad = append(bad, fmt.Sprintf("%s imports %s: it may import only %s", from, to, strings.Join(allowed, ", ")))
			}
			if by, ok := importedOnlyBy[to]; ok && !slices.Contains(by, from) {
				bad = append(bad, fmt.Sprintf("%s imports %s, which only %s may import", from, to, strings.Join(by, ", ")))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// importGraph reads the non-test imports of every package in the module.
func importGraph(t *testing.T) map[string][]string {
	root := filepath.Join("..", "..")
	graph := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "bench" || strings.HasPrefix(n, ".") && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "internal/e2e") || strings.HasPrefix(rel, "internal/layers") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if _, ok := graph[rel]; !ok {
			graph[rel] = nil
		}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if to, ok := strings.CutPrefix(path, module); ok && !slices.Contains(graph[rel], to) {
				graph[rel] = append(graph[rel], to)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}

func TestImports(t *testing.T) {
	for _, v := range check(importGraph(t)) {
		t.Error(v)
	}
}

// TestCheckCatchesViolations: each kind of violation in a made-up graph
// is reported.
func TestCheckCatchesViolations(t *testing.T) {
	graph := importGraph(t)
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"upward", "internal/repository", "internal/archiver", "imports must flow down"},
		{"client imports server", "internal/backend/rest", "internal/server", "imports must flow down"},
		{"narrow package", "internal/server/state", "internal/repository", "it may import only"},
		{"verify reads trust itself", "internal/server/verify", "internal/trust", "it may import only"},
		{"verify holds keys itself", "internal/server/verify", "internal/crypto", "it may import only"},
		{"format outside repository", "internal/archiver", "internal/pack", "which only internal/repository"},
		{"server part outside server", "cmd/cairn", "internal/server/verify", "which only internal/server"},
		{"restore outside the command", "internal/checker", "internal/restorer", "which only cmd/cairn"},
		{"walker reaches for files", "internal/walker", "internal/fsmeta", "it may import only"},
		{"client imports the server", "internal/client", "internal/server", "imports must flow down"},
	} {
		g := map[string][]string{}
		for k, v := range graph {
			g[k] = v
		}
		g[tc.from] = append(slices.Clone(g[tc.from]), tc.to)
		bad := check(g)
		if !slices.ContainsFunc(bad, func(s string) bool {
			return strings.HasPrefix(s, tc.from+" ") && strings.Contains(s, tc.want)
		}) {
			t.Errorf("%s: %s → %s not reported (%q); got %q", tc.name, tc.from, tc.to, tc.want, bad)
		}
	}
	g := map[string][]string{}
	for k, v := range graph {
		g[k] = v
	}
	g["internal/made-up"] = nil
	delete(g, "internal/ticker")
	bad := strings.Join(check(g), "\n")
	for _, want := range []string{"package internal/made-up has no layer", "the layers name internal/ticker, which does not exist"} {
		if !strings.Contains(bad, want) {
			t.Errorf("not reported: %s; got\n%s", want, bad)
		}
	}
}
