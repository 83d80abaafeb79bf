package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagUsageHasNoBackticks: pflag takes the first `quoted` text of a
// flag's usage as the name of its value, so "see `cairn prune --grace`"
// prints as "--grace cairn prune --grace  with --prune: see cairn prune
// --grace". Only a one-word value name (`N/M`) may be quoted so. Every
// command, every flag.
func TestFlagUsageHasNoBackticks(t *testing.T) {
	g := &GlobalOptions{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			if _, quoted, ok := strings.Cut(f.Usage, "`"); ok && (strings.Count(f.Usage, "`") != 2 || strings.ContainsAny(quoted[:strings.Index(quoted, "`")+1], " ")) {
				t.Errorf("%s --%s: usage %q has a backtick", c.CommandPath(), f.Name, f.Usage)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand(g))
}
