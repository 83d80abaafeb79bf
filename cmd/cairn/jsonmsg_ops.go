package main

import (
	"encoding/json"
	"time"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/audit"
	"github.com/cairnbackup/cairn/internal/server/monitor"
	"github.com/cairnbackup/cairn/internal/server/replication"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

// The --json messages of the operations commands (destinations and
// replication, drill, cat, server status, audit and notifiers), declared
// as jsonmsg.go declares the others: docs/commands.md ("JSON messages")
// documents each field and TestJSONMessages decodes each command's
// output. The field names are the ones these commands printed before
// they had types; scripts and internal/e2e read them.

// destinationJSON is a destination of `server destination add`
// ("destination_added"), `set` ("destination_set") and `list`
// ("destination").
type destinationJSON struct {
	MessageType     string   `json:"message_type"`
	Name            string   `json:"name"`
	Location        string   `json:"location"` // without secrets
	CredentialsFile string   `json:"credentials_file"`
	Clients         []string `json:"clients"`
	All             bool     `json:"all"`
	Bandwidth       int64    `json:"bandwidth"`
	Concurrency     int      `json:"concurrency"`
	ReconcileEvery  string   `json:"reconcile_every"`
	Created         string   `json:"created"`
	Retention       *string  `json:"retention"` // null: replicas keep every snapshot
	// ServerFingerprint is a rest: destination's pinned far server; "".
	ServerFingerprint string `json:"server_fingerprint"`
}

// destinationShowJSON is `server destination show`'s message: the
// destination and its replicas.
type destinationShowJSON struct {
	MessageType       string        `json:"message_type"` // "destination"
	Name              string        `json:"name"`
	Location          string        `json:"location"`
	CredentialsFile   string        `json:"credentials_file"`
	Clients           []string      `json:"clients"`
	All               bool          `json:"all"`
	Bandwidth         int64         `json:"bandwidth"`
	Concurrency       int           `json:"concurrency"`
	ReconcileEvery    string        `json:"reconcile_every"`
	Created           string        `json:"created"`
	Retention         *string       `json:"retention"`
	ServerFingerprint string        `json:"server_fingerprint"`
	Replicas          []replicaJSON `json:"replicas"`
}

// destinationRemovedJSON is `server destination remove`'s message.
type destinationRemovedJSON struct {
	MessageType string `json:"message_type"` // "destination_removed"
	Name        string `json:"name"`
	Location    string `json:"location"`
}

func destinationMessage(d replicas.Destination, messageType string) destinationJSON {
	m := destinationJSON{MessageType: messageType, Name: d.Name, Location: location.Redact(d.Location), CredentialsFile: d.CredentialsFile,
		Clients: append([]string{}, d.Clients...), All: len(d.Clients) == 0, Bandwidth: d.Bandwidth, Concurrency: d.Concurrency,
		ReconcileEvery: d.ReconcileEvery.String(), Created: d.Created.Format(time.RFC3339), ServerFingerprint: d.ServerFingerprint}
	if d.Retention != nil {
		r := d.Retention.String()
		m.Retention = &r
	}
	return m
}

func destinationShowMessage(d replicas.Destination, rows []replication.Row) destinationShowJSON {
	m := destinationMessage(d, "destination")
	return destinationShowJSON{MessageType: m.MessageType, Name: m.Name, Location: m.Location, CredentialsFile: m.CredentialsFile,
		Clients: m.Clients, All: m.All, Bandwidth: m.Bandwidth, Concurrency: m.Concurrency, ReconcileEvery: m.ReconcileEvery,
		Created: m.Created, Retention: m.Retention, ServerFingerprint: m.ServerFingerprint, Replicas: replicaMessages(rows)}
}

// replicaJSON is one repository's replica on one destination, of
// `server replication status` (a list) and `server destination show`.
// A time never reached is null.
type replicaJSON struct {
	MessageType  string  `json:"message_type"` // "replica"
	Destination  string  `json:"destination"`
	Client       string  `json:"client"`
	Repo         string  `json:"repo"`
	Snapshot     string  `json:"snapshot"`
	SnapshotTime *string `json:"snapshot_time"`
	ReplicatedAt *string `json:"replicated_at"`
	LagSeconds   float64 `json:"lag_seconds"`
	LagBytes     int64   `json:"lag_bytes"`
	LastError    string  `json:"last_error"`
	ErrorTime    *string `json:"error_time"`
	Failures     int     `json:"failures"`
	// RetentionRun is the destination's last retention run on the
	// replica; null before the first (or without a policy).
	RetentionRun *retentionRunJSON `json:"retention_run"`
}

// retentionRunJSON is what a destination's retention last did on a
// replica.
type retentionRunJSON struct {
	At           string `json:"at"`
	Kept         int    `json:"kept"`
	Removed      int    `json:"removed"`
	PacksDeleted int    `json:"packs_deleted"`
	BytesFreed   int64  `json:"bytes_freed"`
	Error        string `json:"error"`
}

func replicaMessages(rows []replication.Row) []replicaJSON {
	ts := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := t.Format(time.RFC3339Nano)
		return &s
	}
	return listOf(rows, func(r replication.Row) replicaJSON {
		m := replicaJSON{MessageType: "replica", Destination: r.Destination, Client: r.Client, Repo: r.Repo,
			Snapshot: r.Snapshot, SnapshotTime: ts(r.SnapshotTime), ReplicatedAt: ts(r.ReplicatedAt),
			LagSeconds: r.Lag.Seconds(), LagBytes: r.LagBytes, LastError: r.LastError, ErrorTime: ts(r.ErrorAt), Failures: r.Failures}
		if run := r.Retention; !run.At.IsZero() {
			m.RetentionRun = &retentionRunJSON{At: run.At.Format(time.RFC3339Nano), Kept: run.Kept, Removed: run.Removed,
				PacksDeleted: run.Packs, BytesFreed: run.Freed, Error: run.Error}
		}
		return m
	})
}

