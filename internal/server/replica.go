package server

// Replica tenants (`cairn server client add NAME --replica`): a client
// that is another cairn server replicating its clients' repositories
// here (internal/server/replication on that server, a rest: destination).
// Its repositories hold copies sealed to, and written by, that server:
// this one has no key to them and never opens them. It keeps its own
// guarantees instead, on the stored files alone:
//
//   - every file but the config must be named by the SHA-256 of its
//     bytes (checked as it arrives, as for every client);
//   - nothing is overwritten: a file of the same name is the same bytes,
//     and its upload succeeds without storing anything; the config is
//     replaced only by one of the repository's stored config versions
//     (configs/<its SHA-256>), as replication replaces it;
//   - nothing is deleted but restic's locks (a restic reader takes one)
//     and a file that no longer hashes to its name (damaged storage,
//     which the primary's audit heals by removing it and storing the
//     sound copy): the replica's append-only guarantee holds whatever
//     the primary asks, and only this server's operator removes a
//     replica;
//   - the client's quota holds;
//   - only the files of a repository are stored: no backup sessions,
//     writer lists, owner requests or agent reports.
//
// Reads (GET, HEAD, listings, ?identity for the fingerprint) are as for
// any client, so the owner restores from the replica with the replica
// tenant's credentials and the owner key.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// replicaTypes are the file types a replica tenant stores: what
// replication copies, and restic's locks.
var replicaTypes = map[backend.FileType]bool{
	backend.Config: true, backend.Configs: true, backend.Keys: true, backend.Rosters: true,
	backend.Data: true, backend.Index: true, backend.Snapshots: true, backend.Receipts: true,
	backend.Tombstones: true, backend.Locks: true,
}

// refuseReplicaRepo answers a repository-level request of a replica
// tenant that is not ?identity or ?create=true; it reports whether it
// did.
func (s *Server) refuseReplicaRepo(q *request) bool {
	if !q.client.Replica {
		return false
	}
	r := q.R
	if (r.Method == http.MethodGet && r.URL.RawQuery == restapi.IdentityQuery) ||
		(r.Method == http.MethodPost && r.URL.RawQuery == "create=true") {
		return false
	}
	q.Refuse(http.StatusForbidden, restapi.CodeForbidden, "client %s is a replica tenant: it stores and reads copies of repositories, nothing else", q.client.Name)
	return true
}

// identifyReplica: a replica tenant's repository is never opened (cr
// stays nil), and only the files replication copies are taken.
func (sv *saving) identifyReplica() bool {
	q, h := sv.q, sv.h
	if !replicaTypes[h.Type] {
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
// only be replaced (replaceConfig); a new file must fit the quota.
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

// configReplacer is what the server's storage offers for the one file
// that is ever replaced.
type configReplacer interface {
	ReplaceConfig(ctx context.Context, rd backend.RewindReader) error
}

// replaceConfig replaces a replica's config with the upload if the upload
// is one of the repository's stored config versions; the same config
// again succeeds without storing anything.
func (sv *saving) replaceConfig() {
	q, ctx, h := sv.q, sv.ctx, sv.h
	stored, err := backend.LoadAll(ctx, sv.be, h)
	if err != nil {
		q.Fail("save", err)
		return
	}
	if backend.NameOf(stored) == sv.u.Name() {
		sv.answerStored()
		return
	}
	if _, err := sv.be.Stat(ctx, backend.Handle{Type: backend.Configs, Name: sv.u.Name()}); err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			err = fmt.Errorf("%v exists and is replaced only by one of the repository's stored config versions (configs/), which this is not: %w", h, backend.ErrExists)
		}
		q.Fail("save", err)
		return
	}
	r, ok := sv.be.(configReplacer)
	if !ok {
		q.Fail("save", fmt.Errorf("%v: the server's storage cannot replace a config", h))
		return
	}
	if err := r.ReplaceConfig(ctx, sv.u.Reader()); err != nil {
		q.Fail("save", err)
		return
	}
	q.Log.Info("replaced a replica's config with a stored version", "client", q.client.Name, "repo", q.Path.RepoPath(), "config", sv.u.Name())
	q.W.WriteHeader(http.StatusOK)
}

// refuseReplicaDelete: a replica tenant deletes restic's locks, and a
// content-named file only when it no longer hashes to its name (damaged
// storage): so the primary's audit can heal it (remove, then store the
// sound copy), while a sound file is never deleted. It reports whether it
// answered the request.
func (s *Server) refuseReplicaDelete(q *request, be backend.Backend) bool {
	h := q.Path.Handle
	if !q.client.Replica || h.Type == backend.Locks {
		return false
	}
	if h.Type != backend.Config {
		sum := sha256.New()
		err := be.Load(q.R.Context(), h, 0, 0, func(rd io.Reader) error {
			sum.Reset()
			_, err := io.Copy(sum, rd)
			return err
		})
		if err != nil {
			q.Fail("delete", err)
			return true
		}
		if hex.EncodeToString(sum.Sum(nil)) != h.Name {
			q.Log.Warn("a replica tenant removes a damaged file (it does not hash to its name)", "client", q.client.Name, "repo", q.Path.RepoPath(), "file", h.String())
			return false
		}
	}
	q.Refuse(http.StatusForbidden, restapi.CodeAppendOnly, "client %s is a replica tenant: deleting %v is refused; a replica keeps every sound file until this server's operator removes it", q.client.Name, h)
	return true
}
