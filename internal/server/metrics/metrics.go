// Package metrics holds the server's Prometheus metrics: requests and
// refusals by client and kind, bytes written, and per-client gauges read
// from the state database at scrape time (stored bytes, quota, last
// snapshot, open backup sessions, space budgets). Labels come from fixed
// sets only (R26): a client label is an authenticated client's name.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// Metrics are the server's Prometheus metrics, in a registry of its own
// (no package-level state). Per-client gauges are read from the state
// database and the usage figures at scrape time, so they agree with
// `cairn server client show`.
type Metrics struct {
	state    *state.State
	used     func(client string) (int64, error)
	now      func() time.Time
	log      *slog.Logger
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	writes   *prometheus.CounterVec

	stored, quota, lastSnap, snaps, quotaUse *prometheus.Desc
	sessions                                 *prometheus.Desc
}

// New returns the metrics of a server whose clients st holds; used is a
// client's stored bytes as the quota sees them.
func New(st *state.State, used func(client string) (int64, error), now func() time.Time, log *slog.Logger) *Metrics {
	m := &Metrics{
		state: st, used: used, now: now, log: log,
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_server_requests_total", Help: "REST requests by client, method and file type.",
		}, []string{"client", "method", "type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_server_errors_total", Help: "Refused or failed requests by client and kind (auth, forbidden, append-only, quota, exists, hash-mismatch, …).",
		}, []string{"client", "kind"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_server_written_bytes_total", Help: "Bytes stored by uploads, by client.",
		}, []string{"client"}),
		stored:   prometheus.NewDesc("cairn_server_client_stored_bytes", "Bytes a client stores.", []string{"client"}, nil),
		quota:    prometheus.NewDesc("cairn_server_client_quota_bytes", "A client's quota in bytes (0: unlimited).", []string{"client"}, nil),
		quotaUse: prometheus.NewDesc("cairn_server_client_quota_used_ratio", "Stored bytes over quota (absent when unlimited).", []string{"client"}, nil),
		lastSnap: prometheus.NewDesc("cairn_server_client_last_snapshot_timestamp_seconds", "When the server last received a snapshot from the client (server clock; 0: never).", []string{"client"}, nil),
		snaps:    prometheus.NewDesc("cairn_server_client_snapshots_received_total", "Snapshots received from the client.", []string{"client"}, nil),
		sessions: prometheus.NewDesc("cairn_server_client_open_sessions", "A client's backup sessions holding a lease (neither ended nor expired).", []string{"client"}, nil),
	}
	m.reg.MustRegister(m.requests, m.errors, m.writes, m, newBudgetCollector(st),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register adds collectors served besides the server's own (the
// monitor's, replication's).
func (m *Metrics) Register(cs ...prometheus.Collector) {
	m.reg.MustRegister(cs...)
}

// Handler serves the metrics (Prometheus' text format).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request counts a request of client (method from a fixed set) and, with
// code, its refusal or failure.
func (m *Metrics) Request(client, method string, p restapi.Path, code string) {
	typ := string(p.Handle.Type)
	if p.Kind == restapi.KindRepo {
		typ = "repo"
	}
	m.requests.WithLabelValues(client, method, typ).Inc()
	if code != "" {
		m.errors.WithLabelValues(client, code).Inc()
	}
}

// Written counts n bytes stored by an upload of client.
func (m *Metrics) Written(client string, n int64) {
	m.writes.WithLabelValues(client).Add(float64(n))
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.stored, m.quota, m.quotaUse, m.lastSnap, m.snaps, m.sessions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	clients, err := m.state.Clients(context.Background())
	if err != nil {
		m.log.Error("metrics: list clients", "err", err)
		return
	}
	live, err := m.state.LiveSessions(context.Background(), m.now())
	if err != nil {
		m.log.Error("metrics: count backup sessions", "err", err)
	}
	for _, c := range clients {
		if err == nil {
			ch <- prometheus.MustNewConstMetric(m.sessions, prometheus.GaugeValue, float64(live[c.Name]), c.Name)
		}
		used, err := m.used(c.Name)
		if err != nil {
			used = c.BytesStored
		}
		ch <- prometheus.MustNewConstMetric(m.stored, prometheus.GaugeValue, float64(used), c.Name)
		ch <- prometheus.MustNewConstMetric(m.quota, prometheus.GaugeValue, float64(c.Quota), c.Name)
		if c.Quota > 0 {
			ch <- prometheus.MustNewConstMetric(m.quotaUse, prometheus.GaugeValue, float64(used)/float64(c.Quota), c.Name)
		}
		last := 0.0
		if !c.LastSnapshot.IsZero() {
			last = float64(c.LastSnapshot.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(m.lastSnap, prometheus.GaugeValue, last, c.Name)
		ch <- prometheus.MustNewConstMetric(m.snaps, prometheus.CounterValue, float64(c.Snapshots), c.Name)
	}
}
