package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/server"
	"github.com/cairnbackup/cairn/internal/server/audit"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/profile"
)

// ServerOptions are the flags every `cairn server` command takes.
type ServerOptions struct {
	Data    string
	Storage string
}

func newServerCommand(g *GlobalOptions) *cobra.Command {
	opts := &ServerOptions{}
	c := &cobra.Command{
		Use:   "server",
		Short: "Run and manage a cairn backup server",
		Long: `A cairn server stores the repositories of many clients, cairn and restic
alike, over restic's REST protocol: each client sees only its own
repositories under /<client>/, is append-only by default, and may have a
quota and a minimum interval between snapshots. See docs/server.md.`,
		Example: `  cairn server init --data /srv/cairn
  cairn server client add laptop --data /srv/cairn --quota 200GiB
  cairn server run --data /srv/cairn --listen :8000 --metrics-listen 127.0.0.1:9100`,
	}
	c.PersistentFlags().StringVar(&opts.Data, "data", envOr("CAIRN_SERVER_DATA", ""), "the server's data directory (env CAIRN_SERVER_DATA)")
	c.PersistentFlags().StringVar(&opts.Storage, "storage", envOr("CAIRN_SERVER_STORAGE", ""), "where to keep repositories: a directory or s3:http[s]://host[:port]/bucket[/prefix]; recorded, so later commands need not repeat it (default <data>/repos; env CAIRN_SERVER_STORAGE)")
	c.AddCommand(
		newServerInitCommand(g, opts),
		newServerFingerprintCommand(g, opts),
		newServerRunCommand(g, opts),
		newServerClientCommand(g, opts),
		newServerStatusCommand(g, opts),
		newServerNotifyCommand(g, opts),
		newServerDestinationCommand(g, opts), newServerReplicationCommand(g, opts),
		newServerAdminCommand(g, opts),
		newServerAuditCommand(g, opts),
	)
	return c
}

func (o *ServerOptions) dataDir() (string, error) {
	if o.Data == "" {
		return "", usageError{errors.New("no data directory given; pass --data DIR or set CAIRN_SERVER_DATA")}
	}
	return o.Data, nil
}

// withData opens the data directory (recording --storage if given), runs
// fn with it and closes it: every server subcommand that reads or changes
// the directory goes through here, so its errors and hints are the same.
func (o *ServerOptions) withData(ctx context.Context, fn func(d *datadir.Data) error) error {
	dir, err := o.dataDir()
	if err != nil {
		return err
	}
	d, err := datadir.Open(ctx, dir)
	if errors.Is(err, datadir.ErrNotInitialized) {
		return withHint(err, "create it with `cairn server init --data %s`", dir)
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if o.Storage != "" {
		if err := d.SetStorage(ctx, o.Storage); err != nil {
			return err
		}
	}
	return fn(d)
}

func newServerInitCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "init",
		Short:   "Create a server data directory and the server's identity",
		Example: `  cairn server init --data /srv/cairn`,
		Args:    cobra.NoArgs,
		RunE:    func(c *cobra.Command, _ []string) error { return runServerInit(c.Context(), g, opts) },
	}
}

func runServerInit(ctx context.Context, g *GlobalOptions, opts *ServerOptions) error {
	dir, err := opts.dataDir()
	if err != nil {
		return err
	}
	d, err := datadir.Init(ctx, dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if opts.Storage != "" {
		if err := d.SetStorage(ctx, opts.Storage); err != nil {
			return err
		}
	}
	fp, err := d.Identity.Fingerprint()
	if err != nil {
		return err
	}
	if g.JSON {
		return writeJSON(g.stdout, serverInitJSON{MessageType: "server_initialized", Data: dir, Fingerprint: fp})
	}
	g.printf("created cairn server data directory %s\n", dir)
	g.printf("server fingerprint: %s\n", fp)
	g.printf("Clients compare this fingerprint before trusting the server; `cairn server fingerprint` shows it again.\n")
	return nil
}

func newServerFingerprintCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "fingerprint",
		Short: "Print the server's key fingerprint",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return opts.withData(c.Context(), func(d *datadir.Data) error {
				fp, err := d.Identity.Fingerprint()
				if err != nil {
					return err
				}
				if g.JSON {
					return writeJSON(g.stdout, fingerprintJSON{MessageType: "fingerprint", Fingerprint: fp})
				}
				fmt.Fprintln(g.stdout, fp)
				return nil
			})
		},
	}
}

