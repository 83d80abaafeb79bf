package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpHidesPassword: a rest: URL in CAIRN_REPOSITORY shows in --help
// as the flag's default, with its password as "***" (issue 10 item 13).
func TestHelpHidesPassword(t *testing.T) {
	t.Setenv("CAIRN_REPOSITORY", "rest:http://bob:s3cret-pw@127.0.0.1:1/bob/main")
	for _, args := range [][]string{{"--help"}, {"snapshots", "--help"}, {"key", "list", "--help"}} {
		var out, errb bytes.Buffer
		run(args, &out, &errb)
		all := out.String() + errb.String()
		if strings.Contains(all, "s3cret-pw") {
			t.Fatalf("%v shows the password:\n%s", args, all)
		}
		if !strings.Contains(all, "bob:***@127.0.0.1") {
			t.Fatalf("%v does not show the redacted default:\n%s", args, all)
		}
	}
}
