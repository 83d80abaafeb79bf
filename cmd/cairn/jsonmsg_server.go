package main

import (
	"context"
	"time"

	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// The --json messages of `cairn server …`, as jsonmsg.go declares the
// client's: each field is documented in docs/commands.md ("JSON
// messages") and TestJSONMessages decodes each command's output.

// serverInitJSON is `server init`'s message.
type serverInitJSON struct {
	MessageType string `json:"message_type"` // "server_initialized"
	Data        string `json:"data"`
	Fingerprint string `json:"fingerprint"`
}

// fingerprintJSON is `server fingerprint`'s message.
type fingerprintJSON struct {
	MessageType string `json:"message_type"` // "fingerprint"
	Fingerprint string `json:"fingerprint"`
}

// clientAddedJSON is `server client add`'s message; the password only
// when cairn generated it.
type clientAddedJSON struct {
	MessageType string `json:"message_type"` // "client_added"
	Name        string `json:"name"`
	Quota       uint64 `json:"quota"`
	AppendOnly  bool   `json:"append_only"`
	Replica     bool   `json:"replica"`
	Password    string `json:"password,omitempty"`
}

// clientUpdatedJSON is `server client set`'s message: the settings after
// the change, durations as Go writes them.
type clientUpdatedJSON struct {
	MessageType string `json:"message_type"` // "client_updated"
	Name        string `json:"name"`
	Quota       int64  `json:"quota"`
	AppendOnly  bool   `json:"append_only"`
	MinInterval string `json:"min_interval"`
	WarnAfter   string `json:"warn_after"`
	AlertAfter  string `json:"alert_after"`
	DrillAfter  string `json:"drill_after"`
}

// clientJSON is one client of `server client list` and `server client
// show` (which adds its maintenance).
type clientJSON struct {
	MessageType  string           `json:"message_type"` // "client"
	Name         string           `json:"name"`
	AppendOnly   bool             `json:"append_only"`
	Disabled     bool             `json:"disabled"`
	Replica      bool             `json:"replica"`
	Quota        int64            `json:"quota"`
	MinInterval  string           `json:"min_interval"`
	StoredBytes  int64            `json:"stored_bytes"`
	Snapshots    int64            `json:"snapshots"`
	Requests     int64            `json:"requests"`
	Errors       int64            `json:"errors"`
	Created      string           `json:"created"`
	LastSnapshot string           `json:"last_snapshot,omitempty"`
	Maintenance  *maintenanceJSON `json:"maintenance,omitempty"`
	// RunNow is when a run of its agent was asked for and is still
	// pending (`server client run-now`; client show only).
	RunNow string `json:"run_now_requested,omitempty"`
}

func newClientJSON(c state.Client, stored int64) clientJSON {
	m := clientJSON{
		MessageType: "client", Name: c.Name, AppendOnly: c.AppendOnly, Disabled: c.Disabled, Replica: c.Replica, Quota: c.Quota,
		MinInterval: c.MinInterval.String(), StoredBytes: stored, Snapshots: int64(c.Snapshots),
		Requests: int64(c.Requests), Errors: int64(c.Errors), Created: c.Created.Format(time.RFC3339),
	}
	if !c.LastSnapshot.IsZero() {
		m.LastSnapshot = c.LastSnapshot.Format(time.RFC3339Nano)
	}
	return m
}

// maintenanceJSON is a client's policy and its last maintenance jobs:
// `server client policy --show`, and within `server client show`.
type maintenanceJSON struct {
	MessageType    string               `json:"message_type,omitempty"` // "maintenance" on its own
	Policy         string               `json:"policy,omitempty"`
	BudgetExceeded *bool                `json:"budget_exceeded,omitempty"`
	BudgetNote     string               `json:"budget_note,omitempty"`
	BudgetSince    string               `json:"budget_since,omitempty"`
	Jobs           []maintenanceJobJSON `json:"jobs"`
	Totals         maintenanceTotalJSON `json:"totals"`
}

type maintenanceJobJSON struct {
	Repo             string `json:"repo"`
	Start            string `json:"start"`
	End              string `json:"end"`
	SnapshotsRemoved int64  `json:"snapshots_removed"`
	PacksDeleted     int64  `json:"packs_deleted"`
	BytesFreed       int64  `json:"bytes_freed"`
	Error            string `json:"error"`
}

type maintenanceTotalJSON struct {
	Jobs             int64 `json:"jobs"`
	SnapshotsRemoved int64 `json:"snapshots_removed"`
	PacksDeleted     int64 `json:"packs_deleted"`
	BytesFreed       int64 `json:"bytes_freed"`
}

// policySetJSON is `server client policy`'s message when it sets one.
type policySetJSON struct {
	MessageType string `json:"message_type"` // "policy_set"
	Client      string `json:"client"`
	Policy      string `json:"policy"`
}

// notifierAddedJSON is `server notify add`'s message; the secret only
// when cairn generated it.
type notifierAddedJSON struct {
	MessageType string `json:"message_type"` // "notifier_added"
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Target      string `json:"target"`
	Repeat      string `json:"repeat"`
	Secret      string `json:"secret,omitempty"`
}

// notifierTestedJSON is `server notify test`'s message.
type notifierTestedJSON struct {
	MessageType string `json:"message_type"` // "notifier_tested"
	Name        string `json:"name"`
	Delivered   bool   `json:"delivered"`
}

// adminJSON is `server admin add`'s and `admin remove`'s message.
type adminJSON struct {
	MessageType string `json:"message_type"` // "admin_added", "admin_removed"
	Name        string `json:"name"`
}

// adminListJSON is `server admin list`'s message.
type adminListJSON struct {
	MessageType string          `json:"message_type"` // "admin_list"
	Admins      []adminItemJSON `json:"admins"`
}

type adminItemJSON struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

func newMaintenanceJSON(ctx context.Context, d *datadir.Data, name string) (*maintenanceJSON, error) {
	m := &maintenanceJSON{Jobs: []maintenanceJobJSON{}}
	p, ok, err := d.State.PolicyOf(ctx, name)
	if err != nil {
		return nil, err
	}
	if ok {
		m.Policy = p.String()
		b, err := d.State.BudgetOf(ctx, name)
		if err != nil {
			return nil, err
		}
		m.BudgetExceeded = ptr(b.Exceeded)
		if b.Exceeded {
			m.BudgetNote, m.BudgetSince = b.Note, b.Since.Format(time.RFC3339)
		}
	}
	jobs, err := d.State.Jobs(ctx, name, 10)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		m.Jobs = append(m.Jobs, maintenanceJobJSON{Repo: j.Repo, Start: j.Start.Format(time.RFC3339Nano), End: j.End.Format(time.RFC3339Nano),
			SnapshotsRemoved: int64(j.SnapshotsRemoved), PacksDeleted: int64(j.PacksDeleted), BytesFreed: int64(j.BytesFreed), Error: j.Error})
	}
	n, removed, packs, freed, err := d.State.JobTotals(ctx, name)
	if err != nil {
		return nil, err
	}
	m.Totals = maintenanceTotalJSON{Jobs: int64(n), SnapshotsRemoved: int64(removed), PacksDeleted: int64(packs), BytesFreed: int64(freed)}
	return m, nil
}