// ServerRunOptions are `server run`'s flags.
type ServerRunOptions struct {
	Listen        string
	MetricsListen string
	TLSCert       string
	TLSKey        string
	MaxUpload     string
	SessionTTL    time.Duration
	MaxSessions   int
	MaxBackups    int // fleet pacing; 0: unlimited

	// Bounded resources (R26).
	MaxUploads      int
	MaxRepos        int
	MaxConns        int
	AuthFailures    int
	HeaderTimeout   time.Duration
	IdleTimeout     time.Duration
	BodyGrace       time.Duration
	BodyIdle        time.Duration
	BodyMinRate     string
	MaintainWait    time.Duration
	MaxUploadMemory string
	MaxMetaUpload   string

	CheckEvery  time.Duration // backup ages (monitor)
	UIListen    string        // the web status page (cmd_server_admin.go)
	PprofListen string        // Go's profiles, loopback only

	AuditFraction string        // rolling audit: share of the files a period
	AuditEvery    time.Duration // its period; 0: off
}

func newServerRunCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var ro ServerRunOptions
	c := &cobra.Command{
		Use:   "run",
		Short: "Serve clients until SIGTERM or SIGINT",
		Long: `Serve the REST storage API to clients. Logs go to stderr (text; JSON with
--json), one event a line, with client, repository and request ID. Metrics
and /healthz are served without credentials on --metrics-listen: keep that
on a private interface.`,
		Example: `  cairn server run --data /srv/cairn --listen :8000 --metrics-listen 127.0.0.1:9100
  cairn server run --data /srv/cairn --listen :8443 --tls-cert cert.pem --tls-key key.pem`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runServerRun(c.Context(), g, opts, ro) },
	}
	f := c.Flags()
	f.StringVar(&ro.Listen, "listen", ":8000", "address to serve clients on")
	f.StringVar(&ro.MetricsListen, "metrics-listen", "", "address to serve /metrics and /healthz on (no credentials; keep it private)")
	f.StringVar(&ro.TLSCert, "tls-cert", "", "TLS certificate (PEM); with --tls-key, serve HTTPS")
	f.StringVar(&ro.TLSKey, "tls-key", "", "TLS private key (PEM)")
	f.StringVar(&ro.MaxUpload, "max-upload", "1GiB", "largest file a client may upload")
	f.DurationVar(&ro.SessionTTL, "session-ttl", server.DefaultSessionTTL, "a backup session's lease ends this long after its last heartbeat; prune waits for live sessions")
	f.IntVar(&ro.MaxSessions, "max-sessions", server.DefaultMaxSessions, "open backup sessions a client may hold at once (429 beyond)")
	f.IntVar(&ro.MaxBackups, "max-backups", 0, "cairn backups of all clients that may run at once; more wait in a queue (0: no limit)")
	f.IntVar(&ro.MaxUploads, "max-uploads", server.DefaultMaxUploads, "uploads a client may have in progress at once (429 beyond)")
	f.IntVar(&ro.MaxRepos, "max-repos", server.DefaultMaxRepos, "repositories a client may have (403 beyond)")
	f.IntVar(&ro.MaxConns, "max-conns", server.DefaultMaxConns, "connections open at once; more wait to be accepted")
	f.IntVar(&ro.AuthFailures, "auth-failures", server.DefaultAuthFailures, "failed logins a source address may make a minute (429 beyond)")
	f.DurationVar(&ro.HeaderTimeout, "header-timeout", server.DefaultHeaderTimeout, "time a client has to send a request's header")
	f.DurationVar(&ro.IdleTimeout, "idle-timeout", server.DefaultIdleTimeout, "how long a kept-alive connection may wait for its next request")
	f.DurationVar(&ro.BodyGrace, "body-grace", server.DefaultBodyGrace, "time before an upload must keep --body-min-rate")
	f.DurationVar(&ro.BodyIdle, "body-idle", server.DefaultBodyIdle, "longest pause within an upload's body (408 beyond)")
	f.StringVar(&ro.BodyMinRate, "body-min-rate", "16KiB", "slowest average rate of an upload's body after --body-grace, per second (408 below)")
	f.DurationVar(&ro.MaintainWait, "maintain-wait", server.DefaultMaintainWait, "how long maintenance waits for a busy repository before going on with the next")
	f.StringVar(&ro.MaxUploadMemory, "max-upload-memory", "128MiB", "memory all uploads' validation may hold at once")
	f.StringVar(&ro.MaxMetaUpload, "max-meta-upload", "64MiB", "largest index fragment, snapshot, config, roster or key file (413 beyond)")
	f.DurationVar(&ro.CheckEvery, "check-every", monitor.DefaultCheckEvery, "how often to check backup ages and send alerts (see cairn server notify)")
	f.StringVar(&ro.PprofListen, "pprof-listen", "", "loopback address to serve Go's runtime profiles on, under /debug/pprof/ (performance work; no credentials)")
	f.StringVar(&ro.UIListen, "ui-listen", "", "address to serve the web status page on, under /ui/ (HTTPS with --tls-cert; logins: cairn server admin add)")
	f.StringVar(&ro.AuditFraction, "audit-fraction", "1/30", "rolling audit: share of every repository's files re-hashed each --audit-every, on the primary and every replica")
	f.DurationVar(&ro.AuditEvery, "audit-every", audit.DefaultPeriod, "rolling audit period (checked every --check-every); 0 turns the rolling audit off")
	return c
}

