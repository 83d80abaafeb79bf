package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newGenerateCommand(g *GlobalOptions) *cobra.Command {
	var manDir string
	c := &cobra.Command{
		Use:   "generate --man DIR",
		Short: "Write man pages",
		Long: `Write a man page (section 1) for every command into DIR: cairn.1,
cairn-backup.1, cairn-server-client-add.1 and so on. Shell completion
scripts come from ` + "`cairn completion bash|zsh|fish|powershell`" + `.`,
		Example: `  cairn generate --man /usr/local/share/man/man1
  cairn completion bash > /etc/bash_completion.d/cairn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manDir == "" {
				return usageError{errors.New("nothing to generate: pass --man DIR")}
			}
			if err := os.MkdirAll(manDir, 0o755); err != nil {
				return err
			}
			n := 0
			err := walkCommands(cmd.Root(), func(c *cobra.Command) error {
				name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
				if err := os.WriteFile(filepath.Join(manDir, name), manPage(c), 0o644); err != nil {
					return err
				}
				n++
				return nil
			})
			if err != nil {
				return err
			}
			if !g.Quiet {
				fmt.Fprintf(g.stdout, "wrote %d man pages to %s\n", n, manDir)
			}
			return nil
		},
	}
	c.Flags().StringVar(&manDir, "man", "", "write man pages into this `directory`")
	return c
}

// walkCommands calls fn for c and every visible command below it.
func walkCommands(c *cobra.Command, fn func(*cobra.Command) error) error {
	if c.Hidden || c.Name() == "help" {
		return nil
	}
	if err := fn(c); err != nil {
		return err
	}
	for _, sub := range c.Commands() {
		if err := walkCommands(sub, fn); err != nil {
			return err
		}
	}
	return nil
}

// roff escapes text for a man page: backslashes, and a leading dot or
// quote that would start a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			b.WriteString(`\&`)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func manPage(c *cobra.Command) []byte {
	var b bytes.Buffer
	title := strings.ToUpper(strings.ReplaceAll(c.CommandPath(), " ", "-"))
	b.WriteString(".\\\" -*- coding: utf-8 -*-\n")
	fmt.Fprintf(&b, ".TH %q 1 %q \"cairn\" \"cairn manual\"\n", title, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(strings.ReplaceAll(c.CommandPath(), " ", "-")), roff(c.Short))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n", roff(c.UseLine()))
	desc := c.Long
	if desc == "" {
		desc = c.Short
	}
	b.WriteString(".SH DESCRIPTION\n")
	for _, para := range strings.Split(strings.TrimSpace(desc), "\n\n") {
		fmt.Fprintf(&b, ".PP\n%s\n", roff(para))
	}
	flags := func(header string, fs *pflag.FlagSet) {
		if !fs.HasAvailableFlags() {
			return
		}
		fmt.Fprintf(&b, ".SH %s\n", header)
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Hidden {
				return
			}
			name := "\\-\\-" + roff(f.Name)
			if f.Shorthand != "" {
				name = "\\-" + roff(f.Shorthand) + ", " + name
			}
			varname, usage := pflag.UnquoteUsage(f)
			if varname != "" {
				name += " " + roff(varname)
			}
			fmt.Fprintf(&b, ".TP\n.B %s\n%s", name, roff(usage))
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0" {
				fmt.Fprintf(&b, " (default %s)", roff(f.DefValue))
			}
			b.WriteByte('\n')
		})
	}
	flags("OPTIONS", c.NonInheritedFlags())
	flags("GLOBAL OPTIONS", c.InheritedFlags())
	if c.Example != "" {
		fmt.Fprintf(&b, ".SH EXAMPLES\n.nf\n%s\n.fi\n", roff(c.Example))
	}
	var see []string
	if c.HasParent() {
		see = append(see, strings.ReplaceAll(c.Parent().CommandPath(), " ", "-")+"(1)")
	}
	for _, sub := range c.Commands() {
		if !sub.Hidden && sub.Name() != "help" {
			see = append(see, strings.ReplaceAll(sub.CommandPath(), " ", "-")+"(1)")
		}
	}
	if len(see) > 0 {
		fmt.Fprintf(&b, ".SH SEE ALSO\n%s\n", roff(strings.Join(see, ", ")))
	}
	return b.Bytes()
}
