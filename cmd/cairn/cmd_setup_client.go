package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/agent"
	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/client"
)

// SetupClientOptions are setup-client's flags.
type SetupClientOptions struct {
	Server, Fingerprint, Client, ClientPasswordFile string
	RepoName, Config, OwnerKeyFile, Host            string
	Paths                                           []string
	NoInstall, Daemon                               bool
}

func newSetupClientCommand(g *GlobalOptions) *cobra.Command {
	var opts SetupClientOptions
	c := &cobra.Command{
		Use:   "setup-client",
		Short: "Set up this machine as a client of a cairn server, from nothing to a first backup",
		Long: `One command on a new machine: it checks the server's fingerprint, creates
the repository on the server (its owner key, protected by --password-file,
stays on this machine), makes the writer key the agent backs up with,
writes the agent's configuration (mode 0600) with the files it needs next
to it, installs the systemd units (unless --no-install), and runs the
first backup.

--client-password-file is the password ` + "`cairn server client add`" + ` set for
this client on the server; --password-file is the new owner key's. They
must differ: the server sees the client password on every request.`,
		Example: `  cairn setup-client --server https://backup.example:8443 --server-fingerprint SHA256:1afb-… \
      --client web1 --client-password-file web1.pass --password-file owner.pass
  cairn setup-client --server https://backup.example:8443 --server-fingerprint SHA256:1afb-… \
      --client db1 --client-password-file db1.pass --password-file owner.pass --paths /etc --paths /srv --no-install`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runSetupClient(c.Context(), g, opts) },
	}
	f := c.Flags()
	f.StringVar(&opts.Server, "server", "", "the cairn server's `URL`, e.g. https://backup.example:8443")
	f.StringVar(&opts.Fingerprint, "server-fingerprint", "", "the server's fingerprint, as cairn server fingerprint prints it on the server")
	f.StringVar(&opts.Client, "client", "", "this client's `NAME` on the server")
	f.StringVar(&opts.ClientPasswordFile, "client-password-file", "", "`FILE` with the client's password on the server")
	f.StringVar(&opts.RepoName, "repo-name", "main", "the repository's `NAME` under the client")
	f.StringArrayVar(&opts.Paths, "paths", nil, "`PATH` to back up (repeatable; default /)")
	f.StringVar(&opts.Config, "config", agent.DefaultConfigPath, "where to write the agent configuration; the writer key and password files go next to it")
	f.StringVar(&opts.OwnerKeyFile, "owner-key-file", "", "where to write the owner key (default $XDG_CONFIG_HOME/cairn/keys/ID.key)")
	f.StringVar(&opts.Host, "host", "", "`HOST` label for the snapshots, which the writer key is bound to (default the hostname)")
	f.BoolVar(&opts.NoInstall, "no-install", false, "do not install the systemd units")
	f.BoolVar(&opts.Daemon, "daemon", false, "install the daemon (agent run) instead of a timer")
	return c
}