// drillSummaryJSON is `drill`'s message.
type drillSummaryJSON struct {
	MessageType      string   `json:"message_type"` // "drill_summary"
	SnapshotID       string   `json:"snapshot_id"`
	FilesInSnapshot  int      `json:"files_in_snapshot"`
	FilesSampled     int      `json:"files_sampled"`
	FilesVerified    int      `json:"files_verified"`
	BytesRestored    uint64   `json:"bytes_restored"`
	Paths            []string `json:"paths"`
	Problems         int      `json:"problems"`
	OK               bool     `json:"ok"`
	RecordedOnServer bool     `json:"recorded_on_server"`
	Seconds          float64  `json:"seconds"`
}

// serverStatusJSON is `server status`'s message: monitor.Report with the
// field names it has always had (internal/e2e decodes it strictly).
type serverStatusJSON struct {
	MessageType string               `json:"message_type"` // "server_status"
	At          time.Time            `json:"at"`
	Clients     []clientStatusJSON   `json:"clients"`
	Notifiers   []notifierStatusJSON `json:"notifiers"`
	Alerts      []alertEventJSON     `json:"alerts"`  // every open alert, worst first
	Backups     *backupsJSON         `json:"backups"` // null: no fleet limit (server run --max-backups)
}

// backupsJSON is the server's fleet pacing in `server status`.
type backupsJSON struct {
	Limit    int        `json:"limit"`
	Running  int        `json:"running"`
	Queued   []string   `json:"queued"` // clients waiting, the next to start first
	QueuedAt time.Time  `json:"queued_at"`
	Peak     int        `json:"peak"`
	PeakAt   *time.Time `json:"peak_at,omitempty"`
	Since    time.Time  `json:"since"`
}

// clientStatusJSON is one client's health in `server status`.
type clientStatusJSON struct {
	Name              string            `json:"name"`
	Level             string            `json:"level"` // OK, WARNING, ALERT
	State             string            `json:"state"`
	Reason            string            `json:"reason"`
	LastBackup        *time.Time        `json:"last_backup,omitempty"`
	AgeSeconds        int64             `json:"age_seconds"`
	NeverBackedUp     bool              `json:"never_backed_up"`
	Enrolled          time.Time         `json:"enrolled"`
	Disabled          bool              `json:"disabled"`
	WarnAfterSeconds  int64             `json:"warn_after_seconds"`
	AlertAfterSeconds int64             `json:"alert_after_seconds"`
	Snapshots         int64             `json:"snapshots"`
	StoredBytes       int64             `json:"stored_bytes"`
	QuotaBytes        int64             `json:"quota_bytes"`
	QuotaUsed         float64           `json:"quota_used,omitempty"`
	Alerts            []alertEventJSON  `json:"alerts"`
	Audit             *auditSummaryJSON `json:"audit"` // null: never audited
	DrillLevel        string            `json:"drill_level"`
	DrillState        string            `json:"drill_state"`
	DrillReason       string            `json:"drill_reason"`
	LastDrill         *time.Time        `json:"last_drill,omitempty"`
	DrillAfterSeconds int64             `json:"drill_after_seconds"`
	Drills            []repoDrillJSON   `json:"drills"`
	LastAgentRun      *agentRunJSON     `json:"last_agent_run"` // null: no agent run reported
}

