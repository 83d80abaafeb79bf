// Package audit re-hashes the files a cairn server stores, on the primary
// and on every replica (internal/server/replication), and heals a bad or
// missing file from a good copy.
//
// Which check each file gets (docs/server.md, Audit):
//
//   - Every file except the config is content-named (docs/format.md: its
//     name is the lowercase hex SHA-256 of its bytes): packs (data/),
//     index fragments, snapshots, receipts, tombstones, config versions
//     (configs/), rosters and keys, in cairn and restic repositories
//     alike. These are re-hashed: a file whose bytes do not hash to its
//     name is bad.
//   - The config has a fixed name. A cairn config must be, byte for byte,
//     one of the repository's config versions (configs/<its hash>), which
//     are themselves content-named and audited; so must the config of any
//     copy that keeps config versions, whatever its first bytes (a cairn
//     config damaged in its magic is not a restic one). A restic config
//     never changes after init, so a replica's must equal the primary's.
//     The config is checked on every copy at every audit (it is one small
//     file). Nothing writes a replica's config before the audit looks
//     (replication.OpenReplica stores none).
//   - A replica must hold every file the replication ledger says was
//     copied to it and its own retention has not dropped; a file it lacks
//     is missing. A file the primary lacks is not looked for: the primary
//     deletes by its own retention, and `cairn check` finds a pack an
//     index names and the primary lost.
//
// Plans, claims and locks are working state, not audited (nor
// replicated).
//
// A bad or missing file is healed from another copy whose file hashes to
// the name (the primary first, then the replicas by name); the good copy
// is re-hashed before anything is written, and the bad file is replaced
// only then. Damage no copy can heal stays reported, and the monitor
// raises an alert for it until an audit finds the client whole.
//
// Coverage: each copy's files have a record in the state database (first
// seen, last re-hashed); Select decides whose turn it is, so that with
// fraction 1/N of the files a period, N periods re-hash everything,
// including files added meanwhile.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/replication"
	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

// Defaults of the rolling audit.
const (
	DefaultFraction = 1.0 / 30
	DefaultPeriod   = 24 * time.Hour
)

// Audited are the file types the audit re-hashes: what a replica holds.
var Audited = []backend.FileType{backend.Configs, backend.Rosters, backend.Keys, backend.Data, backend.Index,
	backend.Snapshots, backend.Receipts, backend.Tombstones}

// Primary names the primary copy in findings.
const Primary = "primary"

// Config configures an Auditor.
type Config struct {
	State *state.State
	// Open returns the primary's backend of an existing repository
	// (<client>/<repository…>), including one that lost its config and
	// kept its files, opened as it is (storage.Storage.OpenForAudit): its
	// config is reported missing and healed from a replica's that is one
	// of its config versions.
	Open func(ctx context.Context, repo string) (backend.Backend, error)
	// Repos lists a client's repositories in the primary's storage
	// (<client>/<repository…>), whether or not they ever received a
	// snapshot: each is audited, besides those the replication ledger
	// knows. nil: the ledger's only.
	Repos func(ctx context.Context, client string) ([]string, error)
	Log   *slog.Logger
	// Now is the audit's clock (default time.Now).
	Now func() time.Time
	// SpoolDir holds a good copy while it is verified and written.
	SpoolDir string
}

// Options choose what one audit does.
type Options struct {
	// Fraction of each copy's files re-hashed (at least; see Select);
	// 1 re-hashes everything.
	Fraction float64
	// Period is the time between audits; Period / Fraction is the cycle
	// in which every file is re-hashed.
	Period time.Duration
	// Replicas audits every destination's replicas too.
	Replicas bool
	// Client limits the audit to one client ("": all).
	Client string
}

