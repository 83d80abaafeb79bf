package restapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParsePath(t *testing.T) {
	ok := []struct {
		in   string
		repo string
		kind Kind
		h    backend.Handle
	}{
		{"/", "", KindRepo, backend.Handle{}},
		{"/alice/", "alice", KindRepo, backend.Handle{}},
		{"/alice/laptop/", "alice/laptop", KindRepo, backend.Handle{}},
		{"/alice/a/b/", "alice/a/b", KindRepo, backend.Handle{}},
		{"/config", "", KindConfig, backend.Handle{Type: backend.Config, Name: "config"}},
		{"/alice/config", "alice", KindConfig, backend.Handle{Type: backend.Config, Name: "config"}},
		{"/alice/data/", "alice", KindList, backend.Handle{Type: backend.Data}},
		{"/alice/x/locks/", "alice/x", KindList, backend.Handle{Type: backend.Locks}},
		{"/alice/data/" + hex64, "alice", KindObject, backend.Handle{Type: backend.Data, Name: hex64}},
		{"/bob@x.y_z-1/receipts/" + hex64, "bob@x.y_z-1", KindObject, backend.Handle{Type: backend.Receipts, Name: hex64}},
	}
	for _, tt := range ok {
		p, err := ParsePath(tt.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.in, err)
			continue
		}
		if p.RepoPath() != tt.repo || p.Kind != tt.kind || p.Handle != tt.h {
			t.Errorf("ParsePath(%q) = %q %v %v, want %q %v %v", tt.in, p.RepoPath(), p.Kind, p.Handle, tt.repo, tt.kind, tt.h)
		}
	}
	bad := []string{
		"", "alice/", "//", "/alice//data/", "//etc/passwd",
		"/../alice/", "/alice/../bob/", "/alice/./data/", "/./", "/alice/..",
		"/alice%2fbob/", "/alice/data%2f" + hex64, "/alice/data/%2e%2e", "/%2e%2e/",
		"/alice\\bob/", "/alice/\x00/", "/al ice/", "/alice/data/" + strings.ToUpper(hex64),
		"/alice/data/" + hex64[:63], "/alice/data/" + hex64 + "/", "/alice/data/" + hex64 + "/x",
		"/alice/data", "/alice/config/", "/alice/data/00/" + hex64, "/alice/bogus/" + hex64,
		"/a/b/c/d/", "/.hidden/", "/alice/.tmp-x/", "/alice/config/x",
		"/" + strings.Repeat("a", 65) + "/", "/alice/data/..", "/alice/ü/",
	}
	for _, in := range bad {
		if p, err := ParsePath(in); !errors.Is(err, ErrBadPath) {
			t.Errorf("ParsePath(%q) = %+v, %v; want ErrBadPath", in, p, err)
		}
	}
}

// FuzzParsePath checks that whatever a path holds, an accepted one names
// only safe components and round-trips through URLPath.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/", "/alice/", "/alice/config", "/alice/data/" + hex64, "/a/../b/", "/a%2fb/", "/a/b/c/keys/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if len(p.Repo) > MaxRepoDepth {
			t.Fatalf("%q: %d repo components", s, len(p.Repo))
		}
		for _, c := range p.Repo {
			if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\\%\x00") {
				t.Fatalf("%q: unsafe component %q", s, c)
			}
		}
		if p.Kind == KindObject || p.Kind == KindConfig {
			if err := backend.ValidName(p.Handle); err != nil {
				t.Fatalf("%q: accepted invalid handle %v: %v", s, p.Handle, err)
			}
		}
		rebuilt := "/" + p.RepoPath()
		if len(p.Repo) > 0 {
			rebuilt += "/"
		}
		switch p.Kind {
		case KindConfig, KindObject, KindList:
			rebuilt += URLPath(p.Handle)
		}
		if rebuilt != s {
			t.Fatalf("%q parsed to %+v, which rebuilds as %q", s, p, rebuilt)
		}
	})
}

