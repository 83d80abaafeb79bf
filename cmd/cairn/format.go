package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairnbackup/cairn/internal/units"
)

// formatBytes renders n in IEC units: "265.1 MiB" (units.FormatSize, the
// one size formatter of the program).
func formatBytes(n uint64) string { return units.FormatSize(n) }

// parseSizeFlag parses a size given to --flag (units.ParseSize: binary
// units, "GB" the same as "GiB"); a bad one is a usage error naming it.
func parseSizeFlag(flag, s string) (uint64, error) {
	n, err := units.ParseSize(s)
	if err != nil {
		return 0, usageError{fmt.Errorf("--%s %q: give a size such as 500GiB, 2G or a byte count (units are powers of 1024; GB and GiB mean the same)", flag, s)}
	}
	return n, nil
}

// formatDuration renders d as h:mm:ss or m:ss.
func formatDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// displayText makes text a snapshot (or any stored or remote party) can
// influence safe to print on a terminal: a name, user, group, link target,
// tag, host label or message. It is the one escaping function of every
// text output; --json output stays exact. Text that is valid UTF-8
// without control characters is returned as is; otherwise C0 controls,
// DEL, C1 controls (U+0080–U+009F, which include the CSI U+009B that
// some terminals obey like ESC [) and bytes of invalid UTF-8 are
// escaped the way Go quotes strings (\x1b, \n, \u009b), and so is a
// backslash, so the escaped form cannot be mistaken for a plain name.
func displayText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case isControl(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isControl reports C0 and C1 control characters and DEL.
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func shortHex(b []byte) string { return fmt.Sprintf("%x", b[:4]) }
