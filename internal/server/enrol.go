package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// Public returns the server's public identity, as clients enrol it.
func (id *Identity) Public() (repository.ServerPublic, error) {
	r, err := id.MetaRecipient()
	if err != nil {
		return repository.ServerPublic{}, err
	}
	return repository.ServerPublic{MetaRecipient: r, CoordPub: id.SignPublic()}, nil
}

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
