package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
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
  cairn key remove 3f9a21c0`,
	}
	list := &cobra.Command{
		Use: "list", Short: "List key files", Args: cobra.NoArgs,
		Example: "  cairn key list --json",
		RunE:    func(c *cobra.Command, _ []string) error { return runKeyList(c.Context(), g) },
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
	c.AddCommand(list, addCmd, remove, passwd)
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
	if g.JSON {
		out := []map[string]any{}
		for _, k := range keys {
			out = append(out, map[string]any{"id": k.ID, "short_id": k.ID[:8], "role": k.Role.String(),
				"created": k.Created.Format(time.RFC3339), "label": k.Label, "current": k.Current})
		}
		return writeJSON(g.stdout, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, " \tID\tRole\tCreated\tLabel")
	for _, k := range keys {
		cur := " "
		if k.Current {
			cur = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, k.ID[:8], k.Role, k.Created.Local().Format("2006-01-02 15:04:05"), k.Label)
	}
	if repo.KeyID() == "" {
		fmt.Fprintf(tw, "(the key in use is the %s key file %s, kept outside the repository)\n", repo.Keys().Role, g.KeyFile)
	}
	return tw.Flush()
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
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if repo.Keys().Role != crypto.RoleOwner {
		return roleError{verb: "adding keys", need: "the owner key", have: repo.Keys().Role, base: crypto.ErrNeedsOwner}
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
			return writeJSON(g.stdout, map[string]any{"message_type": "key_added", "id": id, "role": role.String()})
		}
		g.printf("added %s key %s\n", role, id[:8])
		return nil
	}
	return exportKey(ctx, g, repo, m, pw, label, opts.Hosts, opts.Export)
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
		out := map[string]any{"message_type": "key_exported", "file": path, "role": m.Role.String()}
		if m.Role == crypto.RoleWriter {
			out["hosts"] = hosts
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
