package audit

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/server/state"
)

// Collector exports each client's last audit to Prometheus, read from the
// state database at scrape time.
type Collector struct {
	State *state.State
	Log   *slog.Logger
}

var (
	descLast = prometheus.NewDesc("cairn_server_audit_last_timestamp_seconds",
		"When the client's files were last audited (Unix time, on the audit's clock).", []string{"client"}, nil)
	descCoverage = prometheus.NewDesc("cairn_server_audit_coverage_ratio",
		"Share of the client's stored files, on every copy audited, re-hashed within the audit cycle.", []string{"client"}, nil)
	descBad = prometheus.NewDesc("cairn_server_audit_bad_files",
		"Bad or missing files the client's last audit found (healed or not).", []string{"client"}, nil)
	descUnhealed = prometheus.NewDesc("cairn_server_audit_unhealed_files",
		"Bad or missing files the client's last audit could not heal from a good copy.", []string{"client"}, nil)
	descRead = prometheus.NewDesc("cairn_server_audit_read_bytes",
		"Bytes the client's last audit read to re-hash files.", []string{"client"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLast, descCoverage, descBad, descUnhealed, descRead} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	as, err := c.State.AuditStatuses(context.Background())
	if err != nil {
		if c.Log != nil {
			c.Log.Error("metrics: audit results", "err", err)
		}
		return
	}
	for name, a := range as {
		ch <- prometheus.MustNewConstMetric(descLast, prometheus.GaugeValue, float64(a.At.UnixNano())/1e9, name)
		ch <- prometheus.MustNewConstMetric(descCoverage, prometheus.GaugeValue, a.Coverage(), name)
		ch <- prometheus.MustNewConstMetric(descBad, prometheus.GaugeValue, float64(a.Bad), name)
		ch <- prometheus.MustNewConstMetric(descUnhealed, prometheus.GaugeValue, float64(a.Unhealed), name)
		ch <- prometheus.MustNewConstMetric(descRead, prometheus.GaugeValue, float64(a.Bytes), name)
	}
}
