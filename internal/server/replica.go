package server

// Replica tenants (`cairn server client add NAME --replica`): their rules
// are package replicatenant's; here they are answered.

import (
	"errors"
	"net/http"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/replicatenant"
)

// refuseReplicaRepo answers a repository-level request of a replica
// tenant that is not ?identity or ?create=true; it reports whether it
// did.
func (s *Server) refuseReplicaRepo(q *request) bool {
	if !q.client.Replica || replicatenant.RepoRequest(q.R) {
		return false
	}
	q.Refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s is a replica tenant: it stores and reads copies of repositories, nothing else", q.client.Name)
	return true
}

// identifyReplica: a replica tenant's repository is never opened (cr
// stays nil), and only the files replication copies are taken.
func (sv *saving) identifyReplica() bool {
	q, h := sv.q, sv.h
	if !replicatenant.Stores(h.Type) {
		q.Refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s is a replica tenant: it stores no %s files", q.client.Name, h.Type)
		return false
	}
	if m := sv.s.maxInMemory(h.Type); m > 0 && h.Type == backend.Config {
		sv.max = min(sv.max, m)
	}
	if sv.size > sv.max {
		q.Refuse(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge, "a %s file is larger than the server takes for its type", h.Type)
		return false
	}
	return true
}

// admitReplica: a stored content-named file is answered as stored once
// its upload hashes to the name (receive checks it); a stored config may
// only be replaced (replaceConfig); a new file must fit the quota (and a
// first config is checked once received: validateReplica).
func (sv *saving) admitReplica() bool {
	switch {
	case sv.stored && sv.h.Type == backend.Config:
		sv.replace = true
		return true
	case sv.stored:
		return true
	case sv.size < 0:
		return sv.hasHeadroom()
	}
	return sv.reserve(sv.size)
}

// validateReplica checks a replica tenant's upload before it is stored:
// a first config must be one of the repository's stored config versions
// (replicatenant.FirstConfig), as a replacement must (replaceConfig), so
// the replica's config is only ever one of them, whichever comes first;
// a replica keeping no config version (restic's) takes its config as it
// comes.
func (sv *saving) validateReplica() bool {
	q := sv.q
	if sv.h.Type != backend.Config {
		return true
	}
	err := replicatenant.FirstConfig(sv.ctx, sv.be, sv.u.Name())
	switch {
	case errors.Is(err, replicatenant.ErrNotVersion):
		q.Refuse(http.StatusForbidden, restapi.CodeForbidden, "%v: %v", sv.h, err)
		return false
	case err != nil:
		q.Fail("save", err)
		return false
	}
	return true
}

// replaceConfig replaces a replica's config with the upload if the upload
// is one of the repository's stored config versions; the same config
// again succeeds without storing anything.
func (sv *saving) replaceConfig() {
	q := sv.q
	replaced, err := replicatenant.ReplaceConfig(sv.ctx, sv.be, sv.h, sv.u.Name(), sv.u.Reader())
	switch {
	case err != nil:
		q.Fail("save", err)
	case !replaced:
		sv.answerStored()
	default:
		q.Log.Info("replaced a replica's config with a stored version", "client", q.client.Name, "repo", q.Path.RepoPath(), "config", sv.u.Name())
		q.W.WriteHeader(http.StatusOK)
	}
}

// refuseReplicaDelete answers a replica tenant's delete of anything but
// restic's locks and a damaged file (replicatenant.Deletable); it reports
// whether it answered the request.
func (s *Server) refuseReplicaDelete(q *request, be backend.Backend) bool {
	h := q.Path.Handle
	ok, damaged, err := replicatenant.Deletable(q.R.Context(), be, h)
	switch {
	case err != nil:
		q.Fail("delete", err)
		return true
	case damaged:
		q.Log.Warn("a replica tenant removes a damaged file (it does not hash to its name)", "client", q.client.Name, "repo", q.Path.RepoPath(), "file", h.String())
	}
	if ok {
		return false
	}
	q.Refuse(http.StatusForbidden, restapi.CodeAppendOnly, "client %s is a replica tenant: deleting %v is refused; a replica keeps every sound file until this server's operator removes it", q.client.Name, h)
	return true
}
