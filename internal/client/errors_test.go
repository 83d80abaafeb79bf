package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// TestExitCode: each documented class of error, also wrapped and with a
// hint, gets its exit code; an interrupted context wins over the error.
func TestExitCode(t *testing.T) {
	ctx := context.Background()
	wrap := func(err error) error { return WithHint(fmt.Errorf("doing it: %w", err), "do this") }
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errors.New("anything"), ExitFailed},
		{ErrPartial, ExitPartial},
		{repository.ErrNoRepository, ExitNoRepository},
		{RoleError{Verb: "restoring", Need: "the owner key", Have: crypto.RoleServer, Base: crypto.ErrNeedsOwner}, ExitNeedsKey},
		{crypto.ErrNeedsMetadata, ExitNeedsKey},
		{repository.ErrNoKey, ExitWrongPassword},
		{crypto.ErrWrongPassword, ExitWrongPassword},
		{&restapi.StatusError{Status: http.StatusInsufficientStorage}, ExitQuota},
		{&restapi.StatusError{Status: http.StatusForbidden, Code: restapi.CodeQuota}, ExitQuota},
		{&restapi.StatusError{Status: http.StatusTooManyRequests, Code: restapi.CodeTooOften}, ExitTooSoon},
		{&restapi.StatusError{Status: http.StatusForbidden, Code: restapi.CodeForbidden}, ExitFailed},
		{UsageError{errors.New("bad flag")}, ExitFailed},
	} {
		if got := ExitCode(ctx, tc.err); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.want)
		}
		if got := ExitCode(ctx, wrap(tc.err)); got != tc.want {
			t.Errorf("%v wrapped: exit %d, want %d", tc.err, got, tc.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := ExitCode(cctx, repository.ErrNoKey); got != ExitInterrupted {
		t.Errorf("after a signal: exit %d, want %d", got, ExitInterrupted)
	}
	err := WithHint(errors.New("it broke"), "try %s", "again")
	if err.Error() != "it broke; try again" {
		t.Errorf("hint: %q", err)
	}
}
