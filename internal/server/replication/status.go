package replication

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/server/state"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

// Row is one repository's replica on one destination, as `replication
// status` and /metrics show it.
type Row struct {
	Destination string
	Client      string
	Repo        string // the repository's path below the client
	// Snapshot is the newest commit known to be on the replica (a file
	// name; "" if none yet), committed on the primary at SnapshotTime.
	Snapshot     string
	SnapshotTime time.Time
	ReplicatedAt time.Time // end of the last pass without error
	// Lag is how long the replica has lacked a commit the primary holds
	// (0: up to date); LagBytes what the pass under way has still to
	// copy, or the last pass could not.
	Lag       time.Duration
	LagBytes  int64
	LastError string
	ErrorAt   time.Time
	Failures  int
	// Retention is the destination's last retention run on the replica
	// (zero At: none).
	Retention replicas.RetentionRun
}

// Report returns a row per destination and repository it replicates,
// sorted by destination, client and repository. Repositories are those
// that received a snapshot since replication was set up.
func Report(ctx context.Context, st *state.State, now time.Time) ([]Row, error) {
	ds, err := st.Destinations(ctx)
	if err != nil {
		return nil, err
	}
	repos, err := st.ReplicaRepos(ctx)
	if err != nil {
		return nil, err
	}
	statuses, err := st.ReplicaStatuses(ctx)
	if err != nil {
		return nil, err
	}
	byKey := map[[2]string]replicas.ReplicaStatus{}
	for _, s := range statuses {
		byKey[[2]string{s.Destination, s.Repo}] = s
	}
	var rows []Row
	for _, d := range ds {
		for _, r := range repos {
			if !d.Covers(r.Client) {
				continue
			}
			s, ok := byKey[[2]string{d.Name, r.Repo}]
			row := Row{Destination: d.Name, Client: r.Client, Repo: strings.TrimPrefix(r.Repo, r.Client+"/"),
				Snapshot: s.Snapshot, SnapshotTime: s.SnapshotTime, ReplicatedAt: s.ReplicatedAt,
				LagBytes: s.LagBytes, LastError: s.LastError, ErrorAt: s.ErrorAt, Failures: s.Failures, Retention: s.Retention}
			since := s.PendingSince
			if (!ok || s.ReplicatedAt.IsZero()) && since.IsZero() {
				since = r.CommitTime // never replicated
			}
			if !since.IsZero() && now.After(since) {
				row.Lag = now.Sub(since)
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// Collector exports replication's state in /metrics, read from the state
// database at scrape time so that it agrees with `replication status`.
type Collector struct {
	State *state.State
	Now   func() time.Time

	lag, lagBytes, last, failures, snapTime *prometheus.Desc
}

// NewCollector returns the replication metrics of st.
func NewCollector(st *state.State, now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	labels := []string{"destination", "client", "repo"}
	return &Collector{State: st, Now: now,
		lag:      prometheus.NewDesc("cairn_replication_lag_seconds", "How long the replica has lacked a snapshot the primary holds (0: up to date).", labels, nil),
		lagBytes: prometheus.NewDesc("cairn_replication_lag_bytes", "Bytes the replication pass under way has still to copy to the replica, or the last pass could not copy.", labels, nil),
		last:     prometheus.NewDesc("cairn_replication_last_success_timestamp_seconds", "End of the last replication pass without error (0: never).", labels, nil),
		snapTime: prometheus.NewDesc("cairn_replication_last_snapshot_timestamp_seconds", "Commit time on the primary of the newest snapshot on the replica (0: none).", labels, nil),
		failures: prometheus.NewDesc("cairn_replication_failures", "Replication passes that failed in a row (0 after a success).", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.lagBytes, c.last, c.snapTime, c.failures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	rows, err := Report(context.Background(), c.State, c.Now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.lag, err)
		return
	}
	ts := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	for _, r := range rows {
		l := []string{r.Destination, r.Client, r.Repo}
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, r.Lag.Seconds(), l...)
		ch <- prometheus.MustNewConstMetric(c.lagBytes, prometheus.GaugeValue, float64(r.LagBytes), l...)
		ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, ts(r.ReplicatedAt), l...)
		ch <- prometheus.MustNewConstMetric(c.snapTime, prometheus.GaugeValue, ts(r.SnapshotTime), l...)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.GaugeValue, float64(r.Failures), l...)
	}
}
