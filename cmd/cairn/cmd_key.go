package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/trust"
)

// KeyAddOptions are "key add"'s flags.
type KeyAddOptions struct {
	Role            string
	NewPasswordFile string
	Export          string
	Label           string
	Hosts           []string // host labels a writer is bound to (R25)
}

// KeyPasswdOptions are "key passwd"'s flags.
type KeyPasswdOptions struct {
	NewPasswordFile string
}

func newKeyCommand(g *GlobalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Manage the repository's keys",
		Example: `  cairn key list
  cairn key add --role writer --export laptop.key --new-password-file laptop.pass
  cairn key remove 3f9a21c0
  cairn key revoke web1`,
	}
	list := &cobra.Command{
		Use: "list", Short: "List key files and the writers and servers in the roster", Args: cobra.NoArgs,
		Long: `List every key file in the repository's keys/ (invalid ones too, so they
can be removed) and every writer and server (coordinator) in the current
owner-signed roster, revoked writers included. A writer's or server's ID is
its signing key in hex; "cairn key revoke" takes a unique prefix of it.`,
		Example: "  cairn key list\n  cairn key list --json",
		RunE:    func(c *cobra.Command, _ []string) error { return runKeyList(c.Context(), g) },
	}
	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a writer: the server and every reader refuse its later snapshots",
		Long: `Revoke a writer (owner only): publish a new owner-signed roster that lists
it as revoked. Its snapshots up to the last one it has signed stay valid;
any later one is refused by the server and by every reader. ID is a unique
prefix of the writer's ID as "cairn key list" shows it, or its name.`,
		Example: "  cairn key revoke 9c1e22aa\n  cairn key revoke web1",
		Args:    cobra.ExactArgs(1),
		RunE:    func(c *cobra.Command, args []string) error { return runKeyRevoke(c.Context(), g, args[0]) },
	}
	var add KeyAddOptions
	addCmd := &cobra.Command{
		Use:   "add",
		Short: "Add a key: another owner password, a writer or a server key",
		Long: `Add a key. --role owner stores the owner key under another password;
--role writer makes a write-only key for another machine (with --export it is
written to a file outside the repository; copy it to that machine and use
--key-file there); --role server makes the metadata key a backup server holds.

A writer is bound to the host labels given with --host (repeatable; default
its --label): its snapshots may carry only those, a server refuses any other,
and the owner's check flags one. A writer's backup records its first bound
label unless told otherwise.`,
		Example: `  cairn key add --role owner
  cairn key add --role writer --export web1.key --new-password-file web1.pass --label web1
  cairn key add --role writer --export db.key --label db --host db-1 --host db-2
  cairn key add --role server --export server.key`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runKeyAdd(c.Context(), g, add) },
	}
	addCmd.Flags().StringVar(&add.Role, "role", "owner", "role of the new key: owner, writer or server")
	addCmd.Flags().StringVar(&add.NewPasswordFile, "new-password-file", "", "read the new key's password from this file")
	addCmd.Flags().StringVar(&add.Export, "export", "", "write the key to this file instead of the repository's keys/")
	addCmd.Flags().StringVar(&add.Label, "label", "", "a name for the key (default user@host)")
	addCmd.Flags().StringArrayVar(&add.Hosts, "host", nil, "host label a writer may back up as (repeatable; default the --label)")
	remove := &cobra.Command{
		Use: "remove ID", Short: "Remove a key file", Args: cobra.ExactArgs(1),
		Example: "  cairn key remove 3f9a21c0",
		RunE:    func(c *cobra.Command, args []string) error { return runKeyRemove(c.Context(), g, args[0]) },
	}
	var pw KeyPasswdOptions
	passwd := &cobra.Command{
		Use: "passwd", Short: "Change the password of the key in use", Args: cobra.NoArgs,
		Example: "  cairn key passwd --new-password-file new.pass",
		RunE:    func(c *cobra.Command, _ []string) error { return runKeyPasswd(c.Context(), g, pw) },
	}
	passwd.Flags().StringVar(&pw.NewPasswordFile, "new-password-file", "", "read the new password from this file")
	c.AddCommand(list, addCmd, remove, revoke, passwd)
	return c
}

