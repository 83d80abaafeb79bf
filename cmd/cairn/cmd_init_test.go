package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInitRefusesShortPassword(t *testing.T) {
	c := newCLI(t)
	t.Setenv("CAIRN_PASSWORD", "seven77")
	c.fails(1, "at least 8", "init")
	if _, err := os.Stat(filepath.Join(c.repo, "config")); err == nil {
		t.Fatal("a repository was created with a short password")
	}
	t.Setenv("CAIRN_PASSWORD", "eight888")
	c.ok("init")
	// Opening takes any password the key has: only new ones are judged.
	c.fails(12, "wrong password", "snapshots", "--password-command", "echo short")
}
