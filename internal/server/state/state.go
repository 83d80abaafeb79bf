// Package state is the cairn server's embedded SQLite database: clients
// and their credentials, retention policies, maintenance jobs, backup
// sessions and chain records. Every change is its own transaction. The
// tables and their versioned migrations are package schema's: Open brings
// an older database up to date, in order, and refuses a newer one.
// Monitoring's records (package reports) and those of the repositories'
// copies (package replicas) are their own packages, which State carries.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/replicas"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// Client is one tenant as the state database records it.
type Client struct {
	Name        string
	Hash        string // bcrypt hash of the password
	Quota       int64  // bytes; 0 means unlimited
	AppendOnly  bool
	Disabled    bool
	MinInterval time.Duration // minimum time between two snapshots; 0: none
	Created     time.Time
	// LastSnapshot is when the server last stored a snapshot file for the
	// client, on the server's clock; zero if never.
	LastSnapshot time.Time
	Snapshots    int64
	Requests     int64
	Errors       int64
	BytesStored  int64 // as of the last flush by a running server
	// Replica marks a tenant whose repositories hold copies another cairn
	// server replicates here (`server client add --replica`): the server
	// stores its files content-named, never overwrites or deletes them,
	// and never opens them (it has no key to).
	Replica bool
}

// Errors of the state database.
var (
	ErrNoClient     = errors.New("no such client")
	ErrClientExists = errors.New("client already exists")
)

// State is the server's embedded SQLite database: clients, credentials,
// policies, snapshot times and request counters. Every change is its own
// transaction, so a crash loses at most the counters of the last few
// seconds, never a client or a policy.
type State struct {
	db *sql.DB
	// The records of monitoring and of the repositories' copies, each
	// their own package.
	*reports.Reports
	*replicas.Replicas
	clients clientCache // Client's answers while nothing changed
}

// Open opens (creating if needed) the database at path and migrates it to
// the current schema (package schema).
func Open(ctx context.Context, path string) (*State, error) {
	db, err := schema.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return &State{db: db, Reports: reports.New(db), Replicas: replicas.New(db)}, nil
}

// Close closes the database.
func (s *State) Close() error {
	s.clients.close()
	return s.db.Close()
}

// AddClient records a new client; ErrClientExists if the name is taken.
func (s *State) AddClient(ctx context.Context, c Client) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO clients (name, hash, quota, append_only, disabled, min_interval, created, replica) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Name, c.Hash, c.Quota, schema.Flag(c.AppendOnly), schema.Flag(c.Disabled), int64(c.MinInterval), schema.Nanos(c.Created), schema.Flag(c.Replica))
	if err != nil {
		if _, gerr := s.Client(ctx, c.Name); gerr == nil {
			return fmt.Errorf("add client %s: %w", c.Name, ErrClientExists)
		}
		return fmt.Errorf("add client %s: %w", c.Name, err)
	}
	return nil
}

const clientCols = `name, hash, quota, append_only, disabled, min_interval, created, last_snapshot, snapshots, requests, errors, bytes_stored, replica`

func scanClient(row schema.Scanner) (Client, error) {
	var c Client
	var ao, dis, rep int
	var minIv, created, last int64
	err := row.Scan(&c.Name, &c.Hash, &c.Quota, &ao, &dis, &minIv, &created, &last, &c.Snapshots, &c.Requests, &c.Errors, &c.BytesStored, &rep)
	c.AppendOnly, c.Disabled, c.Replica = ao != 0, dis != 0, rep != 0
	c.MinInterval, c.Created, c.LastSnapshot = time.Duration(minIv), schema.FromNanos(created), schema.FromNanos(last)
	return c, err
}

// Client returns the named client, or ErrNoClient: as the database has
// it now, from memory while nothing changed since it was last read
// (clientCache).
func (s *State) Client(ctx context.Context, name string) (Client, error) {
	v, cached := s.clients.current(ctx, s.db)
	if cached {
		if c, ok := s.clients.get(v, name); ok {
			return c, nil
		}
	}
	c, err := s.readClient(ctx, name)
	if err == nil && cached {
		s.clients.put(v, c)
	}
	return c, err
}

func (s *State) readClient(ctx context.Context, name string) (Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientCols+` FROM clients WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Client{}, fmt.Errorf("client %q: %w", name, ErrNoClient)
	}
	if err != nil {
		return Client{}, fmt.Errorf("read client %s: %w", name, err)
	}
	return c, nil
}

// Clients returns every client, sorted by name.
func (s *State) Clients(ctx context.Context) ([]Client, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientCols+` FROM clients ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// update runs one UPDATE on the named client, failing with ErrNoClient if
// there is none.
func (s *State) update(ctx context.Context, name, set string, args ...any) error {
	res, err := s.db.ExecContext(ctx, `UPDATE clients SET `+set+` WHERE name = ?`, append(args, name)...)
	if err != nil {
		return fmt.Errorf("update client %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("client %q: %w", name, ErrNoClient)
	}
	return nil
}

// SetHash replaces a client's password hash.
func (s *State) SetHash(ctx context.Context, name, hash string) error {
	return s.update(ctx, name, `hash = ?`, hash)
}

// SetDisabled disables or enables a client.
func (s *State) SetDisabled(ctx context.Context, name string, disabled bool) error {
	return s.update(ctx, name, `disabled = ?`, schema.Flag(disabled))
}

// RemoveClient deletes a client's record.
func (s *State) RemoveClient(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM clients WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove client %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("client %q: %w", name, ErrNoClient)
	}
	return nil
}

// RecordSnapshot notes that a snapshot of the client arrived at t.
func (s *State) RecordSnapshot(ctx context.Context, name string, t time.Time) error {
	return s.update(ctx, name, `last_snapshot = ?, snapshots = snapshots + 1`, schema.Nanos(t))
}

// AddCounters adds request and error counts and records bytes stored.
func (s *State) AddCounters(ctx context.Context, name string, requests, errs, bytesStored int64) error {
	err := s.update(ctx, name, `requests = requests + ?, errors = errors + ?, bytes_stored = ?`, requests, errs, bytesStored)
	if errors.Is(err, ErrNoClient) {
		return nil // removed meanwhile
	}
	return err
}

// SetMinInterval sets the minimum time between a client's snapshots.
func (s *State) SetMinInterval(ctx context.Context, name string, d time.Duration) error {
	return s.update(ctx, name, `min_interval = ?`, int64(d))
}