// Finding is one bad or missing file. Its JSON form is part of `cairn
// server audit --json` (docs/commands.md).
type Finding struct {
	Client  string `json:"client"`
	Repo    string `json:"repo"`
	Copy    string `json:"copy"` // "primary" or the destination's name
	Type    string `json:"type"`
	Name    string `json:"name"`
	Problem string `json:"problem"` // "corrupt", "missing", "unreadable", "not a config version", "differs from the primary"
	Healed  bool   `json:"healed"`
	From    string `json:"healed_from,omitempty"` // the copy the good file came from
	Error   string `json:"error,omitempty"`       // why it was not healed
}

// ClientResult sums up one client's audit.
type ClientResult struct {
	Client   string  `json:"client"`
	Repos    int     `json:"repos"`
	Copies   int     `json:"copies"` // repository copies audited (primaries and replicas)
	Files    int64   `json:"files"`  // stored files on the copies audited
	Covered  int64   `json:"covered"`
	Coverage float64 `json:"coverage"` // covered / files: re-hashed within the cycle
	Checked  int64   `json:"checked"`  // files re-hashed now
	Bytes    int64   `json:"bytes_read"`
	Bad      int64   `json:"bad"`
	Healed   int64   `json:"healed"`
	Unhealed int64   `json:"unhealed"`
}

// Result is what one audit did.
type Result struct {
	At       time.Time      `json:"at"`
	Took     time.Duration  `json:"-"`
	Fraction float64        `json:"fraction"`
	Replicas bool           `json:"replicas"`
	Clients  []ClientResult `json:"clients"`
	Findings []Finding      `json:"findings"`
	Errors   []string       `json:"errors"` // copies that could not be audited
}

// Unhealed counts the damage left standing.
func (r Result) Unhealed() int64 {
	var n int64
	for _, c := range r.Clients {
		n += c.Unhealed
	}
	return n
}

// Auditor runs audits.
type Auditor struct{ cfg Config }

// New returns an Auditor.
func New(cfg Config) *Auditor {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = os.TempDir()
	}
	return &Auditor{cfg: cfg}
}

// copyOf is one copy of a repository.
type copyOf struct {
	name string // Primary or the destination's
	key  string // the state database's copy key: "" for the primary
	be   backend.Backend
	// listed holds the copy's files by type.
	listed map[backend.Handle]int64
}

// Run audits every repository (of opt.Client, if set) once.
func (a *Auditor) Run(ctx context.Context, opt Options) (Result, error) {
	if opt.Fraction <= 0 || opt.Fraction > 1 {
		return Result{}, fmt.Errorf("audit fraction %v: give a share above 0 and at most 1", opt.Fraction)
	}
	if opt.Period <= 0 {
		opt.Period = DefaultPeriod
	}
	st := a.cfg.State
	now := a.cfg.Now()
	start := time.Now()
	res := Result{At: now, Fraction: opt.Fraction, Replicas: opt.Replicas, Clients: []ClientResult{}, Findings: []Finding{}, Errors: []string{}}
	repos, err := st.ReplicaRepos(ctx)
	if err != nil {
		return res, err
	}
	clients, err := st.Clients(ctx)
	if err != nil {
		return res, err
	}
	var dests []replicas.Destination
	if opt.Replicas {
		if dests, err = st.Destinations(ctx); err != nil {
			return res, err
		}
	}
	if opt.Client != "" {
		if _, err := st.Client(ctx, opt.Client); err != nil {
			return res, err
		}
	}
	cycle := time.Duration(float64(opt.Period) / opt.Fraction)
	for _, c := range clients {
		if opt.Client != "" && c.Name != opt.Client {
			continue
		}
		cr := ClientResult{Client: c.Name}
		for _, r := range a.clientRepos(ctx, c.Name, repos, &res) {
			cr.Repos++
			// A repository the ledger does not know never had a
			// snapshot replicated: it has no replica to audit.
			a.repo(ctx, r.repo, c.Name, dests, r.replicated, opt, cycle, now, &cr, &res)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
		}
		if cr.Files > 0 {
			cr.Coverage = float64(cr.Covered) / float64(cr.Files)
		} else {
			cr.Coverage = 1
		}
		note := ""
		for _, f := range res.Findings {
			if f.Client == c.Name && !f.Healed {
				note = fmt.Sprintf("%s/%s of %s on %s: %s, not healed: %s", f.Type, short(f.Name), f.Repo, f.Copy, f.Problem, f.Error)
				break
			}
		}
		if note == "" && cr.Bad > 0 {
			note = fmt.Sprintf("%d bad or missing files found and healed", cr.Bad)
		}
		if err := st.SetAuditStatus(ctx, replicas.AuditStatus{Client: c.Name, At: now, Files: cr.Files, Covered: cr.Covered,
			Checked: cr.Checked, Bytes: cr.Bytes, Bad: cr.Bad, Healed: cr.Healed, Unhealed: cr.Unhealed, Note: note}); err != nil {
			return res, err
		}
		res.Clients = append(res.Clients, cr)
	}
	res.Took = time.Since(start)
	return res, nil
}

