package server

// An upload (POST of a file) as named steps. Each step either passes or
// answers the request (a refusal or failure) and reports that it did;
// serveSave stops at the first that answered. Everything that can refuse
// without the body does so before a byte of it is read (R26): size,
// existence, budget, quota, interval, the client's concurrent uploads.
// The body is then spooled (repohttp.Upload), and only then are the
// repository's locks taken, so a slow or stalled client never holds them.
//
// A body sent chunked, without Content-Length, is taken within the same
// limits: it is spooled up to the most the upload may be (MaxUpload, the
// cap of its type if validation reads it whole, the client's quota
// headroom), refused with 413 (or 507) past that, and its quota reserved
// once its length is known.

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/cairnbackup/cairn/internal/units"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/sessions"
	"github.com/cairnbackup/cairn/internal/server/storage"
	"github.com/cairnbackup/cairn/internal/server/verify"
)

// saving is one upload on its way through serveSave's steps.
type saving struct {
	s    *Server
	q    *request
	ctx  context.Context // the request's, then the coordinated one
	be   backend.Backend
	cr   *verify.Repo // nil: not (yet) a cairn repository
	h    backend.Handle
	size int64 // declared length; -1 for a body sent chunked
	max  int64 // the most the body may be

	session  string           // the backup session a snapshot commits (package sessions)
	stored   bool             // the file exists already
	reserved int64            // quota taken from the declared length
	saved    bool             // stored now: the reservation stays
	u        *repohttp.Upload // the spooled body
	body     []byte           // a cairn snapshot, for its chain record and receipt

	// replica: the client is a replica tenant (replica.go, package replicatenant): its files are
	// stored content-named and never opened; replace: its config exists
	// and the upload may replace it with one of its stored versions.
	replica, replace bool
}

func (s *Server) serveSave(q *request, be backend.Backend) {
	sv := &saving{s: s, q: q, ctx: q.R.Context(), be: be, h: q.Path.Handle, size: q.R.ContentLength, replica: q.client.Replica}
	if !sv.checkSize() || !sv.identify() || !sv.admit() {
		return
	}
	defer sv.releaseQuota()
	done, ok := sv.takeSlot()
	if !ok {
		return
	}
	defer done()
	start := time.Now()
	if !sv.receive() {
		return
	}
	defer sv.u.Close()
	received := time.Now()
	if !sv.reserveReceived() {
		return
	}
	if sv.replace {
		sv.replaceConfig()
		return
	}
	if sv.stored {
		sv.answerStored()
		return
	}
	release, ok := sv.lock()
	if !ok {
		return
	}
	defer release()
	locked := time.Now()
	if !sv.validate() {
		return
	}
	validated := time.Now()
	if !sv.store() {
		return
	}
	stored := time.Now()
	sv.record()
	// Where the upload's time went: the body's arrival, waiting for the
	// locks, validation, the durable write, the commit's records.
	q.Log.Info("stored", "client", q.client.Name, "repo", q.Path.RepoPath(), "file", sv.h.String(), "size", sv.size,
		"receive", received.Sub(start).Round(time.Microsecond).String(), "lock", locked.Sub(received).Round(time.Microsecond).String(),
		"validate", validated.Sub(locked).Round(time.Microsecond).String(), "store", stored.Sub(validated).Round(time.Microsecond).String(),
		"record", time.Since(stored).Round(time.Microsecond).String())
	q.W.WriteHeader(http.StatusOK)
}

// checkSize: a declared length within the server's limit; a body without
// one may be as long as the limit.
func (sv *saving) checkSize() bool {
	q, max := sv.q, sv.s.opts.MaxUpload
	sv.max = max
	if sv.size > max {
		q.Refuse(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge, "upload of %s is larger than the server's limit of %s",
			units.FormatSize(uint64(sv.size)), units.FormatSize(uint64(max)))
		return false
	}
	return true
}

// identify: whether the repository is a cairn one, the cap on files
// validation reads whole (restic repositories' files are never read, only
// hashed), and the backup session a snapshot names.
func (sv *saving) identify() bool {
	q, h := sv.q, sv.h
	if sv.replica {
		return sv.identifyReplica()
	}
	cr, err := sv.s.verify.Repo(sv.ctx, q.Path.RepoPath(), sv.be)
	if err != nil {
		q.Fail("save", err)
		return false
	}
	sv.cr = cr
	if m := sv.s.maxInMemory(h.Type); m > 0 && (cr != nil || h.Type == backend.Config) {
		sv.max = min(sv.max, m)
	}
	if sv.size > sv.max {
		m := sv.max
		q.Refuse(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge, "a %s file of %s is larger than the server takes for its type (%s)",
			h.Type, units.FormatSize(uint64(sv.size)), units.FormatSize(uint64(m)))
		return false
	}
	if h.Type == backend.Snapshots {
		var ok bool
		if sv.session, ok = sessions.Header(q.Request); !ok {
			return false
		}
	}
	return true
}

