package main

import (
	"fmt"
	"io"
	"time"

	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repair"
	"github.com/cairnbackup/cairn/internal/walker"
)

// The --json messages: every object cairn prints with --json is one of
// these types, with a message_type and the field names documented in
// docs/commands.md ("JSON messages"). They are a contract with scripts:
// no internal struct is encoded directly, so renaming a field inside
// cairn changes no output. A list (snapshots, ls, find, key list) is one
// JSON array of typed objects, as restic prints it; everything else is
// one object a line. TestJSONMessages checks every command's output and
// every type against the documentation.

// errorJSON is a failed command's error on standard error under --json.
type errorJSON struct {
	MessageType string `json:"message_type"` // "error"
	Message     string `json:"message"`
	ExitCode    int    `json:"exit_code"`
}

// writeJSONError prints a failed command's error as an error message.
func writeJSONError(w io.Writer, msg string, code int) {
	writeJSON(w, errorJSON{MessageType: "error", Message: msg, ExitCode: code})
}

// warningJSON is a warning under --json, on standard error: a gap in a
// result that still stands (a file not read or not restored, a snapshot
// not copied).
type warningJSON struct {
	MessageType string `json:"message_type"` // "warning"
	Message     string `json:"message"`
}

// warnf prints a warning on standard error: a "cairn: warning: …" line,
// or with --json a warning message. Text a snapshot or a remote party
// controls goes through displayText in the arguments, as for any line.
func (g *GlobalOptions) warnf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if g.JSON {
		writeJSON(g.stderr, warningJSON{MessageType: "warning", Message: msg})
		return
	}
	fmt.Fprintf(g.stderr, "cairn: warning: %s\n", msg)
}

// jsonFlagGiven reports --json among args before any "--": a command
// line that failed to parse still gets its error as JSON.
func jsonFlagGiven(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "--json=true":
			return true
		}
	}
	return false
}

// progressStatusJSON is a status message of restore, check --read-data,
// prune (and forget --prune) and copy: restic's status, with the unit of
// the items named.
type progressStatusJSON struct {
	MessageType      string  `json:"message_type"` // "status"
	Action           string  `json:"action"`       // restore, check, prune, copy
	Unit             string  `json:"unit"`         // files or packs
	SecondsElapsed   int64   `json:"seconds_elapsed"`
	SecondsRemaining int64   `json:"seconds_remaining,omitempty"`
	PercentDone      float64 `json:"percent_done"`
	ItemsDone        uint64  `json:"items_done"`
	TotalItems       uint64  `json:"total_items"`
	BytesDone        uint64  `json:"bytes_done"`
	TotalBytes       uint64  `json:"total_bytes"`
}

// backupStatusJSON is backup's status message.
type backupStatusJSON struct {
	MessageType    string   `json:"message_type"` // "status"
	SecondsElapsed int64    `json:"seconds_elapsed"`
	FilesDone      uint64   `json:"files_done"`
	DirsDone       uint64   `json:"dirs_done"`
	BytesDone      uint64   `json:"bytes_done"`
	TotalBytes     uint64   `json:"total_bytes"`
	ErrorCount     uint64   `json:"error_count"`
	CurrentFiles   []string `json:"current_files"`
}

// backupVerboseJSON is backup -v's line for a file or directory.
type backupVerboseJSON struct {
	MessageType string `json:"message_type"` // "verbose_status"
	Action      string `json:"action"`       // new, modified, unchanged
	Item        string `json:"item"`
	DataSize    uint64 `json:"data_size"`
}

