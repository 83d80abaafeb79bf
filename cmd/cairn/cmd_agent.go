package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/agent"
)

func newAgentCommand(g *GlobalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "agent",
		Short: "The per-machine backup agent: its configuration",
		Long: `The agent runs backups on a client machine by its configuration file
(default ` + agent.DefaultConfigPath + `): where to, what, when, with which
hooks and retries. Hooks come from that file only; a server can never send
one. The file's keys: docs/agent.md.`,
	}
	c.AddCommand(newAgentValidateCommand(g))
	return c
}

func newAgentValidateCommand(g *GlobalOptions) *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check an agent configuration file and show what it will do",
		Long: `Check an agent configuration file. Every problem is listed with its line
and key; a valid file is summarised with the time of its next run.`,
		Example: `  cairn agent validate --config /etc/cairn/agent.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.Load(path)
			if err != nil {
				return err
			}
			printAgentSummary(g, path, cfg, time.Now())
			return nil
		},
	}
	c.Flags().StringVar(&path, "config", agent.DefaultConfigPath, "the configuration file")
	return c
}

func printAgentSummary(g *GlobalOptions, path string, c *agent.Config, now time.Time) {
	w := g.stdout
	fmt.Fprintf(w, "%s is valid\n", displayText(path))
	fmt.Fprintf(w, "  repository:  %s\n", displayText(c.Repository))
	fmt.Fprintf(w, "  paths:       %s\n", displayText(strings.Join(c.Paths, ", ")))
	if len(c.Exclude) > 0 {
		fmt.Fprintf(w, "  exclude:     %s\n", displayText(strings.Join(c.Exclude, ", ")))
	}
	next := c.When.Next(now)
	when := "never (the schedule matches no date)"
	if !next.IsZero() {
		when = next.Format("2006-01-02 15:04 MST")
		if c.Jitter > 0 {
			when += fmt.Sprintf(", plus up to %s", c.Jitter)
		}
	}
	fmt.Fprintf(w, "  schedule:    %s (%s); next run %s\n", displayText(c.When.String()), c.When.Location(), when)
	fmt.Fprintf(w, "  retries:     %d attempts, %s apart\n", c.Retries.Attempts, c.RetryInterval)
	if c.BandwidthBytes > 0 {
		fmt.Fprintf(w, "  bandwidth:   %s/s\n", formatBytes(uint64(c.BandwidthBytes)))
	}
	hooks := len(c.Hooks.Before) + len(c.Hooks.After) + len(c.Hooks.OnError)
	if hooks > 0 {
		fmt.Fprintf(w, "  hooks:       %d before, %d after, %d on error\n", len(c.Hooks.Before), len(c.Hooks.After), len(c.Hooks.OnError))
	}
	if c.Containers != nil {
		fmt.Fprintf(w, "  containers:  stop %s\n", displayText(strings.Join(c.Containers.Stop, ", ")))
	}
	for _, d := range c.Databases {
		fmt.Fprintf(w, "  database:    %s (%s)\n", d.Type, d.Mode)
	}
}
