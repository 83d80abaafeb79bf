package client

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
// ExitCode classifies an error; a front end prints it as it likes.
const (
	ExitOK            = 0
	ExitFailed        = 1
	ExitPartial       = 3
	ExitNoRepository  = 10
	ExitNeedsKey      = 11
	ExitWrongPassword = 12
	ExitQuota         = 13
	ExitTooSoon       = 14
	ExitInterrupted   = 130
)

// ErrPartial marks a partial result whose gaps were each reported as a
// warning (exit 3): a backup that saved its snapshot without some
// unreadable files, a restore, ls or find that went on past lost paths.
var ErrPartial = errors.New("incomplete")

// ExitCode is the exit code for err, which ended work under ctx.
func ExitCode(ctx context.Context, err error) int {
	switch {
	case ctx.Err() != nil:
		// A signal arrived: whatever failed afterwards failed because of it.
		return ExitInterrupted
	case errors.Is(err, ErrPartial):
		return ExitPartial
	case errors.Is(err, repository.ErrNoRepository):
		return ExitNoRepository
	case errors.Is(err, crypto.ErrNeedsOwner), errors.Is(err, crypto.ErrNeedsMetadata):
		return ExitNeedsKey
	case errors.Is(err, repository.ErrNoKey), errors.Is(err, crypto.ErrWrongPassword):
		return ExitWrongPassword
	}
	var se *restapi.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Status == http.StatusInsufficientStorage || se.Code == restapi.CodeQuota:
			return ExitQuota
		case se.Code == restapi.CodeTooOften:
			return ExitTooSoon
		}
	}
	return ExitFailed
}

// UsageError is a mistake in what the caller asked for (a command line's
// argument), not in the repository.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// HintError adds what to do next to an error: "what happened; what to do".
type HintError struct {
	Err  error
	Hint string
}

func (e HintError) Error() string { return e.Err.Error() + "; " + e.Hint }
func (e HintError) Unwrap() error { return e.Err }

// WithHint adds the hint, formatted, to err.
func WithHint(err error, format string, a ...any) error {
	return HintError{Err: err, Hint: fmt.Sprintf(format, a...)}
}

// RoleError says an operation needs a stronger key than the one in use.
type RoleError struct {
	Verb string      // "restoring"
	Need string      // "the owner key"
	Have crypto.Role // the key in use
	Base error       // crypto.ErrNeedsOwner or crypto.ErrNeedsMetadata
}

func (e RoleError) Error() string {
	return fmt.Sprintf("%s needs %s; this is a %s key", e.Verb, e.Need, e.Have)
}
func (e RoleError) Unwrap() error { return e.Base }

// NeedContent fails unless the repository's key opens content (owner).
func NeedContent(repo *repository.Repository, verb string) error {
	if repo.CanReadContent() {
		return nil
	}
	return RoleError{Verb: verb, Need: "the owner key", Have: repo.Keys().Role, Base: crypto.ErrNeedsOwner}
}

// NeedMetadata fails unless the key opens metadata (owner or server).
func NeedMetadata(repo *repository.Repository, verb string) error {
	if repo.CanReadMetadata() {
		return nil
	}
	return RoleError{Verb: verb, Need: "the owner or server key", Have: repo.Keys().Role, Base: crypto.ErrNeedsMetadata}
}
