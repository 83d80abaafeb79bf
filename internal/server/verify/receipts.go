package verify

import (
	"context"
	"log/slog"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// WriteReceipt stores a receipt, signed with the server's coordinator key,
// for a snapshot the server has just accepted (R14): the arrival time is
// the server's clock. A failure is logged, not returned: the snapshot is
// stored, and the owner's check reports a snapshot without a receipt as
// suspect.
func (s *Verifier) WriteReceipt(ctx context.Context, log *slog.Logger, cr *Repo, be backend.Backend, name string, body []byte) {
	f, err := snapshot.ParseFile(body)
	if err == nil {
		repo, oerr := cr.Open(ctx, be)
		if err = oerr; err == nil {
			err = repo.WriteReceipt(ctx, name, f.Statement, s.Now())
		}
	}
	if err != nil {
		log.Error("write receipt", "snapshot", name, "err", err)
		return
	}
	log.Info("receipt written", "snapshot", name)
}