func TestListFormats(t *testing.T) {
	entries := []ListEntry{{Name: hex64, Size: 12}}
	for _, v2 := range []bool{false, true} {
		body, ct := EncodeList(entries, v2)
		got, err := DecodeList(ct, body)
		if err != nil || len(got) != 1 || got[0].Name != hex64 {
			t.Fatalf("v2=%v: %s %s -> %v %v", v2, ct, body, got, err)
		}
		if v2 != (got[0].Size == 12) {
			t.Fatalf("v2=%v: size %d", v2, got[0].Size)
		}
		if empty, _ := EncodeList(nil, v2); string(empty) != "[]" {
			t.Fatalf("empty list encodes as %s", empty)
		}
	}
	if !WantsV2(MediaV2) || WantsV2("") || WantsV2(MediaV1) || !WantsV2("text/plain, "+MediaV2) {
		t.Fatal("WantsV2")
	}
	if _, err := DecodeList(MediaV2+"; charset=utf-8", []byte(`[{"name":"x","size":1}]`)); err == nil {
		t.Fatal("a charset-decorated v2 type must not be taken for v2")
	}
}

// A v2 size is a length: negative or past an int64 is an error naming
// the problem, not an entry that makes the client HEAD it as v1.
func TestDecodeListRefusesBadSizes(t *testing.T) {
	for body, want := range map[string]string{
		`[{"name":"ab","size":-1}]`: `"ab" has a negative size (-1)`,
		`[{"name":"ab","size":1},{"name":"cd","size":-9223372036854775808}]`: `"cd" has a negative size`,
		`[{"name":"ab","size":9223372036854775808}]`:                         "decode v2 list",
		`[{"name":"ab","size":1e30}]`:                                        "decode v2 list",
		`[{"name":"ab","size":1.5}]`:                                         "decode v2 list",
	} {
		got, err := DecodeList(MediaV2, []byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, %v; want an error with %q", body, got, err, want)
		}
	}
	got, err := DecodeList(MediaV2, []byte(`[{"name":"ab","size":9223372036854775807},{"name":"cd","size":0}]`))
	if err != nil || len(got) != 2 || got[0].Size != 1<<63-1 {
		t.Fatalf("largest and zero sizes: %v, %v", got, err)
	}
}

func TestRange(t *testing.T) {
	for _, tt := range []struct {
		off  int64
		n    int
		want Range
	}{{0, 0, Range{Start: 0, End: -1}}, {10, 0, Range{Start: 10, End: -1}}, {5, 10, Range{Start: 5, End: 14}}} {
		h := FormatRange(tt.off, tt.n)
		r, ok, err := ParseRange(h)
		if err != nil || !ok || r != tt.want {
			t.Errorf("%q: %v %v %v", h, r, ok, err)
		}
	}
	if r, ok, err := ParseRange("bytes=-5"); err != nil || !ok || r.Suffix != 5 {
		t.Errorf("suffix range: %v %v %v", r, ok, err)
	}
	for _, h := range []string{"bytes=1-2,4-5", "items=0-", "bytes=5-1", "bytes=x-", "bytes=-0", "bytes=+1-2", "bytes= 1-2", "bytes=-", "bytes=1"} {
		if _, _, err := ParseRange(h); err == nil {
			t.Errorf("%q accepted", h)
		}
	}
}

// TestResolveRange follows RFC 9110 §14 for a 100-byte file.
func TestResolveRange(t *testing.T) {
	const size = 100
	for _, tt := range []struct {
		h          string
		start, end int64
		status     int
	}{
		{"", 0, 99, 200},
		{"bytes=0-", 0, 99, 206},
		{"bytes=10-19", 10, 19, 206},
		{"bytes=90-500", 90, 99, 206},
		{"bytes=99-99", 99, 99, 206},
		{"bytes=-10", 90, 99, 206},
		{"bytes=-500", 0, 99, 206},
		{"bytes=100-", 0, 0, 416},
		{"bytes=-0", 0, 0, 416},
		{"bytes=5-1", 0, 0, 416},
		{"bytes=x-", 0, 0, 416},
		{"items=0-5", 0, 99, 200},
		{"bytes=0-1,5-6", 0, 99, 200},
	} {
		start, end, status := ResolveRange(tt.h, size)
		if status != tt.status || (status != 416 && (start != tt.start || end != tt.end)) {
			t.Errorf("%q: got %d-%d %d, want %d-%d %d", tt.h, start, end, status, tt.start, tt.end, tt.status)
		}
	}
	if _, end, status := ResolveRange("bytes=0-", 0); status != 200 || end != -1 {
		t.Errorf("empty file: %d %d", end, status)
	}
}