// backupSummaryJSON is backup's last message.
type backupSummaryJSON struct {
	MessageType         string  `json:"message_type"` // "summary"
	FilesNew            uint64  `json:"files_new"`
	FilesChanged        uint64  `json:"files_changed"`
	FilesUnmodified     uint64  `json:"files_unmodified"`
	DirsNew             uint64  `json:"dirs_new"`
	DirsChanged         uint64  `json:"dirs_changed"`
	DirsUnmodified      uint64  `json:"dirs_unmodified"`
	BlobsNew            uint64  `json:"blobs_new"`
	BytesAdded          uint64  `json:"bytes_added"`
	BytesRead           uint64  `json:"bytes_read"`
	TotalBytesProcessed uint64  `json:"total_bytes_processed"`
	Errors              uint64  `json:"errors"`
	TotalDuration       float64 `json:"total_duration"`
	DryRun              bool    `json:"dry_run"`
	SnapshotID          string  `json:"snapshot_id,omitempty"`
	ShortID             string  `json:"short_id,omitempty"`
	Tree                string  `json:"tree,omitempty"`
}

// restoreSummaryJSON is restore's last message.
type restoreSummaryJSON struct {
	MessageType           string  `json:"message_type"` // "summary"
	SnapshotID            string  `json:"snapshot_id"`
	FilesRestored         uint64  `json:"files_restored"`
	DirsRestored          uint64  `json:"dirs_restored"`
	BytesRestored         uint64  `json:"bytes_restored"`
	FilesVerified         uint64  `json:"files_verified"`
	Unchanged             uint64  `json:"unchanged"`
	BytesUnchanged        uint64  `json:"bytes_unchanged"`
	Kept                  uint64  `json:"kept"`
	TemporaryFilesRemoved uint64  `json:"temporary_files_removed"`
	Errors                int     `json:"errors"`
	TotalDuration         float64 `json:"total_duration"`
}

// snapshotJSON is one snapshot of `snapshots` (and of a group).
type snapshotJSON struct {
	MessageType string   `json:"message_type"` // "snapshot"
	ID          string   `json:"id"`
	ShortID     string   `json:"short_id"`
	Time        string   `json:"time"`
	Host        string   `json:"host,omitempty"`
	Hostname    string   `json:"hostname,omitempty"`
	Username    string   `json:"username,omitempty"`
	Paths       []string `json:"paths"`
	PathGroup   string   `json:"path_group,omitempty"`
	Tags        []string `json:"tags"`
	Writer      string   `json:"writer"`
	Signer      string   `json:"signer"`
	// PolicyTime is what selection orders by, where it is not Time.
	PolicyTime string `json:"policy_time,omitempty"`
	Impostor   bool   `json:"impostor,omitempty"` // host label not bound to the signer
	Suspect    bool   `json:"suspect,omitempty"`  // a writer's, no receipt
	Seq        uint64 `json:"seq"`
	Tree       string `json:"tree"`
	Sealed     bool   `json:"sealed,omitempty"`
}

// snapshotGroupJSON is one group of `snapshots --group-by`.
type snapshotGroupJSON struct {
	MessageType string         `json:"message_type"` // "snapshot_group"
	GroupKey    groupKeyJSON   `json:"group_key"`
	Snapshots   []snapshotJSON `json:"snapshots"`
}

// groupKeyJSON is what a group's snapshots share: the fields --group-by
// names. A writer-only view knows a path group, not the paths.
type groupKeyJSON struct {
	Hostname  *string  `json:"hostname,omitempty"`
	Paths     []string `json:"paths,omitempty"`
	PathGroup string   `json:"path_group,omitempty"`
	Tags      []string `json:"tags,omitempty"`
}

