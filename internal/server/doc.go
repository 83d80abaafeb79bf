// Package server is cairn's multi-tenant backup server: one HTTP process
// that many clients, cairn and unmodified restic alike, back up to over
// restic's REST protocol (package restapi).
//
// Before any stage, a method outside GET, HEAD, POST, DELETE is refused,
// and a request body gets a read deadline that keeps a minimum rate
// (repohttp.BodyLimit). Nothing a request brings leaves state behind beyond fixed
// bounds (R26): metric labels come from fixed sets, failed logins are
// rate-limited per source address, and each client's concurrent uploads,
// sessions and repositories are capped.
//
// Every request passes the same stages, in order, and each refusal is
// answered with a clear status, an X-Cairn-Error code and a one-line
// message, and logged (slog, with client, repository and request ID):
//
//  1. auth: HTTP basic credentials against bcrypt hashes in the state
//     database (package tenant; 401 for anything unknown; 403 for a
//     disabled client);
//  2. tenant: the path must parse strictly (restapi.ParsePath, 404
//     otherwise) and lie under /<client>/ (403 otherwise), so a client never
//     learns anything of another's files;
//  3. policy: append-only clients (the default) may create files but
//     never overwrite (403, as for everyone) or delete them (403), except
//     lock files, which restic needs to delete; uploads above MaxUpload get
//     413, uploads past the client's quota 507 with the figures, snapshots
//     closer together than the client's minimum interval 429 — all before
//     a byte of the body is read; the quota is reserved from the declared
//     length then. The body is then spooled to disk while hashed
//     (repohttp.Upload), and only then are a repository's locks taken and the
//     upload validated from the spool;
//  4. storage: a local directory per repository (internal/backend/local:
//     temporary file, SHA-256 verified against the name while streaming,
//     fsync, no-replace rename, directory fsync), at
//     <data>/repos/<client>/<repository…>, or a prefix per repository in
//     an S3 bucket (package storage).
//
// An upload passes these stages as the named steps of serveSave (save.go).
//
// State (clients, bcrypt hashes, quotas, flags, snapshot times, request
// counters, policies, jobs, sessions, chain records) lives in an embedded
// SQLite database (package state, with ordered, versioned migrations),
// read on every request so that `cairn server client disable` takes
// effect at once. The server's own identity (an X25519 metadata identity
// and an Ed25519 signing key) lives next to it; its fingerprint is what
// cairn clients pin (R21). Clients fetch it with rest.FetchIdentity
// (internal/backend/rest); the server answers ?identity (package enrol).
//
// Metrics (package metrics, Prometheus) and /healthz are served on a
// separate listener without credentials: per-client bytes stored, quota and its use, the last
// snapshot's arrival time, and requests and errors by kind.
//
// A cairn backup holds a backup session (package sessions; the table is
// package state's) while it uploads: a lease on the server's clock,
// heartbeated, ended by the snapshot upload that names it. Scheduled
// maintenance (package maintain) sweeps a condemnation plan only once
// every session of the repository that was open when the plan was made
// has ended or expired (R12). Uploads are validated, chain records kept
// and receipts signed by package verify (through internal/repository's
// verifiers). Commits and maintenance hold the repository's coordination
// (package coord).
//
// The packages, each importing only those below it (internal/layers
// states the rules):
//
//	server        the wiring: Server, routing auth → tenant → policy → quota,
//	              the upload's steps (save.go), replica tenants' answers
//	writerlist    a writer's own snapshot list (R16)
//	replicatenant what a replica tenant may store and delete
//	enrol         ?identity: the server's public identity
//	counters      request counters per client, flushed to state
//	profile       Go's runtime profiles (`server run --pprof-listen`)
//	verify        upload validation (R15) through repository.ServerVerifier,
//	              chain records, receipts
//	maintain      the maintenance scheduler
//	metrics       Prometheus metrics, read from the state database
//	sessions      backup sessions (R12) over the REST API
//	tenant        credentials, login and upload limits, bytes stored per client
//	state         the SQLite state database: clients, policies, sessions,
//	              chains; it carries state/reports (monitoring's records)
//	              and state/replicas (destinations, replica status and
//	              ledger, audit coverage); state/schema has the tables and
//	              their migrations, state/policy a retention policy
//	coord         per-repository locks and storage leases
//	datadir       the data directory: state database, identity, client
//	              records and passwords, where repositories are stored
//	identity      the server's own keys, their public half and fingerprint
//	storage       where repositories are kept: a directory or an S3 prefix each
//	repohttp      one repository's REST handler: reads, lists, deletes, the
//	              response and its refusals, body and connection limits,
//	              upload spooling
package server
