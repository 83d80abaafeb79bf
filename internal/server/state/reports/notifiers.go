package reports

// The notifiers alerts go to, and what the running server last knew of
// them (open alerts, each notifier's health), so that `cairn server
// status` in another process shows the same.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// Notifier is a configured destination for alerts.
type Notifier struct {
	Name    string
	Kind    string // NotifierWebhook or NotifierSMTP
	Config  string // JSON of the kind's settings
	Repeat  time.Duration
	Created time.Time
	Health  string // JSON the running server last recorded; "" if none
}

// Notifier kinds.
const (
	NotifierWebhook = "webhook"
	NotifierSMTP    = "smtp"
)

// Errors of notifiers.
var (
	ErrNoNotifier     = errors.New("no such notifier")
	ErrNotifierExists = errors.New("notifier already exists")
)

// AddNotifier records a new notifier; ErrNotifierExists if the name is
// taken.
func (s *Reports) AddNotifier(ctx context.Context, n Notifier) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO notifiers (name, kind, config, repeat, created) VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING`,
		n.Name, n.Kind, n.Config, int64(n.Repeat), schema.Nanos(n.Created))
	if err != nil {
		return fmt.Errorf("add notifier %s: %w", n.Name, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("add notifier %s: %w", n.Name, ErrNotifierExists)
	}
	return nil
}

// Notifiers returns every notifier, sorted by name.
func (s *Reports) Notifiers(ctx context.Context) ([]Notifier, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, kind, config, repeat, created, health FROM notifiers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list notifiers: %w", err)
	}
	defer rows.Close()
	var out []Notifier
	for rows.Next() {
		var n Notifier
		var rep, created int64
		if err := rows.Scan(&n.Name, &n.Kind, &n.Config, &rep, &created, &n.Health); err != nil {
			return nil, fmt.Errorf("list notifiers: %w", err)
		}
		n.Repeat, n.Created = time.Duration(rep), schema.FromNanos(created)
		out = append(out, n)
	}
	return out, rows.Err()
}

// Notifier returns the named notifier, or ErrNoNotifier.
func (s *Reports) Notifier(ctx context.Context, name string) (Notifier, error) {
	all, err := s.Notifiers(ctx)
	if err != nil {
		return Notifier{}, err
	}
	for _, n := range all {
		if n.Name == name {
			return n, nil
		}
	}
	return Notifier{}, fmt.Errorf("notifier %q: %w", name, ErrNoNotifier)
}

// RemoveNotifier deletes a notifier; ErrNoNotifier if there is none.
func (s *Reports) RemoveNotifier(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM notifiers WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove notifier %s: %w", name, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("notifier %q: %w", name, ErrNoNotifier)
	}
	return nil
}

// SetNotifierHealth records a notifier's health (JSON); a notifier
// removed meanwhile is no error.
func (s *Reports) SetNotifierHealth(ctx context.Context, name, health string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE notifiers SET health = ? WHERE name = ?`, health, name); err != nil {
		return fmt.Errorf("record the health of notifier %s: %w", name, err)
	}
	return nil
}

// metaAlerts is the meta key of the running server's alert state.
const metaAlerts = "alerts"

// Alerts returns the alert state the running server last saved ("" if
// none).
func (s *Reports) Alerts(ctx context.Context) (string, error) {
	return schema.Meta(ctx, s.db, metaAlerts)
}

// SetAlerts saves the alert state (JSON).
func (s *Reports) SetAlerts(ctx context.Context, v string) error {
	return schema.SetMeta(ctx, s.db, metaAlerts, v)
}
