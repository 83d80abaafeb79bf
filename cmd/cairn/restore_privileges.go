package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
)

// addPrivilegeFlags adds the flags that refuse a snapshot's privileged
// objects (issue 11 item 2).
func addPrivilegeFlags(c *cobra.Command, p *restorer.Privileges) {
	f := c.Flags()
	f.BoolVar(&p.NoOwner, "no-owner", false, "do not restore owners and groups (as root: files become root's)")
	f.BoolVar(&p.NoXattrs, "no-xattrs", false, "do not restore extended attributes and ACLs")
	f.BoolVar(&p.NoSpecialFiles, "no-special-files", false, "skip devices, FIFOs and sockets")
	f.BoolVar(&p.NoSetid, "no-setid", false, "drop setuid/setgid bits and file capabilities (security.capability)")
}

// warnWriterSnapshot prints one warning when root restores a snapshot a
// writer signed without refusing its privileged objects: the writer's
// machine chose them, and a compromised one chooses a setuid-root shell.
func warnWriterSnapshot(g *GlobalOptions, repo *repository.Repository, snap *repository.Snapshot, p restorer.Privileges) {
	if os.Geteuid() != 0 || p.All() {
		return
	}
	sg := repo.SignerOf(snap.File.Statement.Writer[:])
	if sg.Kind == repository.SignerOwner {
		return
	}
	fmt.Fprintf(g.stderr, "cairn: warning: snapshot %s was signed by writer \"%s\", not by the owner, and is restored as root: "+
		"its setuid files, devices, file capabilities and owners are recreated as that machine stored them; add %s to refuse them\n",
		snap.ID.Short(), displayText(sg.String()), strings.Join(p.Missing(), " "))
}

// refusedSnapshot adds what to do to a snapshot refused before its walk
// (walker.ErrTooLarge).
func refusedSnapshot(err error) error {
	return withHint(err, "nothing was read or written; `cairn check` reports it, and `cairn forget` removes it")
}
