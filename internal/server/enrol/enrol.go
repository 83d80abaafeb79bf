// Package enrol answers a repository's ?identity request with the
// server's public identity (package identity), which clients fetch with
// rest.FetchIdentity and pin (R21).
package enrol

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/identity"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
)

// Serve answers q with id's public half.
func Serve(q *repohttp.Request, id *identity.Identity) {
	pub, err := id.Public()
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