func runServerRun(ctx context.Context, g *GlobalOptions, opts *ServerOptions, ro ServerRunOptions) error {
	if (ro.TLSCert == "") != (ro.TLSKey == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	maxUpload, err := parseSizeFlag("max-upload", ro.MaxUpload)
	if err != nil {
		return err
	}
	if maxUpload == 0 {
		return usageError{fmt.Errorf("--max-upload %q: give a size above zero, such as 512MiB", ro.MaxUpload)}
	}
	if ro.SessionTTL < 10*time.Second {
		return usageError{fmt.Errorf("--session-ttl %v: give at least 10s (clients heartbeat every third of it)", ro.SessionTTL)}
	}
	if ro.MaxSessions < 1 {
		return usageError{fmt.Errorf("--max-sessions %d: give at least 1", ro.MaxSessions)}
	}
	if ro.MaxBackups < 0 {
		return usageError{fmt.Errorf("--max-backups %d: give 0 (no limit) or more", ro.MaxBackups)}
	}
	var minRate, upMem, metaMax uint64
	for flag, v := range map[string]struct {
		s   string
		dst *uint64
	}{"body-min-rate": {ro.BodyMinRate, &minRate}, "max-upload-memory": {ro.MaxUploadMemory, &upMem}, "max-meta-upload": {ro.MaxMetaUpload, &metaMax}} {
		n, err := parseSizeFlag(flag, v.s)
		if err != nil {
			return err
		}
		if n == 0 {
			return usageError{fmt.Errorf("--%s %q: give a size above zero, such as 64KiB", flag, v.s)}
		}
		*v.dst = n
	}
	for flag, n := range map[string]int{"max-uploads": ro.MaxUploads, "max-repos": ro.MaxRepos, "max-conns": ro.MaxConns, "auth-failures": ro.AuthFailures} {
		if n < 1 {
			return usageError{fmt.Errorf("--%s %d: give at least 1", flag, n)}
		}
	}
	for flag, d := range map[string]time.Duration{"check-every": ro.CheckEvery, "header-timeout": ro.HeaderTimeout, "idle-timeout": ro.IdleTimeout, "body-grace": ro.BodyGrace, "body-idle": ro.BodyIdle, "maintain-wait": ro.MaintainWait} {
		if d < 100*time.Millisecond {
			return usageError{fmt.Errorf("--%s %v: give at least 100ms", flag, d)}
		}
	}
	auditFrac, err := parseFraction("audit-fraction", ro.AuditFraction)
	if err != nil {
		return err
	}
	var tlsConf *tls.Config
	if ro.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(ro.TLSCert, ro.TLSKey)
		if err != nil {
			return withHint(fmt.Errorf("load TLS certificate: %w", err), "check --tls-cert and --tls-key")
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		lvl := slog.LevelInfo
		if g.Debug {
			lvl = slog.LevelDebug
		}
		hopts := &slog.HandlerOptions{Level: lvl}
		var log *slog.Logger
		if g.JSON {
			log = slog.New(slog.NewJSONHandler(g.stderr, hopts))
		} else {
			log = slog.New(slog.NewTextHandler(g.stderr, hopts))
		}
		repl := newServerReplication(d, log)
		srv, err := server.New(d, repl.options(server.Options{Logger: log, MaxUpload: int64(maxUpload), SessionTTL: ro.SessionTTL, MaxSessions: ro.MaxSessions,
			MaxBackups: ro.MaxBackups, MaxUploads: ro.MaxUploads, MaxRepos: ro.MaxRepos, MaxConns: ro.MaxConns, AuthFailures: ro.AuthFailures,
			HeaderTimeout: ro.HeaderTimeout, IdleTimeout: ro.IdleTimeout, BodyGrace: ro.BodyGrace, BodyIdle: ro.BodyIdle,
			BodyMinRate: int64(minRate), MaintainWait: ro.MaintainWait, MaxUploadMemory: int64(upMem), MaxMetaUpload: int64(metaMax),
			Collectors: append(monitorCollectors(d, log, monitor.Clock()), &audit.Collector{State: d.State, Log: log})}))
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", ro.Listen)
		if err != nil {
			return withHint(err, "choose another --listen address")
		}
		var mln net.Listener
		if ro.MetricsListen != "" {
			if mln, err = net.Listen("tcp", ro.MetricsListen); err != nil {
				ln.Close()
				return withHint(err, "choose another --metrics-listen address")
			}
		}
		var uln net.Listener
		if ro.UIListen != "" {
			if uln, err = net.Listen("tcp", ro.UIListen); err != nil {
				ln.Close()
				if mln != nil {
					mln.Close()
				}
				return withHint(err, "choose another --ui-listen address")
			}
		}
		var pprofAddr string
		if ro.PprofListen != "" {
			pln, err := profile.Listen(ro.PprofListen)
			if err != nil {
				ln.Close()
				if mln != nil {
					mln.Close()
				}
				if uln != nil {
					uln.Close()
				}
				return usageError{fmt.Errorf("--pprof-listen: %w", err)}
			}
			pctx, stop := context.WithCancel(ctx)
			defer stop()
			go profile.Serve(pctx, pln)
			pprofAddr = pln.Addr().String()
		}
		fp, _ := d.Identity.Fingerprint()
		scheme := "http"
		if tlsConf != nil {
			scheme = "https"
		}
		g.printf("cairn server listening on %s://%s\n", scheme, ln.Addr())
		if mln != nil {
			g.printf("metrics on http://%s/metrics\n", mln.Addr())
		}
		if uln != nil {
			g.printf("status page on %s://%s/ui/\n", scheme, uln.Addr())
		}
		if pprofAddr != "" {
			g.printf("profiles on http://%s/debug/pprof/\n", pprofAddr)
		}
		g.printf("server fingerprint: %s\n", fp)
		if f, ok := g.stdout.(*os.File); ok {
			f.Sync()
		}
		defer srv.CloseStorage()
		defer startMonitor(ctx, d, log, monitor.Clock(), ro.CheckEvery)()
		defer repl.start(ctx, srv)()
		if uln != nil {
			defer startWebUI(ctx, d, srv, uln, tlsConf, log)()
		}
		defer startAudit(ctx, d, srv, log, monitor.Clock(), auditFrac, ro.AuditEvery, ro.CheckEvery)()
		return srv.Serve(ctx, ln, mln, tlsConf)
	})
}