// clientRepo is a repository to audit.
type clientRepo struct {
	repo       string
	replicated bool // in the replication ledger: its replicas are audited too
}

// clientRepos is every repository of client: those in the replication
// ledger (ledger), which got a snapshot, and those in storage (Config.Repos),
// which may never have (created, never committed to; or older than the
// ledger), sorted. A storage that cannot be listed is an error of the
// audit's, and the ledger's repositories are still audited.
func (a *Auditor) clientRepos(ctx context.Context, client string, ledger []replicas.ReplicaRepo, res *Result) []clientRepo {
	known := map[string]bool{}
	for _, r := range ledger {
		if r.Client == client {
			known[r.Repo] = true
		}
	}
	if a.cfg.Repos != nil {
		stored, err := a.cfg.Repos(ctx, client)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("repositories of %s: %v", client, err))
			a.cfg.Log.Error("audit: cannot list repositories", "client", client, "err", err)
		}
		for _, r := range stored {
			if _, ok := known[r]; !ok {
				known[r] = false
			}
		}
	}
	out := make([]clientRepo, 0, len(known))
	for r, replicated := range known {
		out = append(out, clientRepo{repo: r, replicated: replicated})
	}
	slices.SortFunc(out, func(x, y clientRepo) int { return strings.Compare(x.repo, y.repo) })
	return out
}

func short(name string) string {
	if len(name) > 12 {
		return name[:12] + "…"
	}
	return name
}

// repoAudit is one repository's audit in progress: what its steps share.
type repoAudit struct {
	a      *Auditor
	repo   string
	client string
	opt    Options
	cycle  time.Duration
	now    time.Time
	cr     *ClientResult
	res    *Result
	log    *slog.Logger
	copies []*copyOf
	// replicated: the replication ledger knows the repository (it got a
	// snapshot); one it does not may be an init that never finished.
	replicated bool
}

// repo audits one repository's copies.
func (a *Auditor) repo(ctx context.Context, repo, client string, dests []replicas.Destination, replicated bool, opt Options, cycle time.Duration, now time.Time, cr *ClientResult, res *Result) {
	ra := &repoAudit{a: a, repo: repo, client: client, opt: opt, cycle: cycle, now: now, cr: cr, res: res,
		log: a.cfg.Log.With("client", client, "repo", repo), replicated: replicated}
	if !replicated {
		dests = nil
	}
	done, ok := ra.openCopies(ctx, dests)
	defer done()
	if !ok {
		return
	}
	for _, c := range ra.copies {
		if err := c.list(ctx); err != nil {
			ra.fail(c.name, err)
			c.listed = nil
		}
	}
	for _, c := range ra.copies {
		if c.listed == nil {
			continue
		}
		if !ra.auditCopy(ctx, c) {
			return
		}
	}
}

// fail records that a copy could not be audited.
func (ra *repoAudit) fail(copy string, err error) {
	msg := fmt.Sprintf("%s on %s: %v", ra.repo, copy, err)
	ra.res.Errors = append(ra.res.Errors, msg)
	ra.log.Error("audit: cannot audit a copy", "copy", copy, "err", err)
}

