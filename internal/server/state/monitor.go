package state

// Monitoring: each client's backup-age thresholds, the notifiers alerts go
// to, and what the running server last knew of them (open alerts, each
// notifier's health), so that `cairn server status` in another process
// shows the same.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrateMonitor adds the warn/alert thresholds to clients (0: the
// defaults) and the notifiers table.
func migrateMonitor(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
ALTER TABLE clients ADD COLUMN warn_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN alert_after INTEGER NOT NULL DEFAULT 0;
CREATE TABLE notifiers (
	name    TEXT PRIMARY KEY,
	kind    TEXT NOT NULL,           -- "webhook" or "smtp"
	config  TEXT NOT NULL,           -- JSON, the kind's settings
	repeat  INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL,
	health  TEXT NOT NULL DEFAULT '' -- JSON, the running server's last view of it
);`)
	return err
}

// Thresholds are a client's backup-age limits; zero means the default.
type Thresholds struct {
	WarnAfter  time.Duration
	AlertAfter time.Duration
}

// Thresholds returns every client's backup-age thresholds by name.
func (s *State) Thresholds(ctx context.Context) (map[string]Thresholds, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, warn_after, alert_after FROM clients`)
	if err != nil {
		return nil, fmt.Errorf("read backup-age thresholds: %w", err)
	}
	defer rows.Close()
	out := map[string]Thresholds{}
	for rows.Next() {
		var name string
		var w, a int64
		if err := rows.Scan(&name, &w, &a); err != nil {
			return nil, fmt.Errorf("read backup-age thresholds: %w", err)
		}
		out[name] = Thresholds{time.Duration(w), time.Duration(a)}
	}
	return out, rows.Err()
}

// ClientChange lists the settings `cairn server client set` changes; nil
// fields stay as they are.
type ClientChange struct {
	Quota       *int64
	AppendOnly  *bool
	MinInterval *time.Duration
	Disabled    *bool
	WarnAfter   *time.Duration
	AlertAfter  *time.Duration
}

// UpdateClient applies ch to the named client in one transaction, keeping
// its history (snapshots, counters, policy, jobs); ErrNoClient if there is
// none. The thresholds that result must keep warn below alert (either
// being a default counts as its default value).
func (s *State) UpdateClient(ctx context.Context, name string, ch ClientChange, defWarn, defAlert time.Duration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update client %s: %w", name, err)
	}
	defer tx.Rollback()
	var w, a int64
	err = tx.QueryRowContext(ctx, `SELECT warn_after, alert_after FROM clients WHERE name = ?`, name).Scan(&w, &a)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("client %q: %w", name, ErrNoClient)
	}
	if err != nil {
		return fmt.Errorf("update client %s: %w", name, err)
	}
	set := func(col string, v any) error {
		_, err := tx.ExecContext(ctx, `UPDATE clients SET `+col+` = ? WHERE name = ?`, v, name)
		return err
	}
	var errs []error
	if ch.Quota != nil {
		errs = append(errs, set("quota", *ch.Quota))
	}
	if ch.AppendOnly != nil {
		errs = append(errs, set("append_only", b2i(*ch.AppendOnly)))
	}
	if ch.MinInterval != nil {
		errs = append(errs, set("min_interval", int64(*ch.MinInterval)))
	}
	if ch.Disabled != nil {
		errs = append(errs, set("disabled", b2i(*ch.Disabled)))
	}
	if ch.WarnAfter != nil {
		w = int64(*ch.WarnAfter)
		errs = append(errs, set("warn_after", w))
	}
	if ch.AlertAfter != nil {
		a = int64(*ch.AlertAfter)
		errs = append(errs, set("alert_after", a))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("update client %s: %w", name, err)
	}
	ew, ea := time.Duration(w), time.Duration(a)
	if ew <= 0 {
		ew = defWarn
	}
	if ea <= 0 {
		ea = defAlert
	}
	if ew >= ea {
		return fmt.Errorf("%w: client %s would warn after %v but alert after %v; the warning must come first", ErrBadThresholds, name, ew, ea)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update client %s: %w", name, err)
	}
	return nil
}

// ErrBadThresholds refuses thresholds that alert before they warn.
var ErrBadThresholds = errors.New("bad backup-age thresholds")

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
func (s *State) AddNotifier(ctx context.Context, n Notifier) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO notifiers (name, kind, config, repeat, created) VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING`,
		n.Name, n.Kind, n.Config, int64(n.Repeat), nanos(n.Created))
	if err != nil {
		return fmt.Errorf("add notifier %s: %w", n.Name, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("add notifier %s: %w", n.Name, ErrNotifierExists)
	}
	return nil
}

// Notifiers returns every notifier, sorted by name.
func (s *State) Notifiers(ctx context.Context) ([]Notifier, error) {
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
		n.Repeat, n.Created = time.Duration(rep), fromNanos(created)
		out = append(out, n)
	}
	return out, rows.Err()
}

// Notifier returns the named notifier, or ErrNoNotifier.
func (s *State) Notifier(ctx context.Context, name string) (Notifier, error) {
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
func (s *State) RemoveNotifier(ctx context.Context, name string) error {
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
func (s *State) SetNotifierHealth(ctx context.Context, name, health string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE notifiers SET health = ? WHERE name = ?`, health, name); err != nil {
		return fmt.Errorf("record the health of notifier %s: %w", name, err)
	}
	return nil
}

// metaAlerts is the meta key of the running server's alert state.
const metaAlerts = "alerts"

// Alerts returns the alert state the running server last saved ("" if
// none).
func (s *State) Alerts(ctx context.Context) (string, error) { return s.meta(ctx, metaAlerts) }

// SetAlerts saves the alert state (JSON).
func (s *State) SetAlerts(ctx context.Context, v string) error {
	return s.setMeta(ctx, metaAlerts, v)
}