// lsNodeJSON is one file or directory of `ls`.
type lsNodeJSON struct {
	MessageType string    `json:"message_type"` // "node"
	Path        string    `json:"path"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Mode        string    `json:"mode"`
	UID         uint32    `json:"uid"`
	GID         uint32    `json:"gid"`
	User        string    `json:"user,omitempty"`
	Group       string    `json:"group,omitempty"`
	Size        uint64    `json:"size"`
	MTime       time.Time `json:"mtime"`
	LinkTarget  string    `json:"link_target,omitempty"`
	HardLinkTo  string    `json:"hardlink_to,omitempty"`
	Lost        string    `json:"lost,omitempty"`
}

func lsMessages(nodes []nodeJSON) []lsNodeJSON {
	return listOf(nodes, func(n nodeJSON) lsNodeJSON {
		return lsNodeJSON{MessageType: "node", Path: n.Path, Name: n.Name, Type: n.Type, Mode: n.Mode, UID: n.UID, GID: n.GID,
			User: n.User, Group: n.Group, Size: n.Size, MTime: n.MTime, LinkTarget: n.LinkTarget, HardLinkTo: n.HardLinkTo, Lost: n.Lost}
	})
}

// findMatchJSON is one match of `find`.
type findMatchJSON struct {
	MessageType string `json:"message_type"` // "match"
	Snapshot    string `json:"snapshot"`
	Path        string `json:"path"`
	Type        string `json:"type"`
	Size        uint64 `json:"size"`
	MTime       string `json:"mtime"`
}

func findMessages(matches []findMatch) []findMatchJSON {
	return listOf(matches, func(m findMatch) findMatchJSON {
		return findMatchJSON{MessageType: "match", Snapshot: m.Snapshot, Path: m.Path, Type: m.Type, Size: m.Size, MTime: m.MTime}
	})
}

// statsJSON is `stats`' message.
type statsJSON struct {
	MessageType  string  `json:"message_type"` // "stats"
	Snapshots    int     `json:"snapshots"`
	Files        uint64  `json:"files,omitempty"`
	Dirs         uint64  `json:"dirs,omitempty"`
	LogicalSize  uint64  `json:"logical_size,omitempty"`
	Blobs        int     `json:"blobs"`
	StoredSize   uint64  `json:"stored_size"`
	Packs        int     `json:"packs"`
	PackBytes    uint64  `json:"pack_bytes"`
	DedupRatio   float64 `json:"dedup_ratio,omitempty"`
	ContentKnown bool    `json:"content_known"`
}

func statsMessage(r statsResult) statsJSON {
	return statsJSON{MessageType: "stats", Snapshots: r.Snapshots, Files: r.Files, Dirs: r.Dirs, LogicalSize: r.LogicalSize,
		Blobs: r.Blobs, StoredSize: r.StoredSize, Packs: r.Packs, PackBytes: r.PackBytes, DedupRatio: r.DedupRatio, ContentKnown: r.ContentKnown}
}

// diffJSON is `diff`'s message.
type diffJSON struct {
	MessageType  string           `json:"message_type"` // "diff"
	From         string           `json:"from"`
	To           string           `json:"to"`
	Changes      []diffChangeJSON `json:"changes"`
	Added        int              `json:"added"`
	Removed      int              `json:"removed"`
	Modified     int              `json:"modified"`
	BytesAdded   uint64           `json:"bytes_added"`
	BytesRemoved uint64           `json:"bytes_removed"`
}

type diffChangeJSON struct {
	Change string `json:"change"` // "+", "-", "M"
	Path   string `json:"path"`
	What   string `json:"what,omitempty"` // for M: content, metadata
}

func diffMessage(from, to string, changes []diffChange, sum walker.DiffSummary) diffJSON {
	return diffJSON{MessageType: "diff", From: from, To: to, Changes: listOf(changes, func(c diffChange) diffChangeJSON { return diffChangeJSON(c) }),
		Added: sum.Added, Removed: sum.Removed, Modified: sum.Modified, BytesAdded: sum.BytesAdded, BytesRemoved: sum.BytesRemoved}
}

// forgetJSON is `forget`'s message (before prune's, with --prune).
type forgetJSON struct {
	MessageType string               `json:"message_type"` // "forget"
	DryRun      bool                 `json:"dry_run"`
	Snapshots   []forgetSnapshotJSON `json:"snapshots"`
	Kept        int                  `json:"kept"`
	Removed     int                  `json:"removed"`
}

type forgetSnapshotJSON struct {
	ID      string   `json:"id"`
	ShortID string   `json:"short_id"`
	Time    string   `json:"time"`
	Host    string   `json:"host,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	Group   string   `json:"group"`
	Action  string   `json:"action"` // keep or remove
	Reasons []string `json:"reasons"`
}

