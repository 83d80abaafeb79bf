package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/server/agentreport"
	"github.com/cairnbackup/cairn/internal/server/coord"
	"github.com/cairnbackup/cairn/internal/server/counters"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/maintain"
	"github.com/cairnbackup/cairn/internal/server/metrics"
	"github.com/cairnbackup/cairn/internal/server/owner"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/sessions"
	"github.com/cairnbackup/cairn/internal/server/storage"
	"github.com/cairnbackup/cairn/internal/server/tenant"
	"github.com/cairnbackup/cairn/internal/server/verify"
	"github.com/cairnbackup/cairn/internal/server/writerlist"
)

// Options tune a Server; zero values take defaults.
type Options struct {
	Logger *slog.Logger
	// MaxUpload is the largest file a client may upload (413 beyond);
	// default 1 GiB.
	MaxUpload int64
	// Now is the server's clock (snapshot times, intervals); default time.Now.
	Now func() time.Time
	// FlushEvery is how often request counters go to the state database;
	// default 10 s.
	FlushEvery time.Duration
	// ShutdownTimeout bounds a graceful shutdown; default 30 s.
	ShutdownTimeout time.Duration
	// MaintainTick is how often Serve looks for clients due for
	// maintenance (maintain.go); default 1 s. MaintainTicks, if set,
	// replaces the ticker (tests).
	MaintainTick  time.Duration
	MaintainTicks <-chan time.Time
	// SessionTTL is how long a backup session's lease lasts after its
	// last heartbeat (package sessions); default DefaultSessionTTL.
	SessionTTL time.Duration
	// MaxSessions caps a client's open backup sessions (429 beyond);
	// default DefaultMaxSessions.
	MaxSessions int
	// MaxBackups, when above 0, caps the backup sessions of all clients
	// together; further opens queue (package sessions, pace.go).
	MaxBackups int
	// QueueHold and QueueGrace tune that queue (sessions.DefaultHold,
	// sessions.DefaultGrace when 0).
	QueueHold, QueueGrace time.Duration

	// Bounded resources (limits.go, R26); zero values take the Default…
	// constants.
	//
	// MaxHeaderBytes caps a request's header (431 beyond); HeaderTimeout
	// bounds the time to receive it, IdleTimeout how long a kept-alive
	// connection may wait for its next request.
	MaxHeaderBytes int
	HeaderTimeout  time.Duration
	IdleTimeout    time.Duration
	// A request body must arrive at BodyMinRate bytes per second on
	// average once BodyGrace has passed, and never pause longer than
	// BodyIdle (408 and the connection closed otherwise).
	BodyGrace   time.Duration
	BodyIdle    time.Duration
	BodyMinRate int64
	// MaxConns caps the connections open at once; more wait to be
	// accepted.
	MaxConns int
	// MaxUploads caps a client's uploads in progress (429 beyond).
	MaxUploads int
	// MaxRepos caps a client's repositories (403 beyond).
	MaxRepos int
	// AuthFailures is how many failed logins a source address may make
	// a minute (429 beyond, for credentials not proven before).
	AuthFailures int
	// MaintainWait bounds how long maintenance waits for a repository
	// another request holds; it then goes on with the next.
	MaintainWait time.Duration
	// MaxUploadMemory bounds the memory all uploads' validation holds at
	// once (pack headers, small files read whole); MaxMetaUpload caps the
	// size of a file validation reads whole (index fragments, snapshots,
	// configs, rosters, keys; 413 beyond).
	MaxUploadMemory int64
	MaxMetaUpload   int64

	// OnCommit, when set, is called once a snapshot file is stored (a
	// cairn commit or a restic snapshot) with the client, the repository
	// (<client>/<repository…>) and the file's name; replication
	// (internal/server/replication) copies the repository. It must not
	// wait for the copy.
	OnCommit func(client, repo, snapshot string)
	// Collectors are registered in /metrics besides the server's own.
	Collectors []prometheus.Collector
}

// Server is the multi-tenant HTTP storage server.
type Server struct {
	data      *datadir.Data
	log       *slog.Logger
	opts      Options
	repos     *storage.Repos
	auth      *tenant.Authenticator
	usage     *tenant.Usage
	metrics   *metrics.Metrics
	verify    *verify.Verifier // upload validation, chain records, receipts
	coordOnce sync.Once
	coord     *coord.Coordinator // per-repository locks and leases (package coord)

	sessions *sessions.Sessions // backup sessions (R12)

	// maintain is the maintenance scheduler (maintenance.go).
	maintain *maintain.Scheduler

	writerList   *writerlist.Handler // writer snapshot lists (R16)
	agentReports agentreport.Limiter // rate limit of agent run reports
	owner        *owner.Handler      // owner requests (package owner; ownerhost.go)

	snapMu   sync.Mutex
	snapLock map[string]*sync.Mutex // per client: serializes snapshot uploads for the interval check

	counts counters.Counters // unflushed request counters per client

	authLimit *tenant.AuthLimiter // failed logins per source
	uploads   tenant.UploadSlots  // uploads in progress per client
	spool     *repohttp.Spool     // uploads spooled, and the memory their validation holds
}

