package verify

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// codeIdentity: a statement whose host label is not bound to its signer.
const codeIdentity = restapi.CodeBadIdentity

// checkIdentity refuses a statement whose host label (in the metadata
// header, which the server opens) is not one its signer was enrolled
// for in the owner-signed roster (R25). The owner may use any label; a
// writer only those of its roster entry (its name, for an entry from
// before host binding), so no writer passes its snapshots off as another
// machine's.
func checkIdentity(repo *repository.Repository, st *snapshot.Statement, meta *snapshot.MetaHeader) error {
	s := repo.SignerOf(st.Writer[:])
	if s.MayUse(meta.HostLabel) {
		return nil
	}
	bound := "no host label"
	if len(s.Hosts) > 0 {
		bound = "host label " + strings.Join(quoteAll(s.Hosts), ", ")
	}
	return refusef(http.StatusForbidden, codeIdentity,
		"snapshot host label %q is not bound to its signer %s, which may use %s; the owner enrols a writer for a host with `cairn key add --role writer --host`",
		meta.HostLabel, s, bound)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