func forgetMessage(items []forgetItem, removed int, dryRun bool) forgetJSON {
	return forgetJSON{MessageType: "forget", DryRun: dryRun, Kept: len(items) - removed, Removed: removed,
		Snapshots: listOf(items, func(it forgetItem) forgetSnapshotJSON { return forgetSnapshotJSON(it) })}
}

// tagJSON is `tag`'s message.
type tagJSON struct {
	MessageType        string          `json:"message_type"` // "tag"
	Changed            []tagChangeJSON `json:"changed"`
	ChangedSnapshots   int             `json:"changed_snapshots"`
	UnchangedSnapshots int             `json:"unchanged_snapshots"`
	Refused            int             `json:"refused"`
}

// copySummaryJSON is copy's last message.
type copySummaryJSON struct {
	MessageType string     `json:"message_type"` // "summary"
	Snapshots   []copyJSON `json:"snapshots"`
	Refused     int        `json:"refused"`
}

// keyJSON is one entry of `key list`: a key file, a writer or a
// coordinator (server) of the roster.
type keyJSON struct {
	MessageType string   `json:"message_type"` // "key"
	Kind        string   `json:"kind"`         // key_file, writer, coordinator
	ID          string   `json:"id"`
	ShortID     string   `json:"short_id"`
	Role        string   `json:"role"`
	Label       string   `json:"label"`
	Current     bool     `json:"current"`
	Created     string   `json:"created,omitempty"` // key files
	Invalid     string   `json:"invalid,omitempty"`
	Added       string   `json:"added,omitempty"` // roster entries
	Hosts       []string `json:"hosts,omitempty"`
	Revoked     bool     `json:"revoked,omitempty"`
	RevokedAt   string   `json:"revoked_at,omitempty"`
	LastSeq     uint64   `json:"last_seq,omitempty"`
}

func (e keyEntry) message() keyJSON {
	m := keyJSON{MessageType: "key", Kind: e.kind, ID: e.id, ShortID: e.id[:8], Role: e.role, Label: e.label, Current: e.current, Invalid: e.invalid}
	if e.kind == "key_file" {
		if !e.added.IsZero() {
			m.Created = e.added.Format(time.RFC3339)
		}
		return m
	}
	if !e.added.IsZero() {
		m.Added = e.added.Format(time.RFC3339)
	}
	if e.kind == "writer" {
		m.Hosts = append([]string{}, e.hosts...)
	}
	if e.revoked != nil {
		m.Revoked, m.RevokedAt, m.LastSeq = true, e.revoked.At.Format(time.RFC3339), e.revoked.LastSeq
	}
	return m
}

// keyAddedJSON, keyExportedJSON and keyRevokedJSON are the messages of
// `key add` and `key revoke`.
type keyAddedJSON struct {
	MessageType string `json:"message_type"` // "key_added"
	ID          string `json:"id"`
	Role        string `json:"role"`
}

type keyExportedJSON struct {
	MessageType string   `json:"message_type"` // "key_exported"
	File        string   `json:"file"`
	Role        string   `json:"role"`
	Hosts       []string `json:"hosts,omitempty"` // a writer's host labels
}

type keyRevokedJSON struct {
	MessageType string `json:"message_type"` // "key_revoked"
	ID          string `json:"id"`
	ShortID     string `json:"short_id"`
	Label       string `json:"label"`
	LastSeq     uint64 `json:"last_seq"`
}

// checkSummaryJSON is check's last message.
type checkSummaryJSON struct {
	MessageType string             `json:"message_type"` // "summary"
	OK          bool               `json:"ok"`
	Checks      []string           `json:"checks"`
	Problems    []checkProblemJSON `json:"problems"`
	Notes       []string           `json:"notes"`
	Snapshots   int                `json:"snapshots"`
	Packs       int                `json:"packs"`
	Blobs       int                `json:"blobs"`
	Trees       int                `json:"trees"`
	BytesRead   uint64             `json:"bytes_read"`
	BadPacks    []string           `json:"bad_packs"`
	Audit       *checkAuditJSON    `json:"audit,omitempty"`
}