// agentRunJSON is a client's last reported agent run (docs/agent.md).
type agentRunJSON struct {
	RunID      string    `json:"run_id"`
	Attempt    int       `json:"attempt"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Result     string    `json:"result"` // ok, failed or gave-up
	BytesAdded int64     `json:"bytes_added"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

type auditSummaryJSON struct {
	At       time.Time `json:"at"`
	Coverage float64   `json:"coverage"`
	Files    int64     `json:"files"`
	Bad      int64     `json:"bad"`
	Healed   int64     `json:"healed"`
	Unhealed int64     `json:"unhealed"`
	Note     string    `json:"note,omitempty"`
}

type repoDrillJSON struct {
	Repo     string     `json:"repo"`
	Snapshot string     `json:"snapshot,omitempty"`
	At       *time.Time `json:"at,omitempty"`
	Files    int64      `json:"files"`
	Bytes    int64      `json:"bytes"`
	Result   string     `json:"result,omitempty"`
}

// alertEventJSON is an open alert: the webhook's body (docs/server.md).
type alertEventJSON struct {
	Version int       `json:"version"`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	Level   string    `json:"level"`
	Was     string    `json:"was"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	At      time.Time `json:"at"`
	Server  string    `json:"server,omitempty"`
}

// notifierStatusJSON is a notifier's configuration and health in
// `server status`.
type notifierStatusJSON struct {
	Name          string     `json:"name"`
	LastOK        *time.Time `json:"last_ok,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	ErrorAt       *time.Time `json:"error_at,omitempty"`
	Failing       bool       `json:"failing"`
	Sent          int        `json:"sent"`
	Failed        int        `json:"failed"`
	Kind          string     `json:"kind"`
	Target        string     `json:"target"`
	RepeatSeconds int64      `json:"repeat_seconds"`
}

// notifierJSON is one notifier of `server notify list` (a list): the
// fields of notifierStatusJSON with a message_type.
type notifierJSON struct {
	MessageType   string     `json:"message_type"` // "notifier"
	Name          string     `json:"name"`
	LastOK        *time.Time `json:"last_ok,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	ErrorAt       *time.Time `json:"error_at,omitempty"`
	Failing       bool       `json:"failing"`
	Sent          int        `json:"sent"`
	Failed        int        `json:"failed"`
	Kind          string     `json:"kind"`
	Target        string     `json:"target"`
	RepeatSeconds int64      `json:"repeat_seconds"`
}

// timeOrNil is t, or nil (the field left out) for the zero time.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func alertEventMessages(evs []alert.Event) []alertEventJSON {
	return listOf(evs, func(e alert.Event) alertEventJSON {
		return alertEventJSON{Version: e.Version, Kind: string(e.Kind), Subject: e.Subject, Level: e.Level.String(),
			Was: e.Was.String(), Reason: e.Reason, Since: e.Since, At: e.At, Server: e.Server}
	})
}

func notifierStatusMessage(n monitor.NotifierStatus) notifierStatusJSON {
	return notifierStatusJSON{Name: n.Name, LastOK: timeOrNil(n.LastOK), LastError: n.LastError, ErrorAt: timeOrNil(n.ErrorAt),
		Failing: n.Failing, Sent: n.Sent, Failed: n.Failed, Kind: n.Kind, Target: n.Target, RepeatSeconds: n.RepeatSeconds}
}

func notifierMessages(ns []monitor.NotifierStatus) []notifierJSON {
	return listOf(ns, func(n monitor.NotifierStatus) notifierJSON {
		s := notifierStatusMessage(n)
		return notifierJSON{MessageType: "notifier", Name: s.Name, LastOK: s.LastOK, LastError: s.LastError, ErrorAt: s.ErrorAt,
			Failing: s.Failing, Sent: s.Sent, Failed: s.Failed, Kind: s.Kind, Target: s.Target, RepeatSeconds: s.RepeatSeconds}
	})
}

func serverStatusMessage(r monitor.Report) serverStatusJSON {
	m := serverStatusJSON{MessageType: "server_status", At: r.At, Clients: []clientStatusJSON{},
		Notifiers: listOf(r.Notifiers, notifierStatusMessage), Alerts: alertEventMessages(r.Alerts)}
	for _, c := range r.Clients {
		cm := clientStatusJSON{Name: c.Name, Level: c.Level.String(), State: c.State, Reason: c.Reason, LastBackup: timeOrNil(c.LastBackup),
			AgeSeconds: c.AgeSeconds, NeverBackedUp: c.Never, Enrolled: c.Enrolled, Disabled: c.Disabled,
			WarnAfterSeconds: c.WarnSecs, AlertAfterSeconds: c.AlertSecs, Snapshots: c.Snapshots, StoredBytes: c.Stored,
			QuotaBytes: c.Quota, QuotaUsed: c.QuotaUsed, Alerts: alertEventMessages(c.Alerts),
			DrillLevel: c.DrillLevel.String(), DrillState: c.DrillState, DrillReason: c.DrillReason, LastDrill: timeOrNil(c.LastDrill),
			DrillAfterSeconds: c.DrillAfterSecs, Drills: []repoDrillJSON{}}
		if a := c.Audit; a != nil {
			cm.Audit = &auditSummaryJSON{At: a.At, Coverage: a.Coverage, Files: a.Files, Bad: a.Bad, Healed: a.Healed, Unhealed: a.Unhealed, Note: a.Note}
		}
		if a := c.AgentRun; a != nil {
			cm.LastAgentRun = &agentRunJSON{RunID: a.RunID, Attempt: a.Attempt, Start: a.Start, End: a.End, Result: a.Result,
				BytesAdded: a.BytesAdded, DurationMS: a.DurationMS, Error: a.Error}
		}
		for _, d := range c.Drills {
			cm.Drills = append(cm.Drills, repoDrillJSON{Repo: d.Repo, Snapshot: d.Snapshot, At: timeOrNil(d.At), Files: d.Files, Bytes: d.Bytes, Result: d.Result})
		}
		m.Clients = append(m.Clients, cm)
	}
	return m
}

// serverAuditJSON is `server audit`'s message.
type serverAuditJSON struct {
	MessageType string             `json:"message_type"` // "server_audit"
	At          time.Time          `json:"at"`
	Fraction    float64            `json:"fraction"`
	Replicas    bool               `json:"replicas"`
	Clients     []auditClientJSON  `json:"clients"`
	Findings    []auditFindingJSON `json:"findings"`
	Errors      []string           `json:"errors"` // copies that could not be audited
	TookSeconds float64            `json:"took_seconds"`
}

type auditClientJSON struct {
	Client    string  `json:"client"`
	Repos     int     `json:"repos"`
	Copies    int     `json:"copies"`
	Files     int64   `json:"files"`
	Covered   int64   `json:"covered"`
	Coverage  float64 `json:"coverage"`
	Checked   int64   `json:"checked"`
	BytesRead int64   `json:"bytes_read"`
	Bad       int64   `json:"bad"`
	Healed    int64   `json:"healed"`
	Unhealed  int64   `json:"unhealed"`
}

type auditFindingJSON struct {
	Client     string `json:"client"`
	Repo       string `json:"repo"`
	Copy       string `json:"copy"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Problem    string `json:"problem"`
	Healed     bool   `json:"healed"`
	HealedFrom string `json:"healed_from,omitempty"`
	Error      string `json:"error,omitempty"`
}

func serverAuditMessage(r audit.Result) serverAuditJSON {
	m := serverAuditJSON{MessageType: "server_audit", At: r.At, Fraction: r.Fraction, Replicas: r.Replicas,
		Clients: []auditClientJSON{}, Findings: []auditFindingJSON{}, Errors: append([]string{}, r.Errors...), TookSeconds: r.Took.Seconds()}
	for _, c := range r.Clients {
		m.Clients = append(m.Clients, auditClientJSON{Client: c.Client, Repos: c.Repos, Copies: c.Copies, Files: c.Files, Covered: c.Covered,
			Coverage: c.Coverage, Checked: c.Checked, BytesRead: c.Bytes, Bad: c.Bad, Healed: c.Healed, Unhealed: c.Unhealed})
	}
	for _, f := range r.Findings {
		m.Findings = append(m.Findings, auditFindingJSON{Client: f.Client, Repo: f.Repo, Copy: f.Copy, Type: f.Type, Name: f.Name,
			Problem: f.Problem, Healed: f.Healed, HealedFrom: f.From, Error: f.Error})
	}
	return m
}

// catSnapshotJSON is `cat snapshot`'s object (cat prints one indented
// object). The owner header is the repository format's own JSON
// (docs/format.md), left out where the key cannot open it.
type catSnapshotJSON struct {
	MessageType string           `json:"message_type"` // "cat_snapshot"
	ID          string           `json:"id"`
	Statement   catStatementJSON `json:"statement"`
	Signer      string           `json:"signer"`
	Meta        *catMetaJSON     `json:"meta,omitempty"`
	Owner       json.RawMessage  `json:"owner,omitempty"`
	Sealed      []string         `json:"sealed"` // headers this key cannot open: meta, owner, dedup
}

type catStatementJSON struct {
	RepoID       string    `json:"repo_id"`
	Writer       string    `json:"writer"`
	Seq          uint64    `json:"seq"`
	Prev         string    `json:"prev"`
	Tree         string    `json:"tree"`
	ManifestRoot string    `json:"manifest_root"`
	Time         time.Time `json:"time"`
	DedupGen     uint32    `json:"dedup_gen"`
	Hash         string    `json:"hash"`
}

// catTreeJSON is `cat tree`'s object.
type catTreeJSON struct {
	MessageType string        `json:"message_type"` // "cat_tree"
	ID          string        `json:"id"`
	Nodes       []catNodeJSON `json:"nodes"`
}

// catBlobJSON is `cat blob --json`'s object.
type catBlobJSON struct {
	MessageType string `json:"message_type"` // "cat_blob"
	ID          string `json:"id"`
	Type        string `json:"type"`
	Size        int    `json:"size"`
	Data        []byte `json:"data"` // base64
}

// catIndexJSON is `cat index`'s object.
type catIndexJSON struct {
	MessageType string                 `json:"message_type"` // "cat_index"
	Fragments   []catIndexFragmentJSON `json:"fragments"`
}

// catIndexFragmentJSON is one index file; one that does not verify has
// its error and no packs.
type catIndexFragmentJSON struct {
	Name   string            `json:"name"`
	Signer string            `json:"signer,omitempty"`
	Error  string            `json:"error,omitempty"`
	Packs  []catPackHeadJSON `json:"packs"`
}

// catPackHeadJSON is a pack's header inside `cat index`.
type catPackHeadJSON struct {
	ID      string             `json:"id"`
	Domain  string             `json:"domain"`
	Signer  string             `json:"signer"`
	Slots   []catPackSlotJSON  `json:"slots"`
	Entries []catPackEntryJSON `json:"entries"`
}

// catPackJSON is `cat pack`'s object: a pack header.
type catPackJSON struct {
	MessageType string             `json:"message_type"` // "cat_pack"
	ID          string             `json:"id"`
	Domain      string             `json:"domain"`
	Signer      string             `json:"signer"`
	Slots       []catPackSlotJSON  `json:"slots"`
	Entries     []catPackEntryJSON `json:"entries"`
}

type catPackSlotJSON struct {
	Kind   uint8 `json:"kind"`
	Wrap   uint8 `json:"wrap"`
	Length int   `json:"length"`
}

type catPackEntryJSON struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Offset uint32 `json:"offset"`
	Length uint32 `json:"length"`
	Slot   uint32 `json:"slot"`
}

func catPackHead(v repository.PackHeaderView) catPackHeadJSON {
	return catPackHeadJSON{ID: v.ID, Domain: v.Domain, Signer: v.Signer,
		Slots:   listOf(v.Slots, func(s repository.PackSlotView) catPackSlotJSON { return catPackSlotJSON(s) }),
		Entries: listOf(v.Entries, func(e repository.PackEntryView) catPackEntryJSON { return catPackEntryJSON(e) })}
}

func catPackMessage(v repository.PackHeaderView) catPackJSON {
	h := catPackHead(v)
	return catPackJSON{MessageType: "cat_pack", ID: h.ID, Domain: h.Domain, Signer: h.Signer, Slots: h.Slots, Entries: h.Entries}
}