// report counts, logs and records one bad file.
func (ra *repoAudit) report(f Finding) {
	f.Client, f.Repo = ra.client, ra.repo
	ra.cr.Bad++
	if f.Healed {
		ra.cr.Healed++
		ra.log.Warn("audit: healed a bad file", "copy", f.Copy, "file", f.Type+"/"+f.Name, "problem", f.Problem, "from", f.From)
	} else {
		ra.cr.Unhealed++
		ra.log.Error("audit: bad file not healed", "copy", f.Copy, "file", f.Type+"/"+f.Name, "problem", f.Problem, "err", f.Error)
	}
	ra.res.Findings = append(ra.res.Findings, f)
}

// openCopies opens the primary and every replica covering the client
// into ra.copies. It returns the function that closes the replicas, and
// false when the primary cannot be opened.
func (ra *repoAudit) openCopies(ctx context.Context, dests []replicas.Destination) (func(), bool) {
	var closers []func()
	done := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	primary, err := ra.a.cfg.Open(ctx, ra.repo)
	if err != nil {
		ra.fail(Primary, err)
		return done, false
	}
	ra.copies = []*copyOf{{name: Primary, be: primary}}
	for _, d := range dests {
		if !d.Covers(ra.client) {
			continue
		}
		be, closeReplica, err := replication.OpenReplica(ctx, d, ra.repo)
		if err != nil {
			ra.fail(d.Name, err)
			continue
		}
		closers = append(closers, closeReplica)
		ra.copies = append(ra.copies, &copyOf{name: d.Name, key: d.Name, be: be})
	}
	return done, true
}

// auditCopy audits one listed copy: checks the files due, looks for
// files missing on a replica, checks the config and records what was
// found good. It returns false when the context ended mid-way.
func (ra *repoAudit) auditCopy(ctx context.Context, c *copyOf) bool {
	ra.cr.Copies++
	var files []backend.Handle
	for h := range c.listed {
		files = append(files, h)
	}
	slices.SortFunc(files, func(x, y backend.Handle) int { return strings.Compare(string(x.Type)+x.Name, string(y.Type)+y.Name) })
	rec, err := ra.a.cfg.State.AuditFiles(ctx, c.key, ra.repo, files, ra.now)
	if err != nil {
		ra.fail(c.name, err)
		return true
	}
	todo := Select(files, rec, ra.opt.Fraction, ra.cycle, ra.opt.Period, ra.now)
	good, ok := ra.checkFiles(ctx, c, todo)
	if !ok {
		return false
	}
	good = append(good, ra.missing(ctx, c)...)
	if f, ok := ra.a.checkConfig(ctx, c, ra.copies); !ok && (ra.replicated || f.Problem != "missing") {
		// A repository without a config that never got a snapshot is
		// one whose init never finished: nothing lost.
		ra.report(f)
	}
	if err := ra.a.cfg.State.MarkAudited(ctx, c.key, ra.repo, good, ra.now); err != nil {
		ra.fail(c.name, err)
		return true
	}
	for _, h := range good {
		r := rec[h]
		r.Audited = ra.now
		rec[h] = r
	}
	ra.cr.Files += int64(len(files))
	ra.cr.Covered += int64(Covered(files, rec, ra.cycle, ra.now))
	return true
}

// checkFiles hashes the files due on a copy, healing the bad ones, and
// returns those now good. It returns false when the context ended.
func (ra *repoAudit) checkFiles(ctx context.Context, c *copyOf, todo []backend.Handle) ([]backend.Handle, bool) {
	var good []backend.Handle
	for _, h := range todo {
		if ctx.Err() != nil {
			return good, false
		}
		sum, n, err := hashOf(ctx, c.be, h)
		ra.cr.Checked++
		ra.cr.Bytes += n
		problem := ""
		switch {
		case errors.Is(err, backend.ErrNotFound):
			continue // removed since the listing (retention)
		case err != nil:
			problem = "unreadable (" + err.Error() + ")"
		case sum != h.Name:
			problem = "corrupt"
		}
		if problem == "" {
			good = append(good, h)
			continue
		}
		f := ra.a.heal(ctx, c, ra.copies, h, problem)
		if f.Healed {
			good = append(good, h)
		}
		ra.report(f)
	}
	return good, true
}

