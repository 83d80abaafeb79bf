package server

// Space budgets (R13) as the tenant layer enforces them (package metrics
// exports them); the
// scheduler (package maintain) decides them.

import (
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// remeasure makes the next quota check measure the client's storage
// afresh: maintenance deleted files and wrote some (tombstones, plans,
// repacked packs) past the upload accounting.
func (s *Server) remeasure(client string) {
	s.usage.Remeasure(client)
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
