package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

func newServerNotifyCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "notify",
		Short: "Manage where alerts go (webhooks, e-mail)",
		Long: `While ` + "`cairn server run`" + ` runs, it checks every client's backup age every
--check-every (default 1m) and tells each notifier when a client becomes
WARNING or ALERT, again every --repeat while it stands, and once when it is OK
again. Webhooks get the event as signed JSON, e-mail a plain-text message
(docs/server.md, "Monitoring"). Changes take effect at the next check, also on
a running server.`,
	}
	c.AddCommand(
		newServerNotifyAddCommand(g, opts),
		&cobra.Command{
			Use: "list", Short: "List notifiers and whether they deliver", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerNotifyList(c.Context(), g, d) })
			},
		},
		&cobra.Command{
			Use: "test NAME", Short: "Send a test notice to a notifier now", Args: cobra.ExactArgs(1),
			Example: `  cairn server notify test ops-hook`,
			RunE: func(c *cobra.Command, a []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error { return runServerNotifyTest(c.Context(), g, d, a[0]) })
			},
		},
		&cobra.Command{
			Use: "remove NAME", Short: "Remove a notifier", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, a []string) error {
				return opts.withData(c.Context(), func(d *datadir.Data) error {
					if err := d.State.RemoveNotifier(c.Context(), a[0]); err != nil {
						return notifierError(err)
					}
					g.printf("removed notifier %s\n", a[0])
					return nil
				})
			},
		},
	)
	return c
}

func notifierError(err error) error {
	if errors.Is(err, reports.ErrNoNotifier) {
		return withHint(err, "see `cairn server notify list`")
	}
	return err
}

// ServerNotifyAddOptions are `server notify add`'s flags.
type ServerNotifyAddOptions struct {
	Webhook          string
	SecretFile       string
	SMTP             string
	From             string
	To               []string
	SMTPUser         string
	SMTPPasswordFile string
	Repeat           time.Duration
}

var notifierName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func newServerNotifyAddCommand(g *GlobalOptions, opts *ServerOptions) *cobra.Command {
	var no ServerNotifyAddOptions
	c := &cobra.Command{
		Use:   "add NAME (--webhook URL | --smtp HOST:PORT --from A --to B)",
		Short: "Add a notifier: a webhook or an SMTP relay",
		Long: `Add a notifier. A webhook gets each event as a JSON POST, signed with a
shared secret: header X-Cairn-Signature is "sha256=" and the hex HMAC-SHA-256
of the body, keyed with the secret's bytes. Without --secret-file a secret is
generated and printed once. E-mail goes through an SMTP relay, with STARTTLS
whenever the relay offers it and always when logging in (--smtp-user with
--smtp-password-file; the file is read at each delivery, its path stored).`,
		Example: `  cairn server notify add ops-hook --webhook https://hooks.example/cairn
  cairn server notify add ops-mail --smtp mail.example:587 --from cairn@example.org \
      --to ops@example.org --smtp-user cairn --smtp-password-file /etc/cairn/smtp.pass --repeat 12h`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error { return runServerNotifyAdd(c.Context(), g, opts, no, a[0]) },
	}
	f := c.Flags()
	f.StringVar(&no.Webhook, "webhook", "", "post events as JSON to this http:// or https:// URL")
	f.StringVar(&no.SecretFile, "secret-file", "", "the webhook's signing secret, from this file (default: generate one)")
	f.StringVar(&no.SMTP, "smtp", "", "mail events through this relay, HOST:PORT")
	f.StringVar(&no.From, "from", "", "sender address of the mails")
	f.StringArrayVar(&no.To, "to", nil, "recipient address (repeat for more)")
	f.StringVar(&no.SMTPUser, "smtp-user", "", "log in to the relay as this user (needs STARTTLS)")
	f.StringVar(&no.SMTPPasswordFile, "smtp-password-file", "", "the relay login's password, read from this file at each delivery")
	f.DurationVar(&no.Repeat, "repeat", alert.DefaultRepeat, "notify a standing WARNING or ALERT again this often (at least 1m)")
	return c
}

