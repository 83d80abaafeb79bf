package server

// Enrolment: the server answers ?identity with its public identity
// (package identity), which clients fetch with rest.FetchIdentity and pin.

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cairnbackup/cairn/internal/restapi"
)

func (s *Server) serveIdentity(q *request) {
	pub, err := s.data.Identity.Public()
	if err != nil {
		q.Refuse(http.StatusInternalServerError, restapi.CodeInternal, "server identity: %v", err)
		return
	}
	body, _ := json.Marshal(pub)
	q.W.Header().Set("Content-Type", "application/json")
	q.W.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.W.WriteHeader(http.StatusOK)
	q.W.Write(body)
}