// missing heals the files missing on a replica: what the ledger says it
// was given and its retention did not drop. It returns those healed.
func (ra *repoAudit) missing(ctx context.Context, c *copyOf) []backend.Handle {
	if c.key == "" {
		return nil
	}
	var good []backend.Handle
	want, err := ra.a.cfg.State.Replicated(ctx, c.key, ra.repo)
	if err != nil {
		ra.fail(c.name, err)
	}
	for _, h := range want {
		if _, ok := c.listed[h]; ok || !slices.Contains(Audited, h.Type) {
			continue
		}
		f := ra.a.heal(ctx, c, ra.copies, h, "missing")
		if f.Healed {
			good = append(good, h)
		}
		ra.report(f)
	}
	return good
}

// list reads a copy's audited files.
func (c *copyOf) list(ctx context.Context) error {
	c.listed = map[backend.Handle]int64{}
	for _, t := range Audited {
		err := c.be.List(ctx, t, func(fi backend.FileInfo) error {
			if backend.ValidName(fi.Handle) == nil {
				c.listed[fi.Handle] = fi.Size
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s: %w", t, err)
		}
	}
	return nil
}

// hashOf reads a file whole and returns its SHA-256 (hex) and size.
func hashOf(ctx context.Context, be backend.Backend, h backend.Handle) (string, int64, error) {
	sum := sha256.New()
	var n int64
	err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		sum.Reset()
		var err error
		n, err = io.Copy(sum, rd)
		return err
	})
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(sum.Sum(nil)), n, nil
}

// heal replaces h on copy bad with a good copy from another.
func (a *Auditor) heal(ctx context.Context, bad *copyOf, copies []*copyOf, h backend.Handle, problem string) Finding {
	f := Finding{Copy: bad.name, Type: string(h.Type), Name: h.Name, Problem: problem}
	var tried []string
	for _, src := range copies {
		if src == bad || src.listed == nil {
			continue
		}
		if _, ok := src.listed[h]; !ok {
			continue
		}
		err := a.copyVerified(ctx, src.be, bad.be, h)
		if err == nil {
			// bad holds it now: its config check (a config version) and
			// the copies audited after it see it.
			bad.listed[h] = src.listed[h]
			f.Healed, f.From = true, src.name
			return f
		}
		tried = append(tried, fmt.Sprintf("%s: %v", src.name, err))
	}
	if len(tried) == 0 {
		f.Error = "no other copy holds it"
	} else {
		f.Error = "no good copy: " + strings.Join(tried, "; ")
	}
	return f
}

// copyVerified copies h from src to dst through a spool file, after
// checking that src's bytes hash to h's name; a bad file on dst is
// removed only then.
func (a *Auditor) copyVerified(ctx context.Context, src, dst backend.Backend, h backend.Handle) error {
	if err := os.MkdirAll(a.cfg.SpoolDir, 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	f, err := os.CreateTemp(a.cfg.SpoolDir, "audit-")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	sum := sha256.New()
	var n int64
	err = src.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		sum.Reset()
		var err error
		n, err = io.Copy(io.MultiWriter(f, sum), rd)
		return err
	})
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h.Name {
		return fmt.Errorf("its copy is corrupt too (hashes to %s)", short(got))
	}
	if err := dst.Remove(ctx, h); err != nil && !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("remove the bad file: %w", err)
	}
	if err := dst.Save(ctx, h, &spool{f: f, n: n, sr: io.NewSectionReader(f, 0, n)}); err != nil && !errors.Is(err, backend.ErrExists) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// spool is a RewindReader over the first n bytes of a spool file.