func newPassword(file string) ([]byte, error) {
	if file != "" {
		return readPasswordFile(file)
	}
	return promptPassword("enter the new password: ", true)
}

func runKeyList(ctx context.Context, g *GlobalOptions) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	keys, err := repo.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	entries := keyEntries(keys, repo)
	if g.JSON {
		out := []keyJSON{}
		for _, e := range entries {
			out = append(out, e.message())
		}
		return writeJSON(g.stdout, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, " \tID\tKind\tRole\tAdded\tLabel\tHosts\tStatus")
	for _, e := range entries {
		cur := " "
		if e.current {
			cur = "*"
		}
		added := "-"
		if !e.added.IsZero() {
			added = e.added.Local().Format("2006-01-02 15:04:05")
		}
		hosts := "-"
		if e.kind == "writer" {
			hosts = strings.Join(e.hosts, ",")
			if hosts == "" {
				hosts = "(none)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cur, e.id[:8], e.kindText(), e.role, added, e.label, hosts, e.status())
	}
	if repo.KeyID() == "" {
		if g.KeyFile != "" {
			fmt.Fprintf(tw, "(the key in use is the %s key file %s, kept outside the repository)\n", repo.Keys().Role, g.KeyFile)
		} else {
			fmt.Fprintf(tw, "(the key in use is the %s key kept outside the repository)\n", repo.Keys().Role)
		}
	}
	return tw.Flush()
}

// keyEntry is one line of `key list`: a key file, or a roster entry.
type keyEntry struct {
	kind    string // "key_file", "writer", "coordinator"
	id      string // key file name, or the signing key in hex
	role    string
	added   time.Time
	label   string
	current bool
	invalid string
	revoked *trust.Revocation
	hosts   []string // a writer's bound host labels (R25)
}

func (e keyEntry) kindText() string {
	if e.kind == "key_file" {
		return "key file"
	}
	return "roster"
}

func (e keyEntry) status() string {
	switch {
	case e.invalid != "":
		return "invalid: " + e.invalid
	case e.revoked != nil:
		return fmt.Sprintf("revoked %s (snapshots up to seq %d stay valid)", e.revoked.At.Local().Format("2006-01-02 15:04:05"), e.revoked.LastSeq)
	}
	return ""
}

// keyEntries lists the key files, then the roster's writers, revoked
// writers and coordinators.
func keyEntries(keys []repository.KeyInfo, repo *repository.Repository) []keyEntry {
	var out []keyEntry
	for _, k := range keys {
		e := keyEntry{kind: "key_file", id: k.ID, label: k.Label, current: k.Current, invalid: k.Invalid}
		if k.Invalid == "" {
			e.role, e.added = k.Role.String(), k.Created
		} else {
			e.role = "invalid"
		}
		out = append(out, e)
	}
	var self []byte
	if repo.Keys().Sign != nil {
		self = repo.Keys().SignerID()
	}
	ro := repo.Roster()
	for _, w := range ro.Writers {
		out = append(out, keyEntry{kind: "writer", id: hex.EncodeToString(w.ID), role: "writer", added: w.Added, label: w.Name,
			current: repo.Keys().Role == crypto.RoleWriter && bytes.Equal(w.ID, self), hosts: repo.SignerOf(w.ID).Hosts})
	}
	for i, v := range ro.Revoked {
		sg := repo.SignerOf(v.ID)
		out = append(out, keyEntry{kind: "writer", id: hex.EncodeToString(v.ID), role: "writer", revoked: &ro.Revoked[i], label: sg.Name, hosts: sg.Hosts})
	}
	for _, c := range ro.Coordinators {
		out = append(out, keyEntry{kind: "coordinator", id: hex.EncodeToString(c.ID), role: "server", added: c.Added, label: c.Name})
	}
	return out
}

func runKeyRevoke(ctx context.Context, g *GlobalOptions, arg string) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if repo.Keys().Role != crypto.RoleOwner {
		return roleError{verb: "revoking writers", need: "the owner key", have: repo.Keys().Role, base: crypto.ErrNeedsOwner}
	}
	ro := repo.Roster()
	prefix := strings.ToLower(arg)
	var match []trust.Writer
	for _, w := range ro.Writers {
		if w.Name == arg || strings.HasPrefix(hex.EncodeToString(w.ID), prefix) {
			match = append(match, w)
		}
	}
	switch {
	case len(match) > 1:
		return withHint(fmt.Errorf("%q names %d writers", arg, len(match)), "give more digits of the ID `cairn key list` shows")
	case len(match) == 0:
		for _, v := range ro.Revoked {
			if strings.HasPrefix(hex.EncodeToString(v.ID), prefix) {
				return withHint(fmt.Errorf("writer %x is already revoked", v.ID[:4]), "nothing was changed")
			}
		}
		return withHint(fmt.Errorf("no writer %q in the roster", arg), "list them with `cairn key list`")
	}
	w := match[0]
	last, err := repo.RevokeWriter(ctx, ed25519.PublicKey(w.ID))
	if err != nil {
		return fmt.Errorf("revoke writer %x: %w", w.ID[:4], err)
	}
	id := hex.EncodeToString(w.ID)
	if g.JSON {
		return writeJSON(g.stdout, keyRevokedJSON{MessageType: "key_revoked", ID: id, ShortID: id[:8], Label: w.Name, LastSeq: last})
	}
	g.printf("revoked writer %s (%s): its snapshots up to seq %d stay valid; any later one is refused\n", id[:8], w.Name, last)
	return nil
}

func runKeyAdd(ctx context.Context, g *GlobalOptions, opts KeyAddOptions) error {
	role, err := crypto.ParseRole(opts.Role)
	if err != nil {
		return usageError{err}
	}
	if len(opts.Hosts) > 0 && role != crypto.RoleWriter {
		return usageError{fmt.Errorf("--host binds a writer to host labels; a %s key is not bound to any", role)}
	}
	for _, h := range opts.Hosts {
		if h == "" || len(h) > 255 {
			return usageError{fmt.Errorf("--host %q: a host label is 1 to 255 bytes", h)}
		}
	}
	if opts.Export != "" {
		if _, err := os.Lstat(opts.Export); err == nil {
			return withHint(fmt.Errorf("%s already exists", opts.Export), "choose another --export file; nothing was changed")
		}
	}
	if l, err := location.Parse(g.Repo); err == nil && l.Kind == location.Rest && opts.Export == "" {
		return keyOnServerError(role)
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if repo.Keys().Role != crypto.RoleOwner {
		return roleError{verb: "adding keys", need: "the owner key", have: repo.Keys().Role, base: crypto.ErrNeedsOwner}
	}
	if len(repo.Config().MetaRecipientsExtra) > 0 && opts.Export == "" {
		return keyOnServerError(role)
	}
	pw, err := newPassword(opts.NewPasswordFile)
	if err != nil {
		return err
	}
	label := opts.Label
	if label == "" {
		label = keyLabel()
	}
	m, err := repo.NewKeyMaterial(role)
	if err != nil {
		return err
	}
	if opts.Export == "" {
		id, err := repo.AddKey(ctx, m, pw, crypto.DefaultKDF, label, opts.Hosts...)
		if err != nil {
			return fmt.Errorf("add %s key: %w", role, err)
		}
		if g.JSON {
			return writeJSON(g.stdout, keyAddedJSON{MessageType: "key_added", ID: id, Role: role.String()})
		}
		g.printf("added %s key %s\n", role, id[:8])
		return nil
	}
	return exportKey(ctx, g, repo, m, pw, label, opts.Hosts, opts.Export)
}

// keyOnServerError refuses to store a key file in a repository kept on a
// server: an owner key never leaves the owner's machines (R4), and a
// writer's or server's key belongs on the machine that uses it.
func keyOnServerError(role crypto.Role) error {
	if role == crypto.RoleOwner {
		return withHint(errors.New("refusing to store an owner key on a server (the owner key never leaves your machines)"),
			"keep another copy under a new password with `cairn key add --role owner --export FILE`, and store FILE safely offline")
	}
	return withHint(fmt.Errorf("a repository on a server stores no key files; the %s key belongs on the machine that uses it", role),
		"use `cairn key add --role %s --export FILE` and copy FILE there", role)
}

// exportKey writes a new key to a file outside the repository; a writer
// is enrolled in the owner-signed roster, and no copy of its key is ever
// stored in the repository.
func exportKey(ctx context.Context, g *GlobalOptions, repo *repository.Repository, m *crypto.KeyMaterial, pw []byte, label string, hosts []string, path string) error {
	buf, err := repository.ExportKey(m, pw, crypto.DefaultKDF, time.Now(), label)
	if err != nil {
		return fmt.Errorf("export key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return withHint(fmt.Errorf("export key: %w", err), "choose another --export file")
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Enrol the exported key in the owner-signed roster: a writer so its
	// snapshots verify, a server so its tombstones and receipts count.
	switch m.Role {
	case crypto.RoleWriter:
		if err := repo.AddWriter(ctx, m, label, hosts...); err != nil {
			os.Remove(path)
			return fmt.Errorf("add writer to the roster: %w", err)
		}
	case crypto.RoleServer:
		if err := repo.AddCoordinator(ctx, m, label); err != nil {
			os.Remove(path)
			return fmt.Errorf("add server to the roster: %w", err)
		}
	}
	if len(hosts) == 0 {
		hosts = []string{label}
	}
	if g.JSON {
		out := keyExportedJSON{MessageType: "key_exported", File: path, Role: m.Role.String()}
		if m.Role == crypto.RoleWriter {
			out.Hosts = hosts
		}
		return writeJSON(g.stdout, out)
	}
	g.printf("exported %s key to %s\n", m.Role, path)
	if m.Role == crypto.RoleWriter {
		g.printf("the writer may back up as host %s\n", strings.Join(hosts, ", "))
		g.printf("use it on the writer's machine: cairn backup --key-file %s ...\n", path)
	}
	return nil
}

func runKeyRemove(ctx context.Context, g *GlobalOptions, arg string) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	keys, err := repo.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	var match []string
	for _, k := range keys {
		if strings.HasPrefix(k.ID, strings.ToLower(arg)) {
			match = append(match, k.ID)
		}
	}
	switch {
	case len(match) == 0:
		return withHint(fmt.Errorf("no key %s", arg), "list them with `cairn key list`")
	case len(match) > 1:
		return withHint(fmt.Errorf("key ID %s is ambiguous", arg), "give more digits")
	}
	if err := repo.RemoveKey(ctx, match[0]); err != nil {
		return fmt.Errorf("remove key %s: %w", match[0][:8], err)
	}
	g.printf("removed key %s\n", match[0][:8])
	return nil
}

func runKeyPasswd(ctx context.Context, g *GlobalOptions, opts KeyPasswdOptions) error {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if repo.KeyID() == "" {
		return withHint(errors.New("the key in use is a key file outside the repository"), "re-export it with `cairn key add --export` under a new password")
	}
	pw, err := newPassword(opts.NewPasswordFile)
	if err != nil {
		return err
	}
	id, err := repo.ChangePassword(ctx, pw, crypto.DefaultKDF, keyLabel())
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	g.printf("password changed; the key is now %s\n", id[:8])
	return nil
}