// New returns a server over an opened data directory.
func New(data *datadir.Data, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxUpload <= 0 {
		opts.MaxUpload = 1 << 30
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 10 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if opts.MaintainTick <= 0 {
		opts.MaintainTick = time.Second
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	setDefault(&opts.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&opts.HeaderTimeout, DefaultHeaderTimeout)
	setDefault(&opts.IdleTimeout, DefaultIdleTimeout)
	setDefault(&opts.BodyGrace, DefaultBodyGrace)
	setDefault(&opts.BodyIdle, DefaultBodyIdle)
	setDefault(&opts.BodyMinRate, DefaultBodyMinRate)
	setDefault(&opts.MaxConns, DefaultMaxConns)
	setDefault(&opts.MaxUploads, DefaultMaxUploads)
	setDefault(&opts.MaxRepos, DefaultMaxRepos)
	setDefault(&opts.AuthFailures, DefaultAuthFailures)
	setDefault(&opts.MaintainWait, DefaultMaintainWait)
	setDefault(&opts.MaxUploadMemory, DefaultMaxUploadMemory)
	setDefault(&opts.MaxMetaUpload, DefaultMaxMetaUpload)
	auth, err := tenant.NewAuthenticator(data.State, opts.Now)
	if err != nil {
		return nil, err
	}
	spoolDir, err := repohttp.PrepareSpool(data.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		data:     data,
		log:      opts.Logger,
		opts:     opts,
		repos:    storage.NewRepos(func(ctx context.Context) (storage.Storage, error) { return data.OpenStorage(ctx) }),
		auth:     auth,
		snapLock: make(map[string]*sync.Mutex),

		authLimit: tenant.NewAuthLimiter(opts.AuthFailures, opts.Now),
		spool: &repohttp.Spool{Dir: spoolDir, Mem: semaphore.NewWeighted(opts.MaxUploadMemory), MemMax: opts.MaxUploadMemory,
			Rate: repohttp.BodyRate{Grace: opts.BodyGrace, Idle: opts.BodyIdle, MinRate: opts.BodyMinRate}},
	}
	s.verify = &verify.Verifier{Secrets: s.secrets, State: data.State, Log: opts.Logger, Now: opts.Now, MaxInMemory: s.maxInMemory}
	s.writerList = writerlist.New(s.verify, s.repos.Get, opts.Now)
	s.sessions = &sessions.Sessions{State: data.State, Now: opts.Now, TTL: opts.SessionTTL, Max: opts.MaxSessions,
		Exists:     func(ctx context.Context, repo string) error { _, err := s.repos.Get(ctx, repo); return err },
		MaxBackups: opts.MaxBackups, Hold: opts.QueueHold, Grace: opts.QueueGrace, Log: opts.Logger}
	s.owner = owner.New(ownerHost{s}, opts.Now)
	s.maintain = &maintain.Scheduler{State: data.State, Host: maintainHost{s}, Log: opts.Logger, Now: opts.Now, Wait: opts.MaintainWait}
	s.usage = tenant.NewUsage(func(ctx context.Context, client string) (int64, error) {
		st, err := s.repos.Storage(ctx)
		if err != nil {
			return 0, err
		}
		return st.Used(ctx, client)
	})
	s.metrics = metrics.New(data.State, s.usage.Get, opts.Now, opts.Logger)
	s.metrics.Register(opts.Collectors...)
	if c := s.sessions.Collector(); c != nil {
		s.metrics.Register(c)
	}
	return s, nil
}

// Handler is the REST storage API (and /healthz).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// MetricsHandler serves /metrics (Prometheus) and /healthz; it takes no
// credentials, so it belongs on a private interface.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.data.State.Clients(r.Context()); err != nil {
		http.Error(w, "state database: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("ok\n"))
}

// Serve answers requests on ln (and metrics on metricsLn, if not nil)
// until ctx ends, then shuts down gracefully: it stops accepting, lets
// running requests finish (up to ShutdownTimeout) and flushes counters.
// With tlsConf, ln speaks HTTPS.
func (s *Server) Serve(ctx context.Context, ln, metricsLn net.Listener, tlsConf *tls.Config) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.HeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln = repohttp.NewLimitListener(ln, s.opts.MaxConns)
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if metricsLn != nil {
		msrv := &http.Server{Handler: s.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes: s.opts.MaxHeaderBytes, IdleTimeout: s.opts.IdleTimeout}
		servers = append(servers, msrv)
		go func() { errc <- msrv.Serve(metricsLn) }()
	}
	s.log.Info("server started", "listen", ln.Addr().String(), "tls", tlsConf != nil)

	s.sessions.Start(ctx)
	stopMaintenance := s.startMaintenance(ctx)
	ticker := time.NewTicker(s.opts.FlushEvery)
	defer ticker.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case <-ticker.C:
			s.flush()
		}
	}
	stopMaintenance()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	for _, hs := range servers {
		if serr := hs.Shutdown(sctx); serr != nil && err == nil {
			err = serr
		}
	}
	s.flush()
	s.log.Info("server stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// setDefault sets *v to def if it is not positive.
func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// flush writes pending counters and bytes stored to the state database.
func (s *Server) flush() {
	s.counts.Flush(context.Background(), s.data.State, s.usage.Get, s.log)
}

// clientSnapLock returns the per-client snapshot upload lock.
func (s *Server) clientSnapLock(name string) *sync.Mutex {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	m := s.snapLock[name]
	if m == nil {
		m = &sync.Mutex{}
		s.snapLock[name] = m
	}
	return m
}

// bodyRate is the pace request bodies must keep.
func (s *Server) bodyRate() repohttp.BodyRate { return s.spool.Rate }

// maxInMemory is the largest upload of type t validation reads whole into
// memory, 0 for types it never does (packs: only their header is read).
func (s *Server) maxInMemory(t backend.FileType) int64 {
	switch t {
	case backend.Data, backend.Locks:
		return 0
	}
	return s.opts.MaxMetaUpload
}

// secrets is the server's identity as validation needs it.
func (s *Server) secrets() (verify.Secrets, error) {
	id := s.data.Identity
	mine, err := id.MetaRecipient()
	if err != nil {
		return verify.Secrets{}, err
	}
	return verify.Secrets{MetaIdentity: id.MetaIdentity, MetaRecipient: mine, SignSeed: id.SignSeed}, nil
}
