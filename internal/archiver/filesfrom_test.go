package archiver

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadPathList(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.log", "b.log", "c.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	globs := "# comment\n\n  " + dir + "/c.txt  \n" + dir + "/*.log\n" + dir + "/*.none\n/no/such/file\r\n"
	paths, unmatched, err := ReadPathList(strings.NewReader(globs), ListGlobs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{dir + "/c.txt", dir + "/a.log", dir + "/b.log", "/no/such/file"}
	if !slices.Equal(paths, want) || !slices.Equal(unmatched, []string{dir + "/*.none"}) {
		t.Fatalf("globs: got %q, unmatched %q; want %q", paths, unmatched, want)
	}

	verbatim := " lead space\n#not a comment\n\n*.log\n"
	paths, _, err = ReadPathList(strings.NewReader(verbatim), ListVerbatim)
	if err != nil || !slices.Equal(paths, []string{" lead space", "#not a comment", "*.log"}) {
		t.Fatalf("verbatim: got %q, %v", paths, err)
	}

	raw := "/a\nnewline\x00/b c\x00\x00/last"
	paths, _, err = ReadPathList(strings.NewReader(raw), ListRaw)
	if err != nil || !slices.Equal(paths, []string{"/a\nnewline", "/b c", "/last"}) {
		t.Fatalf("raw: got %q, %v", paths, err)
	}
}
