package main

import (
	"context"
	"errors"

	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// Exit codes: a documented contract (docs/commands.md, cairn --help),
// classified by client.ExitCode.
const (
	exitOK           = client.ExitOK
	exitFailed       = client.ExitFailed
	exitPartial      = client.ExitPartial
	exitNoRepository = client.ExitNoRepository
	exitNeedsKey     = client.ExitNeedsKey
	exitQuota        = client.ExitQuota
	exitTooSoon      = client.ExitTooSoon
	exitInterrupted  = client.ExitInterrupted
)

// errPartial marks a partial result whose gaps were each reported as a
// warning (exit 3).
var errPartial = client.ErrPartial

// usageError is a mistake on the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// hintError adds what to do next to an error: "what happened; what to do".
type hintError = client.HintError

func withHint(err error, format string, a ...any) error {
	return client.WithHint(err, format, a...)
}

// roleError says an operation needs a stronger key than the one in use.
type roleError = client.RoleError

func exitCode(ctx context.Context, err error) int { return client.ExitCode(ctx, err) }

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
