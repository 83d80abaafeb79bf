package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/ratelimit"
	"github.com/cairnbackup/cairn/internal/repository"
)

// GlobalOptions are the flags every command takes.
type GlobalOptions struct {
	Repo            string
	PasswordFile    string
	PasswordCommand string
	KeyFile         string
	CACerts         []string
	CacheDir        string
	NoCache         bool
	noCacheWarned   bool
	JSON            bool
	Quiet           bool
	Verbose         int // -v 1, -vv 2
	Debug           bool
	Insecure        bool
	LimitUpload     string // a rate, e.g. 20MiB/s (ratelimit.ParseRate)
	LimitDownload   string
	limits          *ratelimit.Limits // parsed once: one limit per process
	// handoff, when set (backup --key-fd), unlocks the repository
	// instead of a password (backup_keyfd.go); handoffFD names it.
	handoff   *crypto.Handoff
	handoffFD int

	stdin          io.Reader
	stdout, stderr io.Writer
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (g *GlobalOptions) register(c *cobra.Command) {
	f := c.PersistentFlags()
	f.StringVarP(&g.Repo, "repo", "r", envOr("CAIRN_REPOSITORY", ""), "repository `LOCATION`: a directory, s3: or rest: URL (env CAIRN_REPOSITORY)")
	// --help shows the default from CAIRN_REPOSITORY: never its password.
	if fl := f.Lookup("repo"); fl != nil {
		fl.DefValue = location.Redact(fl.DefValue)
	}
	f.StringVarP(&g.PasswordFile, "password-file", "p", envOr("CAIRN_PASSWORD_FILE", ""), "read the password from `FILE` (env CAIRN_PASSWORD_FILE)")
	f.StringVar(&g.PasswordCommand, "password-command", envOr("CAIRN_PASSWORD_COMMAND", ""), "run the shell `COMMAND` and read the password from its output (env CAIRN_PASSWORD_COMMAND)")
	f.StringVar(&g.KeyFile, "key-file", envOr("CAIRN_KEY_FILE", ""), "unlock with the key `FILE` instead of the repository's keys/ (env CAIRN_KEY_FILE)")
	f.StringArrayVar(&g.CACerts, "cacert", envList("CAIRN_CACERT"), "trust only the certificate authorities in the PEM `FILE` for an https:// server (repeatable; env CAIRN_CACERT)")
	f.StringVar(&g.CacheDir, "cache-dir", envOr("CAIRN_CACHE_DIR", ""), "local cache `DIR` (default $CAIRN_CACHE_DIR, else $XDG_CACHE_HOME/cairn or ~/.cache/cairn)")
	f.BoolVar(&g.NoCache, "no-cache", false, "use no local cache")
	f.BoolVar(&g.JSON, "json", false, "print JSON instead of text")
	f.BoolVarP(&g.Quiet, "quiet", "q", false, "print only errors")
	f.CountVarP(&g.Verbose, "verbose", "v", "print more, also when not on a terminal; -vv or --verbose=`N` for more still (2 lists unchanged files)")
	f.BoolVar(&g.Debug, "debug", false, "print debug logs and error details")
	f.BoolVar(&g.Insecure, "insecure", false, "allow plain http:// to a rest: server that is not on loopback")
	f.StringVar(&g.LimitUpload, "limit-upload", "", "send at most `RATE` to an s3: or rest: repository, e.g. 20MiB/s (default: unlimited)")
	f.StringVar(&g.LimitDownload, "limit-download", "", "receive at most `RATE` from an s3: or rest: repository, e.g. 50MiB/s (default: unlimited)")
}

// logger logs to stderr: warnings by default, info with -v, debug with --debug.
func (g *GlobalOptions) logger() *slog.Logger {
	lvl := slog.LevelWarn
	switch {
	case g.Debug:
		lvl = slog.LevelDebug
	case g.Verbose > 0:
		lvl = slog.LevelInfo
	case g.Quiet:
		lvl = slog.LevelError
	}
	if g.JSON {
		return slog.New(slog.NewJSONHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
	}
	return slog.New(newCLIHandler(g.stderr, lvl))
}

// printf prints unless -q.
func (g *GlobalOptions) printf(format string, a ...any) {
	if !g.Quiet {
		fmt.Fprintf(g.stdout, format, a...)
	}
}

// stderrIsTerminal reports whether progress lines may be drawn.
func (g *GlobalOptions) stderrIsTerminal() bool {
	f, ok := g.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (g *GlobalOptions) cacheDir() (string, error) {
	if g.NoCache {
		return "", nil
	}
	if g.CacheDir != "" {
		return g.CacheDir, nil
	}
	dir, ok := client.DefaultCacheDir()
	if !ok && !g.noCacheWarned {
		g.noCacheWarned = true
		fmt.Fprintf(g.stderr, "cairn: warning: no cache directory ($HOME, $XDG_CACHE_HOME and $CAIRN_CACHE_DIR unset); running without a cache\n")
	}
	return dir, nil
}

// clientOptions fill client.Options from the flags, the password from
// getPassword. The cache directory is left to the caller (cacheDir), as
// opening the storage does not need it.
func (g *GlobalOptions) clientOptions(getPassword func() ([]byte, error)) (client.Options, error) {
	limits, err := g.rateLimits()
	if err != nil {
		return client.Options{}, err
	}
	pool, err := client.LoadCAs(g.CACerts)
	return client.Options{Location: g.Repo, Password: getPassword, KeyFile: g.KeyFile, KeyLabel: client.DefaultKeyLabel(),
		RootCAs: pool, Insecure: g.Insecure, Limits: limits, Logger: g.logger()}, err
}

// rateLimits are --limit-upload and --limit-download, made once so every
// repository a command opens shares them.
func (g *GlobalOptions) rateLimits() (ratelimit.Limits, error) {
	if g.limits != nil {
		return *g.limits, nil
	}
	var ls ratelimit.Limits
	for _, f := range []struct {
		flag, value string
		dst         **ratelimit.Limiter
	}{{"limit-upload", g.LimitUpload, &ls.Upload}, {"limit-download", g.LimitDownload, &ls.Download}} {
		if f.value == "" {
			continue
		}
		n, err := ratelimit.ParseRate(f.value)
		if err != nil {
			return ls, usageError{fmt.Errorf("--%s: %w", f.flag, err)}
		}
		*f.dst = ratelimit.New(n)
	}
	g.limits = &ls
	return ls, nil
}

func (g *GlobalOptions) repoOptions() (repository.Options, error) {
	dir, err := g.cacheDir()
	if err != nil {
		return repository.Options{}, err
	}
	return repository.Options{CacheDir: dir, KeyLabel: client.DefaultKeyLabel(), Logger: g.logger()}, nil
}

// envList is a colon-free list from the environment: one item, or none.
func envList(name string) []string {
	if v := os.Getenv(name); v != "" {
		return []string{v}
	}
	return nil
}

// locationOptions are what opening storage needs from the flags.
func (g *GlobalOptions) locationOptions() (location.Options, error) {
	o, err := g.clientOptions(nil)
	return o.LocationOptions(), err
}

// repoLocation returns -r, or a usage error when there is none. Parsing
// and the list of backends live in package location.
func (g *GlobalOptions) repoLocation() (string, error) {
	if g.Repo == "" {
		return "", usageError{errors.New("no repository given; pass -r DIR or set CAIRN_REPOSITORY")}
	}
	if _, err := location.Parse(g.Repo); err != nil {
		return "", usageError{err}
	}
	return g.Repo, nil
}

// openRepo opens and unlocks the repository.
func (g *GlobalOptions) openRepo(ctx context.Context) (*repository.Repository, error) {
	return g.openRepoWith(ctx, func() ([]byte, error) { return g.password("enter password for repository: ", false) })
}

// openRepoWith is openRepo with the password from getPassword (copy's
// source repository has its own): client.OpenBackend, then the cache
// directory, then client.Unlock.
func (g *GlobalOptions) openRepoWith(ctx context.Context, getPassword func() ([]byte, error)) (*repository.Repository, error) {
	if _, err := g.repoLocation(); err != nil {
		return nil, err
	}
	o, err := g.clientOptions(getPassword)
	if err != nil {
		return nil, err
	}
	be, err := client.OpenBackend(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.CacheDir, err = g.cacheDir(); err != nil {
		return nil, err
	}
	o.Handoff = g.handoff
	repo, err := client.Unlock(ctx, be, o)
	if err != nil && g.handoff != nil {
		return nil, fmt.Errorf("--key-fd %d: %w", g.handoffFD, err)
	}
	return repo, err
}

// password reads the password: --password-file / CAIRN_PASSWORD_FILE or
// --password-command / CAIRN_PASSWORD_COMMAND (not both), then
// CAIRN_PASSWORD, then a prompt without echo on a terminal, asked twice
// when confirm is set (a new password).
func (g *GlobalOptions) password(prompt string, confirm bool) ([]byte, error) {
	if g.PasswordFile != "" && g.PasswordCommand != "" {
		return nil, usageError{errors.New("--password-file and --password-command (or CAIRN_PASSWORD_FILE and CAIRN_PASSWORD_COMMAND) both given; pass one")}
	}
	if g.PasswordFile != "" {
		return readPasswordFile(g.PasswordFile)
	}
	if g.PasswordCommand != "" {
		return g.runPasswordCommand()
	}
	if pw, ok := os.LookupEnv("CAIRN_PASSWORD"); ok {
		return []byte(pw), nil
	}
	return promptPassword(prompt, confirm)
}

// runPasswordCommand runs --password-command with sh -c; its standard
// output less one final newline is the password, its standard error goes
// to ours (a password manager's complaint).
func (g *GlobalOptions) runPasswordCommand() ([]byte, error) {
	cmd := exec.Command("/bin/sh", "-c", g.PasswordCommand)
	cmd.Stderr = g.stderr
	// No standard input: with --stdin it is the data to back up. A
	// password manager that asks the user opens /dev/tty.
	out, err := cmd.Output()
	if err != nil {
		return nil, withHint(fmt.Errorf("password command %q failed: %w", g.PasswordCommand, err), "check --password-command/CAIRN_PASSWORD_COMMAND")
	}
	out = bytes.TrimSuffix(out, []byte("\n"))
	out = bytes.TrimSuffix(out, []byte("\r"))
	if len(out) == 0 {
		return nil, withHint(fmt.Errorf("password command %q printed no password", g.PasswordCommand), "check --password-command/CAIRN_PASSWORD_COMMAND")
	}
	return out, nil
}

func readPasswordFile(path string) ([]byte, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, withHint(fmt.Errorf("read password file: %w", err), "check --password-file/CAIRN_PASSWORD_FILE")
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	if len(buf) == 0 {
		return nil, withHint(fmt.Errorf("password file %s is empty", path), "write the password into it")
	}
	return buf, nil
}

// promptPassword asks on the terminal, twice when confirm is set.
func promptPassword(prompt string, confirm bool) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, usageError{errors.New("no password given and not on a terminal; set CAIRN_PASSWORD or CAIRN_PASSWORD_FILE, or pass --password-file")}
	}
	fmt.Fprint(os.Stderr, prompt)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if len(pw) == 0 {
		return nil, usageError{errors.New("empty password")}
	}
	if confirm {
		fmt.Fprint(os.Stderr, "enter the password again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, usageError{errors.New("the passwords do not match")}
		}
	}
	return pw, nil
}
