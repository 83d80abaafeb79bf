package server

// Space budgets (R13) as the tenant layer enforces and exports them; the
// scheduler (package maintain) decides them.

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// remeasure makes the next quota check measure the client's storage
// afresh: maintenance deleted files and wrote some (tombstones, plans,
// repacked packs) past the upload accounting.
func (s *Server) remeasure(client string) {
	s.usage.mu.Lock()
	delete(s.usage.used, client)
	s.usage.mu.Unlock()
}

// overBudget answers an upload with 507 if the client's space budget is
// exceeded (R13); it reports whether it did.
func (s *Server) overBudget(q *request) bool {
	b, err := s.data.State.BudgetOf(q.R.Context(), q.client.Name)
	if err != nil {
		q.Fail("budget", err)
		return true
	}
	if !b.Exceeded {
		return false
	}
	q.Refuse(507, restapi.CodeQuota, "client %s is over its space budget since %s and the server cannot free space without deleting a floor snapshot (%s); uploads resume once the budget is raised (`cairn server client policy`) or met",
		q.client.Name, b.Since.UTC().Format(time.RFC3339), b.Note)
	return true
}

// budgetCollector exports cairn_client_budget_exceeded per client with a
// space-driven policy, read from the state database at scrape time.
type budgetCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func newBudgetCollector(s *Server) *budgetCollector {
	return &budgetCollector{s: s, desc: prometheus.NewDesc("cairn_client_budget_exceeded",
		"1 while a client's space-driven policy cannot meet its budget without deleting a floor snapshot (uploads get 507); 0 otherwise.",
		[]string{"client"}, nil)}
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	pols, err := c.s.data.State.Policies(ctx)
	if err != nil {
		return
	}
	for name, p := range pols {
		if p.MaxSize == 0 {
			continue
		}
		b, err := c.s.data.State.BudgetOf(ctx, name)
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