type checkProblemJSON struct {
	File      string   `json:"file,omitempty"`
	Blob      string   `json:"blob,omitempty"`
	Snapshots []string `json:"snapshots,omitempty"`
	Message   string   `json:"message"`
}

type checkAuditJSON struct {
	Subset          string   `json:"subset,omitempty"`
	Verified        []string `json:"verified"`
	Packs           int      `json:"packs"`
	VerifiedWithin  int      `json:"verified_within"`
	WithinDays      int      `json:"within_days"`
	NeverVerified   int      `json:"never_verified"`
	OldestAgeSecond int64    `json:"oldest_age_seconds"`
	StateFile       string   `json:"state_file,omitempty"`
}

func checkMessage(rep *checker.Report) checkSummaryJSON {
	m := checkSummaryJSON{MessageType: "summary", OK: rep.OK(), Checks: nonNil(rep.Checks),
		Notes: nonNil(rep.Notes), Snapshots: rep.Snapshots, Packs: rep.Packs, Blobs: rep.Blobs, Trees: rep.Trees,
		BytesRead: rep.BytesRead, BadPacks: nonNil(rep.BadPacks)}
	m.Problems = listOf(rep.Problems, func(p checker.Problem) checkProblemJSON {
		return checkProblemJSON{File: p.File, Blob: p.Blob, Snapshots: p.Snapshots, Message: p.Message}
	})
	if a := rep.Audit; a != nil {
		m.Audit = &checkAuditJSON{Subset: a.Subset, Verified: nonNil(a.Verified), Packs: a.Packs, VerifiedWithin: a.Within,
			WithinDays: a.WithinDays, NeverVerified: a.Never, OldestAgeSecond: int64(a.OldestAge / time.Second), StateFile: a.StateFile}
	}
	return m
}

// pruneSummaryJSON is prune's last message (also of forget --prune).
type pruneSummaryJSON struct {
	MessageType    string   `json:"message_type"` // "summary"
	DryRun         bool     `json:"dry_run"`
	Snapshots      int      `json:"snapshots"`
	LiveBlobs      int      `json:"live_blobs"`
	Packs          int      `json:"packs"`
	DeadPacks      int      `json:"dead_packs"`
	RepackedPacks  int      `json:"repacked_packs"`
	UnindexedPacks int      `json:"unindexed_packs"`
	NewPacks       int      `json:"new_packs"`
	CopiedBytes    uint64   `json:"copied_bytes"`
	DeadBytes      uint64   `json:"dead_bytes"`
	UnindexedBytes uint64   `json:"unindexed_bytes"`
	Condemned      []string `json:"condemned"`
	Deleted        []string `json:"deleted"`
	Resurrected    []string `json:"resurrected"`
	IndexWritten   int      `json:"index_written"`
	IndexRemoved   int      `json:"index_removed"`
	PlansSwept     int      `json:"plans_swept"`
	PlansPending   int      `json:"plans_pending"`
	Notes          []string `json:"notes"`
}

func pruneMessage(rep *prune.Report, dryRun bool) pruneSummaryJSON {
	return pruneSummaryJSON{MessageType: "summary", DryRun: dryRun, Snapshots: rep.Snapshots, LiveBlobs: rep.LiveBlobs, Packs: rep.Packs,
		DeadPacks: rep.DeadPacks, RepackedPacks: rep.RepackedPacks, UnindexedPacks: rep.Unindexed, NewPacks: rep.NewPacks,
		CopiedBytes: rep.CopiedBytes, DeadBytes: rep.DeadBytes, UnindexedBytes: rep.UnindexedBytes, Condemned: nonNil(rep.Condemned),
		Deleted: nonNil(rep.Deleted), Resurrected: nonNil(rep.Resurrected), IndexWritten: rep.IndexWritten, IndexRemoved: rep.IndexRemoved,
		PlansSwept: rep.PlansSwept, PlansPending: rep.PlansPending, Notes: nonNil(rep.Notes)}
}

// listOf converts each element of s with f; none is an empty list: a
// JSON list is [], never null.
func listOf[T, U any](s []T, f func(T) U) []U {
	out := make([]U, 0, len(s))
	for _, v := range s {
		out = append(out, f(v))
	}
	return out
}

