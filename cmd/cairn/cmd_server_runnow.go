package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// runNowJSON is `server client run-now`'s message.
type runNowJSON struct {
	MessageType string    `json:"message_type"` // "run_now_requested"
	Name        string    `json:"name"`
	RequestedAt time.Time `json:"requested_at"` // an earlier request still pending keeps its time
}

func newServerClientRunNowCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "run-now NAME",
		Short: "Ask a client's agent to run its configured backup now",
		Long: `Record that the client's agent should run now. A daemon agent (` + "`cairn agent run`" + `)
asks its server every --poll (default 1m) and then runs the job of its own
configuration at once, outside its schedule; the server can ask for
nothing else. The request stays pending until the agent's next run
report arrives. ` + "`cairn agent once`" + ` from a timer never polls.`,
		Example: `  cairn server client run-now laptop`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			return runServerClientRunNow(c.Context(), g, opts, a[0])
		},
	}
}

func runServerClientRunNow(ctx context.Context, g *GlobalOptions, opts *ServerOptions, name string) error {
	return opts.withData(ctx, func(d *datadir.Data) error {
		err := d.State.RequestRunNow(ctx, name, time.Now())
		if errors.Is(err, state.ErrNoClient) {
			return withHint(err, "see `cairn server client list`")
		}
		if err != nil {
			return err
		}
		at, err := d.State.RunNow(ctx, name)
		if err != nil {
			return err
		}
		if g.JSON {
			return writeJSON(g.stdout, runNowJSON{MessageType: "run_now_requested", Name: name, RequestedAt: at})
		}
		g.printf("asked %s's agent to run now (pending since %s); a daemon agent asks every minute by default, and its run report clears the request\n",
			displayText(name), at.Local().Format("2006-01-02 15:04:05 MST"))
		return nil
	})
}
