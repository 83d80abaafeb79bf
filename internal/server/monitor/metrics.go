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
	descDrillState = prometheus.NewDesc("cairn_server_client_drill_state",
		"A client's restore-drill level: 0 OK, 2 ALERT when its oldest last drill (or its enrolment, never drilled) is older than its drill-after limit (disabled clients absent).", []string{"client"}, nil)
	descLastDrill = prometheus.NewDesc("cairn_server_last_drill_timestamp_seconds",
		"When a repository was last proven restorable by `cairn drill` (absent if never).", []string{"client", "repo"}, nil)
	descFailing = prometheus.NewDesc("cairn_server_notifier_failing",
		"1 if a notifier's last delivery failed.", []string{"notifier"}, nil)
	descFailed = prometheus.NewDesc("cairn_server_notifier_failures_total",
		"Deliveries a notifier failed.", []string{"notifier"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descState
	ch <- descDrillState
	ch <- descLastDrill
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
			ch <- prometheus.MustNewConstMetric(descDrillState, prometheus.GaugeValue, float64(cs.DrillLevel), cs.Name)
		}
		for _, d := range cs.Drills {
			if !d.At.IsZero() {
				ch <- prometheus.MustNewConstMetric(descLastDrill, prometheus.GaugeValue, float64(d.At.UnixNano())/1e9, cs.Name, d.Repo)
			}
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
