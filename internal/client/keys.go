package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// ExportKey writes the new key m, sealed under pw, to a new file at path
// (never over an existing one) and enrols it in repo's owner-signed
// roster: a writer, bound to hosts (none: its label), so its snapshots
// verify; a server so its tombstones and receipts count. No copy of the
// key is stored in the repository. When enrolment fails the file is
// removed. It returns the host labels a writer may back up as.
func ExportKey(ctx context.Context, repo *repository.Repository, m *crypto.KeyMaterial, pw []byte, label string, hosts []string, path string) ([]string, error) {
	buf, err := repository.ExportKey(m, pw, crypto.DefaultKDF, time.Now(), label)
	if err != nil {
		return nil, fmt.Errorf("export key: %w", err)
	}
	if err := atomicfile.WriteNewFile(path, buf, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, WithHint(fmt.Errorf("export key: %w", err), "choose another --export file")
		}
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	switch m.Role {
	case crypto.RoleWriter:
		if err := repo.AddWriter(ctx, m, label, hosts...); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("add writer to the roster: %w", err)
		}
	case crypto.RoleServer:
		if err := repo.AddCoordinator(ctx, m, label); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("add server to the roster: %w", err)
		}
	}
	if len(hosts) == 0 {
		hosts = []string{label}
	}
	return hosts, nil
}
