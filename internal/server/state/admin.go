package state

// Admins: the logins of the server's web status page (`cairn server admin
// add`), their passwords hashed as clients' are.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// Admin is a login of the web status page.
type Admin struct {
	Name    string
	Hash    string
	Created time.Time
}

// Errors of admins.
var (
	ErrNoAdmin     = errors.New("no such admin")
	ErrAdminExists = errors.New("admin already exists")
)

// AddAdmin records a new admin; ErrAdminExists if the name is taken.
func (s *State) AddAdmin(ctx context.Context, a Admin) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO admins (name, hash, created) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING`,
		a.Name, a.Hash, schema.Nanos(a.Created))
	if err != nil {
		return fmt.Errorf("add admin %s: %w", a.Name, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("admin %q: %w", a.Name, ErrAdminExists)
	}
	return nil
}

// Admins returns every admin, sorted by name.
func (s *State) Admins(ctx context.Context) ([]Admin, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, hash, created FROM admins ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	defer rows.Close()
	var out []Admin
	for rows.Next() {
		var a Admin
		var c int64
		if err := rows.Scan(&a.Name, &a.Hash, &c); err != nil {
			return nil, fmt.Errorf("list admins: %w", err)
		}
		a.Created = schema.FromNanos(c)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Admin returns the named admin, or ErrNoAdmin.
func (s *State) Admin(ctx context.Context, name string) (Admin, error) {
	var a Admin
	var c int64
	err := s.db.QueryRowContext(ctx, `SELECT name, hash, created FROM admins WHERE name = ?`, name).Scan(&a.Name, &a.Hash, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return Admin{}, fmt.Errorf("admin %q: %w", name, ErrNoAdmin)
	}
	if err != nil {
		return Admin{}, fmt.Errorf("read admin %s: %w", name, err)
	}
	a.Created = schema.FromNanos(c)
	return a, nil
}

// RemoveAdmin deletes an admin; ErrNoAdmin if there is none.
func (s *State) RemoveAdmin(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM admins WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove admin %s: %w", name, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("admin %q: %w", name, ErrNoAdmin)
	}
	return nil
}
