package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/server/state"
)

// budgetCollector exports cairn_client_budget_exceeded per client with a
// space-driven policy, read from the state database at scrape time.
type budgetCollector struct {
	state *state.State
	desc  *prometheus.Desc
}

func newBudgetCollector(st *state.State) *budgetCollector {
	return &budgetCollector{state: st, desc: prometheus.NewDesc("cairn_client_budget_exceeded",
		"1 while a client's space-driven policy cannot meet its budget without deleting a floor snapshot (uploads get 507); 0 otherwise.",
		[]string{"client"}, nil)}
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	pols, err := c.state.Policies(ctx)
	if err != nil {
		return
	}
	for name, p := range pols {
		if p.MaxSize == 0 {
			continue
		}
		b, err := c.state.BudgetOf(ctx, name)
		if err != nil {
			continue
		}
		v := 0.0
		if b.Exceeded {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, name)
	}
}
