package fsmeta

import (
	"reflect"
	"strings"
	"testing"
)

func TestExcluded(t *testing.T) {
	tests := []struct {
		patterns []string
		path     string
		isDir    bool
		want     bool
	}{
		{[]string{"*.o"}, "/src/a.o", false, true},
		{[]string{"*.o"}, "/src/a.o/b", false, false},
		{[]string{"*.o"}, "a.o", false, true},
		{[]string{"*.o"}, "/src/a.c", false, false},
		{[]string{"/abs/path"}, "/abs/path", true, true},
		{[]string{"/abs/path"}, "/x/abs/path", true, false},
		{[]string{"/abs/path"}, "/abs/path/child", false, false}, // contents unseen: not descended
		{[]string{"/abs/path/"}, "/abs/path", false, false},
		{[]string{"cache/"}, "/home/u/cache", true, true},
		{[]string{"cache/"}, "/home/u/cache", false, false},
		{[]string{"build/*.o"}, "/p/build/x.o", false, true},
		{[]string{"build/*.o"}, "/p/build/sub/x.o", false, false},
		{[]string{"/p/**/x.o"}, "/p/x.o", false, true},
		{[]string{"/p/**/x.o"}, "/p/a/b/c/x.o", false, true},
		{[]string{"/p/**/x.o"}, "/q/a/x.o", false, false},
		{[]string{"/data/**"}, "/data", true, false},
		{[]string{"/data/**"}, "/data/a/b", false, true},
		{[]string{"**/node_modules/"}, "/w/js/node_modules", true, true},
		{[]string{"**"}, "/anything", false, true},
		{[]string{"?.txt"}, "/a.txt", false, true},
		{[]string{"?.txt"}, "/ab.txt", false, false},
		{[]string{"[abc].txt"}, "/b.txt", false, true},
		{[]string{"[^abc].txt"}, "/b.txt", false, false},
		{[]string{`\*.txt`}, "/*.txt", false, true},
		{[]string{`\*.txt`}, "/a.txt", false, false},
		{[]string{"caf\xe9"}, "/x/caf\xe9", false, true},
		{[]string{"caf?"}, "/x/caf\xe9", false, true},
		{[]string{"*.log", "!keep.log"}, "/v/keep.log", false, false},
		{[]string{"*.log", "!keep.log"}, "/v/other.log", false, true},
		{[]string{"!keep.log", "*.log"}, "/v/keep.log", false, true},
		{[]string{`\!x`}, "/!x", false, true},
		{[]string{"/a//b/"}, "/a/b", true, true},
		{[]string{"*.O"}, "/a.o", false, false},
		{[]string{"/tmp"}, "/tmp/../tmp", true, true},
		{nil, "/a", true, false},
	}
	for _, tc := range tests {
		e, err := NewExcluder(tc.patterns)
		if err != nil {
			t.Fatalf("%q: %v", tc.patterns, err)
		}
		if got := e.Excluded(tc.path, tc.isDir); got != tc.want {
			t.Errorf("patterns %q path %q dir=%v: excluded=%v, want %v", tc.patterns, tc.path, tc.isDir, got, tc.want)
		}
	}
}

func TestExcluderBadPatterns(t *testing.T) {
	for _, p := range []string{"", "/", "!", ".", "[a", "/x/[", "!/"} {
		if _, err := NewExcluder([]string{p}); err == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
}

func TestReadPatterns(t *testing.T) {
	in := "# comment\n*.o\r\n\n  \nspace\\ \ntrail   \n\\#hash\n!keep\n"
	got, err := ReadPatterns(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"*.o", "space ", "trail", `\#hash`, "!keep"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadPatterns = %q, want %q", got, want)
	}
	e, err := NewExcluder(got)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Excluded("/x/#hash", false) || !e.Excluded("/x/space ", false) {
		t.Error("escaped patterns did not match")
	}
}
