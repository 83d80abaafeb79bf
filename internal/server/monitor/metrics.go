package monitor

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/server/state"
)

// Collector exports backup states and notifier health to Prometheus, read
// from the state database at scrape time on the Watcher's clock, so
// /metrics agrees with `cairn server status`.
type Collector struct {
	State *state.State
	Now   func() time.Time
	Log   *slog.Logger
}

var (
	descState = prometheus.NewDesc("cairn_server_client_backup_state",
		"A client's backup-age level: 0 OK, 1 WARNING, 2 ALERT (per-client thresholds; disabled clients absent).", []string{"client"}, nil)
	descFailing = prometheus.NewDesc("cairn_server_notifier_failing",
		"1 if a notifier's last delivery failed.", []string{"notifier"}, nil)
	descFailed = prometheus.NewDesc("cairn_server_notifier_failures_total",
		"Deliveries a notifier failed.", []string{"notifier"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descState
	ch <- descFailing
	ch <- descFailed
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	r, err := Evaluate(context.Background(), c.State, nil, now(), "")
	if err != nil {
		c.Log.Error("metrics: backup states", "err", err)
		return
	}
	for _, cs := range r.Clients {
		if !cs.Disabled {
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, float64(cs.Level), cs.Name)
		}
	}
	for _, n := range r.Notifiers {
		failing := 0.0
		if n.Failing {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, n.Name)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(n.Failed), n.Name)
	}
}
