package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// Exit codes: a documented contract (docs/commands.md, cairn --help).
const (
	exitOK            = 0
	exitFailed        = 1
	exitPartial       = 3
	exitNoRepository  = 10
	exitNeedsKey      = 11
	exitWrongPassword = 12
	exitQuota         = 13
	exitTooSoon       = 14
	exitInterrupted   = 130
)

// errPartial marks a partial result whose gaps were each reported as a
// warning (exit 3): a backup that saved its snapshot without some
// unreadable files, a restore, ls or find that went on past lost paths.
var errPartial = errors.New("incomplete")

// usageError is a mistake on the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// hintError adds what to do next to an error: "what happened; what to do".
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() + "; " + e.hint }
func (e hintError) Unwrap() error { return e.err }

func withHint(err error, format string, a ...any) error {
	return hintError{err: err, hint: fmt.Sprintf(format, a...)}
}

// roleError says an operation needs a stronger key than the one in use.
type roleError struct {
	verb string      // "restoring"
	need string      // "the owner key"
	have crypto.Role // the key in use
	base error       // crypto.ErrNeedsOwner or crypto.ErrNeedsMetadata
}

func (e roleError) Error() string {
	return fmt.Sprintf("%s needs %s; this is a %s key", e.verb, e.need, e.have)
}
func (e roleError) Unwrap() error { return e.base }

// needContent fails unless the repository's key opens content (owner).
func needContent(repo *repository.Repository, verb string) error {
	if repo.CanReadContent() {
		return nil
	}
	return roleError{verb: verb, need: "the owner key", have: repo.Keys().Role, base: crypto.ErrNeedsOwner}
}

// needMetadata fails unless the key opens metadata (owner or server).
func needMetadata(repo *repository.Repository, verb string) error {
	if repo.CanReadMetadata() {
		return nil
	}
	return roleError{verb: verb, need: "the owner or server key", have: repo.Keys().Role, base: crypto.ErrNeedsMetadata}
}

func exitCode(ctx context.Context, err error) int {
	switch {
	case ctx.Err() != nil:
		// A signal arrived: whatever failed afterwards failed because of it.
		return exitInterrupted
	case errors.Is(err, errPartial):
		return exitPartial
	case errors.Is(err, repository.ErrNoRepository):
		return exitNoRepository
	case errors.Is(err, crypto.ErrNeedsOwner), errors.Is(err, crypto.ErrNeedsMetadata):
		return exitNeedsKey
	case errors.Is(err, repository.ErrNoKey), errors.Is(err, crypto.ErrWrongPassword):
		return exitWrongPassword
	}
	var se *restapi.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Status == http.StatusInsufficientStorage || se.Code == restapi.CodeQuota:
			return exitQuota
		case se.Code == restapi.CodeTooOften:
			return exitTooSoon
		}
	}
	return exitFailed
}

// errorMessage renders err for people: one or two lines, no stack trace.
func errorMessage(err error, code int) string {
	if code == exitInterrupted {
		return "interrupted; nothing half-written is left under a real name, run the command again to continue"
	}
	var he hintError
	var re roleError
	if errors.As(err, &he) || errors.As(err, &re) {
		return err.Error()
	}
	msg := err.Error()
	switch code {
	case exitNeedsKey:
		return msg + "; use the owner key (or the server key for metadata-only work)"
	case exitQuota:
		return msg + "; nothing half-written is visible; ask the server's operator for more room (`cairn server client add --quota`, `cairn server client policy`), or forget and prune snapshots"
	case exitTooSoon:
		return msg + "; the server takes snapshots from this client only so often (`cairn server client add --min-interval`); run again later"
	}
	var se *restapi.StatusError
	if errors.As(err, &se) && se.Code == restapi.CodeForbidden {
		return msg + "; the server's operator can enable the client again (`cairn server client enable`)"
	}
	return msg
}
