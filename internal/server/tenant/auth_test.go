package tenant

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairnbackup/cairn/internal/server/state"
)

// TestAuthSharesComparison: requests that bring the same credentials
// while their bcrypt comparison runs share it; other credentials compare
// on their own, and a wrong password is refused to every request.
func TestAuthSharesComparison(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hash, err := bcrypt.GenerateFromPassword([]byte("fleet-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddClient(ctx, state.Client{Name: "laptop", Hash: string(hash), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(st, time.Now)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		password string
		want     error
	}{{"wrong-password", ErrBadCredentials}, {"fleet-password", nil}} {
		var compares atomic.Int32
		entered, release := make(chan struct{}), make(chan struct{})
		first := func() error { // the first comparison waits for the others to come
			if compares.Add(1) == 1 {
				close(entered)
				<-release
			}
			return nil
		}
		const n = 8
		errs := make(chan error, n)
		go func() {
			_, err := a.Check(ctx, "laptop", tc.password, first)
			errs <- err
		}()
		<-entered
		var started sync.WaitGroup
		for range n - 1 {
			started.Add(1)
			go func() {
				started.Done()
				_, err := a.Check(ctx, "laptop", tc.password, first)
				errs <- err
			}()
		}
		started.Wait()
		close(release)
		for range n {
			if err := <-errs; !errors.Is(err, tc.want) && err != tc.want {
				t.Errorf("%s: Check: %v, want %v", tc.password, err, tc.want)
			}
		}
		// A wrong password is never cached, so each round of requests
		// compares again; a right one compares once.
		if got := compares.Load(); got != 1 && tc.want == nil {
			t.Errorf("%s: %d comparisons for %d requests at once, want 1", tc.password, got, n)
		}
	}
	// Cached now: no comparison at all.
	if _, err := a.Check(ctx, "laptop", "fleet-password", func() error { return errors.New("compared again") }); err != nil {
		t.Errorf("cached credentials: %v", err)
	}
}

// TestAuthRetriesAfterLeaderGone: a request whose shared comparison was
// cut short by the request that ran it (gone, or refused by its source's
// limit) compares for itself.
func TestAuthRetriesAfterLeaderGone(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte("fleet-password"), bcrypt.MinCost)
	if err := st.AddClient(ctx, state.Client{Name: "laptop", Hash: string(hash), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	limited := func() error {
		close(entered)
		<-release
		return &AuthLimitedError{Wait: time.Second}
	}
	lerr := make(chan error, 1)
	go func() {
		_, err := a.Check(ctx, "laptop", "fleet-password", limited)
		lerr <- err
	}()
	<-entered
	ferr := make(chan error, 1)
	var followerCompared atomic.Bool
	go func() {
		_, err := a.Check(ctx, "laptop", "fleet-password", func() error { followerCompared.Store(true); return nil })
		ferr <- err
	}()
	close(release)
	var le *AuthLimitedError
	if err := <-lerr; !errors.As(err, &le) {
		t.Errorf("limited request: %v, want AuthLimitedError", err)
	}
	if err := <-ferr; err != nil {
		t.Errorf("other request: %v (followerCompared %v)", err, followerCompared.Load())
	}
}