// admit: an existing file is never overwritten, except that a cairn file
// (named by its hash) may be uploaded again and succeeds without being
// stored; a new one must fit the client's budget, interval and quota,
// and reserves its declared length.
func (sv *saving) admit() bool {
	s, q, h := sv.s, sv.q, sv.h
	_, err := sv.be.Stat(sv.ctx, h)
	sv.stored = err == nil
	if sv.replica {
		return sv.admitReplica()
	}
	if sv.stored && (sv.cr == nil || h.Type == backend.Config) {
		q.Fail("save", fmt.Errorf("%v exists and is never overwritten: %w", h, backend.ErrExists))
		return false
	}
	if sv.stored {
		return true
	}
	if h.Type == backend.Config && sv.cr == nil && !sv.firstConfig() {
		return false
	}
	if h.Type != backend.Locks && s.overBudget(q) {
		return false
	}
	if h.Type == backend.Snapshots && s.tooSoon(q, sv.cr == nil) {
		return false
	}
	if sv.size < 0 {
		return sv.hasHeadroom()
	}
	return sv.reserve(sv.size)
}

// firstConfig: a config the server has no config of the repository's to
// check against (a new repository's first, a restic repository's) is
// stored only while the repository holds no data (storage.HoldsData).
// One that holds data and no config lost its config: a client's config
// stored there would set the config of a repository that holds others'
// data (docs/threat-model.md R3), so it is refused with 403 before the
// body is read, and nothing is stored; the audit heals the config from a
// replica. (A cairn repository whose config this server knows takes
// only that config again or a newer owner-signed one: validate.)
func (sv *saving) firstConfig() bool {
	q := sv.q
	found, ok, err := storage.HoldsData(sv.ctx, sv.be)
	switch {
	case err != nil:
		q.Fail("save", err)
		return false
	case ok:
		q.Refuse(http.StatusForbidden, restapi.CodeExists, "%v: the repository holds data (%v) and no config, so a config stored now would replace the one it lost, which no client may do; "+
			"`cairn server audit --replicas` heals it from a replica", sv.h, short(found))
		return false
	}
	return true
}

// short names a file by its type and the first 12 characters of its name.
func short(h backend.Handle) string {
	return string(h.Type) + "/" + h.Name[:min(12, len(h.Name))] + "…"
}

// reserve takes n bytes of the client's quota for the upload (507 if they
// do not fit).
func (sv *saving) reserve(n int64) bool {
	s, q, c := sv.s, sv.q, sv.q.client
	used, ok, err := s.usage.Reserve(c.Name, n, c.Quota)
	if err != nil {
		q.Fail("save", err)
		return false
	}
	if !ok {
		q.Refuse(http.StatusInsufficientStorage, restapi.CodeQuota, "quota exceeded: client %s stores %s of its %s quota; this upload needs %s more",
			c.Name, units.FormatSize(uint64(used)), units.FormatSize(uint64(c.Quota)), units.FormatSize(uint64(n)))
		return false
	}
	sv.reserved = n
	return true
}

// hasHeadroom: a body of unknown length is taken only while the client
// stores less than its quota; its reservation waits for its length
// (reserveReceived).
func (sv *saving) hasHeadroom() bool {
	s, q, c := sv.s, sv.q, sv.q.client
	if c.Quota <= 0 {
		return true
	}
	used, err := s.usage.Get(c.Name)
	if err != nil {
		q.Fail("save", err)
		return false
	}
	if used >= c.Quota {
		q.Refuse(http.StatusInsufficientStorage, restapi.CodeQuota, "quota exceeded: client %s stores %s of its %s quota",
			c.Name, units.FormatSize(uint64(used)), units.FormatSize(uint64(c.Quota)))
		return false
	}
	return true
}

// reserveReceived: a body sent chunked has its length now, and reserves
// it (507 past the quota).
func (sv *saving) reserveReceived() bool {
	if sv.size >= 0 {
		return true
	}
	sv.size = sv.u.Size()
	return sv.stored || sv.reserve(sv.size)
}

// releaseQuota gives back the reservation of an upload that was not
// stored.
func (sv *saving) releaseQuota() {
	if !sv.saved && sv.reserved > 0 {
		sv.s.usage.Release(sv.q.client.Name, sv.reserved)
	}
}

// takeSlot: one of the client's concurrent uploads.
func (sv *saving) takeSlot() (done func(), ok bool) {
	s, q := sv.s, sv.q
	done, ok = s.uploads.Take(q.client.Name, s.opts.MaxUploads)
	if !ok {
		q.W.Header().Set("Retry-After", "1")
		q.Refuse(http.StatusTooManyRequests, restapi.CodeTooManyUploads, "client %s has %d uploads in progress, the most the server takes at once; retry when one ends",
			q.client.Name, s.opts.MaxUploads)
	}
	return done, ok
}