func runServerNotifyAdd(ctx context.Context, g *GlobalOptions, opts *ServerOptions, no ServerNotifyAddOptions, name string) error {
	if !notifierName.MatchString(name) {
		return usageError{fmt.Errorf("notifier name %q: use letters, digits, '.', '_' and '-', at most 64", name)}
	}
	if no.Repeat < time.Minute {
		return usageError{fmt.Errorf("--repeat %v: give at least 1m", no.Repeat)}
	}
	var cfg monitor.Config
	generated := ""
	switch {
	case no.Webhook != "" && no.SMTP != "":
		return usageError{errors.New("give --webhook or --smtp, not both: add two notifiers")}
	case no.Webhook != "":
		if no.From != "" || len(no.To) > 0 || no.SMTPUser != "" || no.SMTPPasswordFile != "" {
			return usageError{errors.New("--from, --to, --smtp-user and --smtp-password-file go with --smtp, not --webhook")}
		}
		var secret []byte
		if no.SecretFile != "" {
			b, err := os.ReadFile(no.SecretFile)
			if err != nil {
				return fmt.Errorf("read --secret-file: %w", err)
			}
			secret = []byte(strings.TrimRight(string(b), "\r\n"))
			if len(secret) < 16 {
				return usageError{fmt.Errorf("the secret in %s is too short: use at least 16 characters", no.SecretFile)}
			}
		} else {
			b := make([]byte, 24)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			generated = hex.EncodeToString(b)
			secret = []byte(generated)
		}
		cfg.Webhook = &monitor.WebhookConfig{URL: no.Webhook, Secret: hex.EncodeToString(secret)}
	case no.SMTP != "":
		if no.SecretFile != "" {
			return usageError{errors.New("--secret-file goes with --webhook")}
		}
		pwFile := no.SMTPPasswordFile
		if pwFile != "" {
			abs, err := filepath.Abs(pwFile)
			if err != nil {
				return err
			}
			if _, err := os.ReadFile(abs); err != nil {
				return usageError{fmt.Errorf("read --smtp-password-file: %w", err)}
			}
			pwFile = abs
		}
		cfg.SMTP = &monitor.SMTPConfig{Addr: no.SMTP, From: no.From, To: no.To, User: no.SMTPUser, PasswordFile: pwFile}
	default:
		return usageError{errors.New("give --webhook URL, or --smtp HOST:PORT with --from and --to")}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	raw, err := jsonString(cfg)
	if err != nil {
		return err
	}
	return opts.withData(ctx, func(d *datadir.Data) error {
		err = d.State.AddNotifier(ctx, reports.Notifier{Name: name, Kind: cfg.Kind(), Config: raw, Repeat: no.Repeat, Created: time.Now()})
		if errors.Is(err, reports.ErrNotifierExists) {
			return withHint(err, "choose another name, or `cairn server notify remove %s` first", name)
		}
		if err != nil {
			return err
		}
		if g.JSON {
			out := notifierAddedJSON{MessageType: "notifier_added", Name: name, Kind: cfg.Kind(), Target: cfg.Target(), Repeat: no.Repeat.String()}
			if generated != "" {
				out.Secret = generated
			}
			return writeJSON(g.stdout, out)
		}
		g.printf("added notifier %s: %s %s, repeating every %v\n", name, cfg.Kind(), cfg.Target(), no.Repeat)
		if generated != "" {
			g.printf("webhook secret: %s\n", generated)
			g.printf("It is shown only now; the receiver checks X-Cairn-Signature with it.\n")
		}
		g.printf("Try it: cairn server notify test %s\n", name)
		return nil
	})
}

func jsonString(v any) (string, error) {
	var b strings.Builder
	if err := writeJSON(&b, v); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

func runServerNotifyList(ctx context.Context, g *GlobalOptions, d *datadir.Data) error {
	ns, err := monitor.Notifiers(ctx, d.State)
	if err != nil {
		return err
	}
	if g.JSON {
		return writeJSON(g.stdout, notifierMessages(ns))
	}
	return printNotifiers(g.stdout, ns, isColourTerminal(g.stdout))
}

func runServerNotifyTest(ctx context.Context, g *GlobalOptions, d *datadir.Data, name string) error {
	host, _ := os.Hostname()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := monitor.Test(ctx, d.State, name, host, time.Now()); err != nil {
		if errors.Is(err, reports.ErrNoNotifier) {
			return notifierError(err)
		}
		return withHint(err, "fix the notifier, or replace it: `cairn server notify remove %s`, then `notify add`", name)
	}
	if g.JSON {
		return writeJSON(g.stdout, notifierTestedJSON{MessageType: "notifier_tested", Name: name, Delivered: true})
	}
	g.printf("delivered a test notice to %s\n", name)
	return nil
}

// startMonitor runs the backup-age watcher of `cairn server run` every
// `every` until the returned stop is called; stop waits for it to end.
func startMonitor(ctx context.Context, d *datadir.Data, log *slog.Logger, now func() time.Time, every time.Duration) (stop func()) {
	host, _ := os.Hostname()
	w := &monitor.Watcher{State: d.State, Log: log, Now: now, Server: host}
	ctx, cancel := context.WithCancel(ctx)
	t := time.NewTicker(every)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, t.C)
	}()
	return func() {
		cancel()
		t.Stop()
		<-done
	}
}

// monitorCollectors are the monitor's metrics for `cairn server run`.
func monitorCollectors(d *datadir.Data, log *slog.Logger, now func() time.Time) []prometheus.Collector {
	return []prometheus.Collector{&monitor.Collector{State: d.State, Now: now, Log: log}}
}