// nonNil is s, or an empty list: a JSON list is [], never null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// initJSON is `init`'s message.
type initJSON struct {
	MessageType string `json:"message_type"` // "initialized"
	ID          string `json:"id"`
	Repository  string `json:"repository"`
	KeyID       string `json:"key_id"`
	KeyFile     string `json:"key_file"`
	// ServerFingerprint is the server's, on a cairn server (rest:).
	ServerFingerprint string `json:"server_fingerprint,omitempty"`
}

// versionJSON is `version`'s message.
type versionJSON struct {
	MessageType string `json:"message_type"` // "version"
	Version     string `json:"version"`
	Revision    string `json:"revision"`
	GoVersion   string `json:"go_version"`
	GoOS        string `json:"go_os"`
	GoArch      string `json:"go_arch"`
}

// mountJSON is `mount`'s message once serving ("mounted", with the
// snapshot count) and at the end ("unmounted").
type mountJSON struct {
	MessageType string `json:"message_type"` // "mounted" or "unmounted"
	Mountpoint  string `json:"mountpoint"`
	Snapshots   *int   `json:"snapshots,omitempty"`
}

// repairJSON is `repair`'s message.
type repairJSON struct {
	MessageType string           `json:"message_type"` // "repair"
	Report      repairReportJSON `json:"report"`
}

type repairReportJSON struct {
	DryRun        bool                 `json:"dry_run"`
	Packs         []repairPackJSON     `json:"packs"`
	DroppedPacks  []string             `json:"dropped_packs"`
	KeptPacks     []string             `json:"kept_packs"`
	RepackedBlobs int                  `json:"repacked_blobs"`
	NewPacks      []string             `json:"new_packs"`
	LostBlobs     int                  `json:"lost_blobs"`
	IndexWritten  int                  `json:"index_written"`
	IndexRemoved  int                  `json:"index_removed"`
	Snapshots     []repairAffectedJSON `json:"snapshots"`
	Notes         []string             `json:"notes"`
}

type repairPackJSON struct {
	Pack     string `json:"pack"`
	Missing  bool   `json:"missing,omitempty"`
	Blobs    int    `json:"blobs"`
	Salvaged int    `json:"salvaged"`
	Lost     int    `json:"lost"`
	Kept     bool   `json:"kept,omitempty"`
}

type repairAffectedJSON struct {
	Snapshot  string               `json:"snapshot"`
	Time      time.Time            `json:"time"`
	LostBlobs int                  `json:"lost_blobs"`
	Files     []repairLostFileJSON `json:"files,omitempty"`
}

type repairLostFileJSON struct {
	Path      string `json:"path"`
	Dir       bool   `json:"dir,omitempty"`
	LostBlobs int    `json:"lost_blobs,omitempty"`
	Blobs     int    `json:"blobs,omitempty"`
}

func repairMessage(rep *repair.Report) repairJSON {
	r := repairReportJSON{DryRun: rep.DryRun, Packs: []repairPackJSON{}, DroppedPacks: nonNil(rep.Dropped), KeptPacks: nonNil(rep.Kept),
		RepackedBlobs: rep.Repacked, NewPacks: nonNil(rep.NewPacks), LostBlobs: rep.LostBlobs, IndexWritten: rep.IndexWritten,
		IndexRemoved: rep.IndexRemoved, Snapshots: []repairAffectedJSON{}, Notes: nonNil(rep.Notes)}
	for _, p := range rep.Packs {
		r.Packs = append(r.Packs, repairPackJSON(p))
	}
	for _, a := range rep.Snapshots {
		aj := repairAffectedJSON{Snapshot: a.Snapshot, Time: a.Time, LostBlobs: a.LostBlobs}
		for _, f := range a.Files {
			aj.Files = append(aj.Files, repairLostFileJSON(f))
		}
		r.Snapshots = append(r.Snapshots, aj)
	}
	return repairJSON{MessageType: "repair", Report: r}
}