type spool struct {
	f  *os.File
	n  int64
	sr *io.SectionReader
}

func (s *spool) Read(b []byte) (int, error) { return s.sr.Read(b) }
func (s *spool) Length() int64              { return s.n }
func (s *spool) Rewind() error {
	s.sr = io.NewSectionReader(s.f, 0, s.n)
	return nil
}

// maxConfig bounds a config read into memory.
const maxConfig = 1 << 20

func readConfig(ctx context.Context, be backend.Backend) ([]byte, error) {
	var b []byte
	err := be.Load(ctx, backend.Handle{Type: backend.Config, Name: "config"}, 0, 0, func(rd io.Reader) error {
		var err error
		b, err = io.ReadAll(io.LimitReader(rd, maxConfig+1))
		return err
	})
	if err == nil && len(b) > maxConfig {
		err = fmt.Errorf("config is over %d bytes", maxConfig)
	}
	return b, err
}

// versioned reports whether raw, c's config, must be one of c's config
// versions: it is a cairn config, or c keeps config versions (so a cairn
// config damaged where its magic is is still one that must be a version).
func versioned(c *copyOf, raw []byte) bool {
	return repository.IsCairnConfig(raw) || keepsVersions(c)
}

// keepsVersions reports whether c lists a config version (configs/): a
// cairn repository's copy; a restic one keeps none.
func keepsVersions(c *copyOf) bool {
	for h := range c.listed {
		if h.Type == backend.Configs {
			return true
		}
	}
	return false
}

// configOK checks a copy's config: a cairn config must be one of the
// copy's config versions; a restic one must equal the primary's.
func configOK(c *copyOf, raw, primary []byte) string {
	if versioned(c, raw) {
		if _, ok := c.listed[backend.Handle{Type: backend.Configs, Name: backend.NameOf(raw)}]; !ok {
			return "not a config version"
		}
		return ""
	}
	if c.name != Primary && primary != nil && string(raw) != string(primary) {
		return "differs from the primary"
	}
	return ""
}

// checkConfig checks the config of copy c and heals it from a copy whose
// config passes; ok reports a sound config.
func (a *Auditor) checkConfig(ctx context.Context, c *copyOf, copies []*copyOf) (Finding, bool) {
	h := backend.Handle{Type: backend.Config, Name: "config"}
	f := Finding{Copy: c.name, Type: string(h.Type), Name: h.Name}
	var primary []byte
	if copies[0].listed != nil {
		primary, _ = readConfig(ctx, copies[0].be)
	}
	raw, err := readConfig(ctx, c.be)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		f.Problem = "missing"
	case err != nil:
		f.Problem = "unreadable (" + err.Error() + ")"
	default:
		f.Problem = configOK(c, raw, primary)
	}
	if f.Problem == "" {
		return f, true
	}
	rep, ok := c.be.(interface {
		ReplaceConfig(ctx context.Context, rd backend.RewindReader) error
	})
	for _, src := range copies {
		if src == c || src.listed == nil {
			continue
		}
		good, err := readConfig(ctx, src.be)
		if err != nil || configOK(src, good, primary) != "" || (!versioned(src, good) && src.name != Primary) {
			continue
		}
		if versioned(src, good) || keepsVersions(c) {
			// c must hold the version, so the healed config passes there
			// (and a copy that keeps versions gets only one of them).
			if _, ok := c.listed[backend.Handle{Type: backend.Configs, Name: backend.NameOf(good)}]; !ok {
				continue
			}
		}
		switch {
		case f.Problem == "missing":
			err = c.be.Save(ctx, h, backend.NewByteReader(good))
		case ok:
			err = rep.ReplaceConfig(ctx, backend.NewByteReader(good))
		default:
			err = errors.New("this copy cannot replace its config")
		}
		if err != nil {
			f.Error = err.Error()
			return f, false
		}
		f.Healed, f.From = true, src.name
		return f, false
	}
	f.Error = "no other copy has a sound config"
	return f, false
}