// receive spools the body and checks that it hashes to its name.
func (sv *saving) receive() bool {
	u, ok := sv.s.spool.Receive(sv.q.Request, sv.size, sv.max)
	if !ok {
		return false
	}
	sv.u = u
	if sv.h.Type != backend.Config && u.Name() != sv.h.Name {
		sv.q.Refuse(http.StatusBadRequest, restapi.CodeHashMismatch, "upload to %v does not hash to its name", sv.h)
		return false
	}
	return true
}

// answerStored: a cairn file is named by its hash, so the same name is
// the same bytes and a retried upload (a retried commit, R22) succeeds
// without storing anything.
func (sv *saving) answerStored() {
	q := sv.q
	q.Log.Info("already stored", "client", q.client.Name, "repo", q.Path.RepoPath(), "file", sv.h.String())
	sv.s.sessions.EndCommitted(q.Request, q.client.Name, sv.session)
	q.W.WriteHeader(http.StatusOK)
}

// lock takes what a snapshot upload needs before it is checked: a cairn
// snapshot is a commit, so only the server that coordinates the
// repository (holds its lease) validates and records it, never while the
// repository's maintenance runs; and the client's snapshot uploads are
// serialized so two cannot both pass the interval check. Under the locks
// an identical upload may turn out to have been stored meanwhile.
func (sv *saving) lock() (release func(), ok bool) {
	s, q := sv.s, sv.q
	if sv.h.Type != backend.Snapshots || sv.replica {
		return func() {}, true
	}
	uncoordinate := func() {}
	if sv.cr != nil {
		cctx, rel, err := s.Coordinate(sv.ctx, q.Path.RepoPath())
		if err != nil {
			s.refuseCoordinate(q.Request, err)
			return nil, false
		}
		sv.ctx, uncoordinate = cctx, rel
	}
	mu := s.clientSnapLock(q.client.Name)
	mu.Lock()
	release = func() { mu.Unlock(); uncoordinate() }
	if (sv.cr != nil && s.storedMeanwhile(sv.ctx, q, sv.be, sv.u, sv.session)) || s.tooSoon(q, sv.cr == nil) {
		release()
		return nil, false
	}
	return release, true
}

// validate checks a cairn repository's upload (and any config) before it
// becomes visible (R15), and a replica tenant's config (validateReplica);
// a snapshot's body is kept for record.
func (sv *saving) validate() bool {
	s, q, h := sv.s, sv.q, sv.h
	if sv.replica {
		return sv.validateReplica()
	}
	if sv.cr == nil && h.Type != backend.Config {
		return true
	}
	if err := s.verify.Validate(sv.ctx, sv.cr, sv.be, h, sv.u); err != nil {
		q.Answer("validate", err)
		return false
	}
	if h.Type == backend.Snapshots {
		body, err := sv.u.Bytes(s.maxInMemory(h.Type))
		if err != nil {
			q.Fail("save", err)
			return false
		}
		sv.body = body
	}
	return true
}

// store writes the file durably (the backend's save).
func (sv *saving) store() bool {
	if err := sv.be.Save(sv.ctx, sv.h, sv.u.Reader()); err != nil {
		sv.q.Fail("save", err)
		return false
	}
	sv.saved = true
	sv.s.metrics.Written(sv.q.client.Name, sv.size)
	return true
}

// record notes a stored snapshot: a cairn commit's chain record, receipt
// and repository for maintenance; the client's snapshot time; the backup
// session it ends. Failures are logged: the file is stored.
func (sv *saving) record() {
	s, q, ctx, c := sv.s, sv.q, sv.ctx, sv.q.client
	if sv.h.Type != backend.Snapshots {
		return
	}
	if sv.replica {
		// A copy another server made: nothing here reads it, sequences
		// it or replicates it on; the client's last snapshot time is
		// what says the replica is fresh.
		if err := s.data.State.RecordSnapshot(ctx, c.Name, s.opts.Now()); err != nil {
			q.Log.Error("record snapshot time", "client", c.Name, "err", err)
		}
		return
	}
	if sv.cr != nil {
		if err := s.verify.NoteCommit(ctx, sv.cr, sv.h.Name, sv.body); err != nil {
			q.Log.Error("record chain", "err", err) // the next commit's sync reads it from storage
		}
		s.verify.WriteReceipt(ctx, q.Log.With("client", c.Name, "repo", q.Path.RepoPath()), sv.cr, sv.be, sv.h.Name, sv.body)
		if err := s.data.State.NoteRepo(ctx, c.Name, q.Path.RepoPath()); err != nil {
			q.Log.Error("note repository for maintenance", "err", err)
		}
	}
	if err := s.data.State.RecordSnapshot(ctx, c.Name, s.opts.Now()); err != nil {
		q.Log.Error("record snapshot time", "client", c.Name, "err", err)
	}
	s.sessions.EndCommitted(q.Request, c.Name, sv.session)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(c.Name, q.Path.RepoPath(), sv.h.Name)
	}
}
