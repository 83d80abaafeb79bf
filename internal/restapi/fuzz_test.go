package restapi

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseRange: a Range header comes from any client. ParseRange never
// panics; an accepted range is non-negative and ordered (or a positive
// suffix), and FormatRange writes a start-end range back to a header that
// parses to the same range. ResolveRange, for any file size, answers 200
// or 206 with bounds inside the file, or 416.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-", "bytes=5-9", "bytes=-5", "bytes=1-2,4-5", "bytes=9-5", "bytes=+1-2", "bytes=99999999999999999999-", "items=1-2", "bytes=-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		for _, size := range []int64{0, 1, 100, 1 << 40} {
			start, end, status := ResolveRange(h, size)
			switch status {
			case 200, 206:
				if start < 0 || start > end+1 || end >= size || (size > 0 && start > end) || (status == 200 && (start != 0 || end != size-1)) {
					t.Fatalf("%q on %d bytes: %d %d-%d", h, size, status, start, end)
				}
			case 416:
			default:
				t.Fatalf("%q on %d bytes: status %d", h, size, status)
			}
		}
		r, ok, err := ParseRange(h)
		switch {
		case h == "":
			if ok || err != nil {
				t.Fatalf("no header: ok %v, err %v", ok, err)
			}
			return
		case err != nil:
			if ok {
				t.Fatalf("%q: ok with error %v", h, err)
			}
			return
		case !ok:
			t.Fatalf("%q: neither ok nor an error", h)
		}
		if r.Suffix != 0 {
			if r.Suffix < 0 || r.Start != 0 || r.End != -1 {
				t.Fatalf("%q accepted as %+v", h, r)
			}
			return
		}
		if r.Start < 0 || (r.End != -1 && r.End < r.Start) {
			t.Fatalf("%q accepted as %+v", h, r)
		}
		if r.End != -1 && r.End-r.Start+1 <= 0 {
			return // the length overflows an int64; nothing to format
		}
		length := 0
		if r.End != -1 {
			length = int(r.End - r.Start + 1)
		}
		back := FormatRange(r.Start, length)
		r2, ok, err := ParseRange(back)
		if err != nil || !ok || r2 != r {
			t.Fatalf("%q → %+v → %q → %+v, %v, %v", h, r, back, r2, ok, err)
		}
	})
}

// FuzzDecodeList: a listing comes from the server. DecodeList never
// panics; v1 entries have size -1, v2 sizes are never negative; an accepted listing encodes (in the
// same version) to a body that decodes to the same entries.
func FuzzDecodeList(f *testing.F) {
	v2, _ := EncodeList([]ListEntry{{Name: "ab", Size: 3}, {Name: "cd", Size: 0}}, true)
	v1, _ := EncodeList([]ListEntry{{Name: "ab", Size: 3}}, false)
	f.Add(v2, true)
	f.Add(v1, false)
	f.Add([]byte(`[]`), true)
	f.Add([]byte(`null`), false)
	f.Add([]byte(`[{"name":1}]`), true)
	f.Add([]byte(`[{"name":"ab","size":-1}]`), true)
	f.Add([]byte(`[{"name":"ab","size":9223372036854775808}]`), true)
	f.Fuzz(func(t *testing.T, body []byte, isV2 bool) {
		ct := MediaV1
		if isV2 {
			ct = MediaV2
		}
		entries, err := DecodeList(ct, body)
		if err != nil {
			return
		}
		for _, e := range entries {
			if !isV2 && e.Size != -1 {
				t.Fatalf("v1 entry %+v has a size", e)
			}
			if isV2 && e.Size < 0 {
				t.Fatalf("v2 entry %+v accepted with a negative size", e)
			}
		}
		enc, gotCT := EncodeList(entries, isV2)
		if gotCT != ct {
			t.Fatalf("encoded as %q, want %q", gotCT, ct)
		}
		again, err := DecodeList(ct, enc)
		if err != nil {
			t.Fatalf("re-encoded listing %s: %v", enc, err)
		}
		if len(entries) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, entries) {
			t.Fatalf("listing %+v became %+v (%s)", entries, again, strings.TrimSpace(string(enc)))
		}
	})
}
