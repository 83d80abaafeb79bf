package main

// `cairn server admin`: the logins of the web status page, and serving it
// (`cairn server run --ui-listen`).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/replication"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/web"
)

func newServerAdminCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "admin",
		Short: "Manage the logins of the web status page",
		Long: `Admins log in to the status page that ` + "`cairn server run --ui-listen ADDR`" + `
serves under /ui/ (docs/server.md, "Status page"). Their passwords are
hashed as clients' are (bcrypt). An admin sees every client's status; the
page changes nothing.`,
	}
	var file string
	add := &cobra.Command{
		Use:   "add NAME --password-file F",
		Short: "Add an admin of the web status page",
		Example: `  cairn server admin add ops --password-file /etc/cairn/ops.pass
  cairn server run --data /srv/cairn --ui-listen 127.0.0.1:8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error { return runServerAdminAdd(c.Context(), g, opts, a[0], file) },
	}
	add.Flags().StringVar(&file, "password-file", "", "read the admin's password from this file (required)")
	c.AddCommand(add,
		&cobra.Command{
			Use: "list", Short: "List the admins", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerAdminList(c.Context(), g, d) })
			},
		},
		&cobra.Command{
			Use: "remove NAME", Short: "Remove an admin (their sessions end at their next request)", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, a []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error {
					if err := d.State.RemoveAdmin(c.Context(), a[0]); err != nil {
						if errors.Is(err, state.ErrNoAdmin) {
							return withHint(err, "see `cairn server admin list`")
						}
						return err
					}
					if g.JSON {
						return writeJSON(g.stdout, adminJSON{MessageType: "admin_removed", Name: a[0]})
					}
					g.printf("removed admin %s\n", a[0])
					return nil
				})
			},
		})
	return c
}

func runServerAdminAdd(ctx context.Context, g *GlobalOptions, opts *ServerOptions, name, file string) error {
	if err := restapi.ValidClientName(name); err != nil {
		return usageError{fmt.Errorf("admin name %q: %w", name, err)}
	}
	if file == "" {
		return usageError{errors.New("give the admin's password with --password-file")}
	}
	pw, err := readPasswordFile(file)
	if err != nil {
		return err
	}
	hash, err := datadir.HashPassword(pw)
	if err != nil {
		return usageError{fmt.Errorf("password in %s: %w", file, err)}
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		if err := d.State.AddAdmin(ctx, state.Admin{Name: name, Hash: hash, Created: time.Now()}); err != nil {
			if errors.Is(err, state.ErrAdminExists) {
				return withHint(err, "remove it first with `cairn server admin remove %s`", name)
			}
			return err
		}
		if g.JSON {
			return writeJSON(g.stdout, adminJSON{MessageType: "admin_added", Name: name})
		}
		g.printf("added admin %s: log in at /ui/ on `cairn server run --ui-listen`\n", name)
		return nil
	})
}

func runServerAdminList(ctx context.Context, g *GlobalOptions, d *datadir.Data) error {
	as, err := d.State.Admins(ctx)
	if err != nil {
		return err
	}
	if g.JSON {
		out := adminListJSON{MessageType: "admin_list", Admins: []adminItemJSON{}}
		for _, a := range as {
			out.Admins = append(out.Admins, adminItemJSON{a.Name, a.Created})
		}
		return writeJSON(g.stdout, out)
	}
	if len(as) == 0 {
		g.printf("no admins; add one with `cairn server admin add NAME --password-file F`\n")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADMIN\tADDED")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\n", a.Name, a.Created.Local().Format("2006-01-02 15:04 MST"))
	}
	return tw.Flush()
}

// startWebUI serves the status page on ln (HTTPS with tlsConf) until ctx
// ends; stop shuts it down.
func startWebUI(ctx context.Context, d *datadir.Data, srv *server.Server, ln net.Listener, tlsConf *tls.Config, log *slog.Logger) (stop func()) {
	h := &web.Handler{State: d.State, Stored: d.StoredBytes, Now: monitor.Clock(), Limiter: srv, Secure: tlsConf != nil, Log: log,
		Replication: replicaLags(d)}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("web: status page stopped", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		<-done
	}
}

// replicaLags gives the page each destination's lag for a client's
// repositories, as `cairn server replication status` reports it (lag on
// the server's clock).
func replicaLags(d *datadir.Data) web.Replication {
	return func(ctx context.Context, client string) ([]web.ReplicaLag, error) {
		rows, err := replication.Report(ctx, d.State, time.Now())
		if err != nil {
			return nil, err
		}
		var out []web.ReplicaLag
		for _, r := range rows {
			if r.Client == client {
				out = append(out, web.ReplicaLag{Destination: r.Destination + " (" + r.Repo + ")", Lag: r.Lag, Error: r.LastError})
			}
		}
		return out, nil
	}
}
