package checker

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairnbackup/cairn/internal/repository"
)

// checkIdentity flags every snapshot whose host label is not bound to its
// signer in the roster (R25): a writer passing its snapshot off as
// another machine's. The owner may use any label. Such a snapshot stays
// in the repository (the owner may still restore it by ID); "latest",
// --host and a backup's parent never pick it.
func (c *checker) checkIdentity(ctx context.Context) error {
	for _, s := range c.snaps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.Meta == nil {
			continue
		}
		sg := c.repo.SignerOf(s.File.Statement.Writer[:])
		if sg.MayUse(s.Meta.HostLabel) {
			continue
		}
		bound := "no host label"
		if len(sg.Hosts) > 0 {
			bound = "only " + strings.Join(sg.Hosts, ", ")
		}
		c.problem(Problem{File: "snapshots/" + s.ID.String(), Snapshots: []string{s.ID.Short()},
			Message: fmt.Sprintf("impostor snapshot: host label %q is not bound to its signer %s (seq %d), which may use %s",
				s.Meta.HostLabel, signerLabel(sg), s.File.Statement.Seq, bound)})
	}
	return nil
}

// signerLabel names a signer with its key, as R17 findings do.
func signerLabel(s repository.Signer) string {
	if len(s.ID) < 4 {
		return s.String()
	}
	return fmt.Sprintf("%s (key %x)", s, s.ID[:4])
}
