// Package layers holds the test that keeps imports flowing one way:
// cmd → services → archiver/restorer/checker → repository → format packages
// → backend. A package may import only packages of a strictly lower layer
// (or of its own layer where listed as a peer).
package layers

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/cairnbackup/cairn/"

// layer of each internal package; lower numbers sit lower.
var layer = map[string]int{
	"internal/blob":                0,
	"internal/ticker":              0,
	"internal/atomicfile":          0,
	"internal/backend":             1,
	"internal/backend/mem":         2,
	"internal/backend/local":       2,
	"internal/backend/backendtest": 3,
	"internal/backend/retry":       2,
	"internal/backend/s3":          3,
	"internal/backend/location":    4,
	"internal/minioserver":         1,
	"internal/restapi":             2,
	"internal/backend/rest":        3,
	"internal/crypto":              1,
	"internal/chunker":             1,
	"internal/snapshot":            2,
	"internal/pack":                2,
	"internal/index":               2,
	"internal/trust":               2,
	"internal/fsmeta":              3,
	"internal/retention":           3,
	"internal/repository":          4,
	"internal/archiver":            5,
	"internal/restorer":            5,
	"internal/forget":              5,
	"internal/prune":               6,
	"internal/checker":             6,
	"internal/repair":              7, // uses prune's index rewrite (6)
	"internal/server/state":        7, // stores policies (forget, prune)
	"internal/server/maintain":     8,
	"internal/server":              9,
	"internal/server/servertest":   1, // test helper importing no cairn package, so the server's own tests can use it
	"internal/agent":               8,
	"cmd/cairn":                    10,
}

func TestImportsFlowDown(t *testing.T) {
	root := filepath.Join("..", "..")
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
		from, ok := layer[rel]
		if !ok {
			t.Errorf("package %s has no layer: add it to the table in this test", rel)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(path, module) {
				continue
			}
			to := strings.TrimPrefix(path, module)
			l, ok := layer[to]
			if !ok {
				t.Errorf("%s imports %s, which has no layer", p, to)
				continue
			}
			if l >= from {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must flow down", p, from, to, l)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
