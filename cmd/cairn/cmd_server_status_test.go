package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// Colour codes go around the cell after alignment: the table reads the
// same as without colours once the codes are taken out, and the header
// lines up with the rows.
func TestColourTable(t *testing.T) {
	rows := [][]string{{"CLIENT", "STATE", "AGE"}, {"alice", "OK", "2h"}, {"bob", "never backed up", "29h"}, {"carol", "disabled", "-"}}
	var plain, coloured bytes.Buffer
	if err := colourTable(&plain, rows, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := colourTable(&coloured, rows, 1, []string{"\x1b[32m", "\x1b[31m", ""}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Fatalf("plain table has colour codes: %q", plain.String())
	}
	stripped := regexp.MustCompile("\x1b\\[[0-9]*m").ReplaceAllString(coloured.String(), "")
	if stripped != plain.String() {
		t.Fatalf("coloured table, codes removed:\n%s\nwant:\n%s", stripped, plain.String())
	}
	lines := strings.Split(coloured.String(), "\n")
	if !strings.Contains(lines[1], "\x1b[32mOK\x1b[0m") || !strings.Contains(lines[2], "\x1b[31mnever backed up\x1b[0m") || strings.Contains(lines[3], "\x1b") {
		t.Fatalf("colours misplaced:\n%q", lines)
	}
	if strings.Index(lines[0], "AGE") != strings.Index(plain.String(), "AGE") {
		t.Fatal("header moved")
	}
}
