package state

// Monitoring's settings of each client: its backup-age thresholds and
// drill-age limit, columns of the clients table. The notifiers, alerts,
// drills and agent runs are package reports'.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

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
		errs = append(errs, set("append_only", schema.Flag(*ch.AppendOnly)))
	}
	if ch.MinInterval != nil {
		errs = append(errs, set("min_interval", int64(*ch.MinInterval)))
	}
	if ch.Disabled != nil {
		errs = append(errs, set("disabled", schema.Flag(*ch.Disabled)))
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

// DrillAfter returns every client's drill-age limit by name (0: the
// default).
func (s *State) DrillAfter(ctx context.Context) (map[string]time.Duration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, drill_after FROM clients`)
	if err != nil {
		return nil, fmt.Errorf("read drill-age limits: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var name string
		var d int64
		if err := rows.Scan(&name, &d); err != nil {
			return nil, fmt.Errorf("read drill-age limits: %w", err)
		}
		out[name] = time.Duration(d)
	}
	return out, rows.Err()
}

// SetDrillAfter sets a client's drill-age limit (0: the default);
// ErrNoClient if there is none.
func (s *State) SetDrillAfter(ctx context.Context, name string, d time.Duration) error {
	return s.update(ctx, name, `drill_after = ?`, int64(d))
}