func runSetupClient(ctx context.Context, g *GlobalOptions, opts SetupClientOptions) error {
	var missing []string
	for _, m := range []struct{ v, flag string }{{opts.Server, "--server"}, {opts.Fingerprint, "--server-fingerprint"}, {opts.Client, "--client"}, {opts.ClientPasswordFile, "--client-password-file"}} {
		if m.v == "" {
			missing = append(missing, m.flag)
		}
	}
	if len(missing) > 0 {
		return usageError{fmt.Errorf("missing %s; see `cairn setup-client --help`", strings.Join(missing, ", "))}
	}
	if g.PasswordFile == "" && g.PasswordCommand == "" && os.Getenv("CAIRN_PASSWORD") == "" && !g.stderrIsTerminal() {
		return usageError{errors.New("no owner key password: pass --password-file FILE (the new owner key's password, not the client's)")}
	}
	u, err := url.Parse(opts.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return usageError{fmt.Errorf("--server %q: want the server's address, like https://backup.example:8443", opts.Server)}
	}
	for _, n := range []struct{ v, flag string }{{opts.Client, "--client"}, {opts.RepoName, "--repo-name"}} {
		if strings.ContainsAny(n.v, "/?#% ") || n.v == "." || n.v == ".." || n.v == "" {
			return usageError{fmt.Errorf("%s %q: want a plain name", n.flag, n.v)}
		}
	}
	cfgPath, err := filepath.Abs(opts.Config)
	if err != nil {
		return err
	}
	dir := filepath.Dir(cfgPath)
	files := map[string]string{
		"config": cfgPath, "writer key": filepath.Join(dir, "writer.key"),
		"writer password": filepath.Join(dir, "writer.password"), "client password": filepath.Join(dir, "client.password"),
	}
	for what, p := range files {
		if _, err := os.Lstat(p); err == nil {
			return withHint(fmt.Errorf("the %s file %s exists; nothing was done", what, p), "this machine is set up already; use another --config directory, or remove the old files")
		}
	}
	clientPW, err := os.ReadFile(opts.ClientPasswordFile)
	if err != nil {
		return withHint(fmt.Errorf("read client password: %w", err), "check --client-password-file")
	}
	clientPW = []byte(strings.TrimRight(string(clientPW), "\r\n"))
	host := opts.Host
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return withHint(err, "pass --host")
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config directory: %w", err)
	}

	// 1. The repository, after the fingerprint is confirmed.
	plain := fmt.Sprintf("rest:%s://%s/%s/%s", u.Scheme, u.Host, opts.Client, opts.RepoName)
	withPW := *u
	withPW.User = url.UserPassword(opts.Client, string(clientPW))
	withPW.Path = "/" + opts.Client + "/" + opts.RepoName
	g.Repo = "rest:" + withPW.String()
	l, err := location.Parse(g.Repo)
	if err != nil {
		return usageError{err}
	}
	if err := runInitServer(ctx, g, InitOptions{ServerFingerprint: opts.Fingerprint, OwnerKeyFile: opts.OwnerKeyFile}, g.Repo, l); err != nil {
		return err
	}
	ownerKey := opts.OwnerKeyFile
	if ownerKey == "" {
		o, err := g.clientOptions(nil)
		if err != nil {
			return err
		}
		be, err := client.OpenBackend(ctx, o)
		if err != nil {
			return err
		}
		ownerKey, _ = client.KeptKey(ctx, be)
		be.Close()
		if ownerKey == "" {
			return errors.New("the repository was created, but its owner key file was not found where `cairn init` keeps it")
		}
	}
	after := func(err error, step string) error {
		return withHint(fmt.Errorf("the repository was created and its owner key is %s, but %s failed: %w", ownerKey, step, err),
			"fix the problem, then make the writer key and configuration by hand (docs/agent.md), or delete the repository on the server and run setup-client again")
	}

	// 2. The writer key the agent backs up with, under a random password
	// kept next to it: it is there to be used unattended.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	wpw := files["writer password"]
	if err := atomicfile.WriteFile(wpw, []byte(base64.RawURLEncoding.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return after(err, "writing the writer password")
	}
	g.KeyFile = ownerKey
	if err := runKeyAdd(ctx, g, KeyAddOptions{Role: "writer", NewPasswordFile: wpw, Export: files["writer key"], Label: opts.Client, Hosts: []string{host}}); err != nil {
		return after(err, "making the writer key")
	}
	if err := atomicfile.WriteFile(files["client password"], append(clientPW, '\n'), 0o600); err != nil {
		return after(err, "copying the client password")
	}

	// 3. The configuration, checked as the agent will read it.
	if err := atomicfile.WriteFile(cfgPath, agentConfigText(plain, opts, host, files), 0o600); err != nil {
		return after(err, "writing the configuration")
	}
	if _, err := agent.Load(cfgPath); err != nil {
		return after(err, "checking the written configuration")
	}
	g.printf("wrote %s (mode 0600); the agent backs up with the writer key %s\n", displayText(cfgPath), displayText(files["writer key"]))
	g.printf("owner key: %s. Copy it somewhere safe, off this machine, and keep its password apart from it: restoring needs both.\n", displayText(ownerKey))

	// 4. The units, then the first backup.
	if opts.NoInstall {
		g.printf("not installed (--no-install); later: cairn agent install --config %s\n", displayText(cfgPath))
	} else if err := runAgentInstall(g, cfgPath, "/etc/systemd/system", "", opts.Daemon, false); err != nil {
		return after(err, "installing the systemd units")
	}
	g.KeyFile = ""
	g.printf("running the first backup\n")
	r, err := agentRunner(g, cfgPath)
	if err != nil {
		return err
	}
	r.Config.Retries.Attempts = 1 // a person is watching: report at once
	if err := r.RunOnce(ctx); err != nil {
		return withHint(fmt.Errorf("setup is complete, but the first backup failed: %w", err), "run `cairn agent once --config %s` after fixing it", cfgPath)
	}
	return nil
}

// agentConfigText is the configuration setup-client writes: the keys it
// knows, and the defaults spelled out so a person sees what will happen.
func agentConfigText(repo string, opts SetupClientOptions, host string, files map[string]string) []byte {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	paths := opts.Paths
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	var qp []string
	for _, p := range paths {
		qp = append(qp, q(p))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by cairn setup-client; every key is explained in docs/agent.md.\n")
	fmt.Fprintf(&b, "repository: %s\nserver_fingerprint: %s\nclient_password_file: %s\n", q(repo), q(opts.Fingerprint), q(files["client password"]))
	fmt.Fprintf(&b, "key_file: %s\npassword_file: %s\n", q(files["writer key"]), q(files["writer password"]))
	fmt.Fprintf(&b, "host: %s\n", q(host))
	fmt.Fprintf(&b, "# Virtual, network and temporary file systems are left out by default.\npaths: [%s]\n", strings.Join(qp, ", "))
	fmt.Fprintf(&b, "schedule:\n  at: %s\n  jitter: %s\n", q(agent.DefaultSchedule), agent.DefaultJitter)
	fmt.Fprintf(&b, "retries:\n  attempts: %d\n  interval: %s\n", agent.DefaultAttempts, agent.DefaultRetryInterval)
	return []byte(b.String())
}
