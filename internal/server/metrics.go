package server

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// (no package-level state). Per-client gauges are read from the state
// database and the usage figures at scrape time, so they agree with
// `cairn server client show`.
type metrics struct {
	s        *Server
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	writes   *prometheus.CounterVec

	stored, quota, lastSnap, snaps, quotaUse *prometheus.Desc
	sessions                                 *prometheus.Desc
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		s:   s,
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
	m.reg.MustRegister(m.requests, m.errors, m.writes, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(s.opts.Collectors...)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) request(client, method string, p restapi.Path, code string) {
	typ := string(p.Handle.Type)
	if p.Kind == restapi.KindRepo {
		typ = "repo"
	}
	m.requests.WithLabelValues(client, method, typ).Inc()
	if code != "" {
		m.errors.WithLabelValues(client, code).Inc()
	}
}

func (m *metrics) written(client string, n int64) {
	m.writes.WithLabelValues(client).Add(float64(n))
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.stored, m.quota, m.quotaUse, m.lastSnap, m.snaps, m.sessions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	clients, err := m.s.data.State.Clients(context.Background())
	if err != nil {
		m.s.log.Error("metrics: list clients", "err", err)
		return
	}
	live, err := m.s.data.State.LiveSessions(context.Background(), m.s.opts.Now())
	if err != nil {
		m.s.log.Error("metrics: count backup sessions", "err", err)
	}
	for _, c := range clients {
		if err == nil {
			ch <- prometheus.MustNewConstMetric(m.sessions, prometheus.GaugeValue, float64(live[c.Name]), c.Name)
		}
		used, err := m.s.usage.get(c.Name)
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
