package main

import "testing"

func TestDisplayText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/home/alice/notes.txt", "/home/alice/notes.txt"},
		{"/tmp/é ü 日本", "/tmp/é ü 日本"},
		{`C:\dos`, `C:\dos`}, // nothing to escape: kept as is
		{"a\x1b[2Jb", `a\x1b[2Jb`},
		{"a\u009b2Jb", `a\u009b2Jb`}, // C1 CSI
		{"a\u0085b", `a\u0085b`},     // C1 NEL
		{"a\x7fb", `a\x7fb`},
		{"line\nfake: all good", `line\nfake: all good`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"\xc2\x9b", `\u009b`},
		{"esc\x1b and \\", `esc\x1b and \\`}, // once escaping, a backslash is too
		{"\u00a0nbsp", "\u00a0nbsp"},         // printable, not C1
	} {
		if got := displayText(c.in); got != c.want {
			t.Errorf("displayText(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, b := range []byte(displayText(c.in)) {
			if b < 0x20 || b == 0x7f {
				t.Errorf("displayText(%q) keeps control byte %#x", c.in, b)
			}
		}
	}
}
