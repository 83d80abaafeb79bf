package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/backendtest"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/backend/retry"
)

var errTransient = errors.New("connection reset by peer")

// failN fails the first n operations named op with errTransient.
func failN(be *mem.Backend, op string, n int) *int {
	calls := 0
	be.SetFault(func(o string, h backend.Handle) error {
		if o != op {
			return nil
		}
		calls++
		if calls <= n {
			return errTransient
		}
		return nil
	})
	return &calls
}

func newRetry(be backend.Backend, slept *[]time.Duration) *retry.Backend {
	return retry.New(be, retry.Options{
		Attempts: 4,
		Initial:  time.Second,
		Max:      3 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error {
			if slept != nil {
				*slept = append(*slept, d)
			}
			return nil
		},
		Jitter: func(d time.Duration) time.Duration { return d },
	})
}

func TestSuite(t *testing.T) {
	backendtest.RunSuite(t, func(t *testing.T) backend.Backend { return newRetry(mem.New(), nil) })
}

func TestTransientRetried(t *testing.T) {
	ctx := context.Background()
	data := []byte("pack bytes")
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
	for _, op := range []string{mem.OpSave, mem.OpLoad, mem.OpStat, mem.OpList, mem.OpRemove} {
		t.Run(op, func(t *testing.T) {
			m := mem.New()
			var slept []time.Duration
			be := newRetry(m, &slept)
			if op != mem.OpSave {
				if err := m.Save(ctx, h, backend.NewByteReader(data)); err != nil {
					t.Fatal(err)
				}
			}
			calls := failN(m, op, 3)
			var err error
			switch op {
			case mem.OpSave:
				err = be.Save(ctx, h, backend.NewByteReader(data))
			case mem.OpLoad:
				_, err = backend.LoadAll(ctx, be, h)
			case mem.OpStat:
				_, err = be.Stat(ctx, h)
			case mem.OpList:
				err = be.List(ctx, backend.Data, func(backend.FileInfo) error { return nil })
			case mem.OpRemove:
				err = be.Remove(ctx, h)
			}
			if err != nil {
				t.Fatalf("%s after 3 transient failures: %v", op, err)
			}
			if *calls != 4 {
				t.Fatalf("%d calls, want 4", *calls)
			}
			want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
			if fmt.Sprint(slept) != fmt.Sprint(want) {
				t.Fatalf("slept %v, want %v", slept, want)
			}
		})
	}
}

func TestGivesUp(t *testing.T) {
	m := mem.New()
	calls := failN(m, mem.OpStat, 100)
	be := newRetry(m, nil)
	h := backend.Handle{Type: backend.Config, Name: "config"}
	_, err := be.Stat(context.Background(), h)
	if !errors.Is(err, errTransient) || *calls != 4 {
		t.Fatalf("got %v after %d calls, want errTransient after 4", err, *calls)
	}
}

func TestPermanentNotRetried(t *testing.T) {
	for _, perm := range []error{backend.ErrNotFound, backend.ErrExists, backend.ErrHashMismatch,
		backend.ErrInvalidName, backend.ErrPermission, backend.ErrNoSpace, context.Canceled} {
		t.Run(perm.Error(), func(t *testing.T) {
			m := mem.New()
			calls := 0
			m.SetFault(func(string, backend.Handle) error { calls++; return fmt.Errorf("storage says: %w", perm) })
			be := newRetry(m, nil)
			_, err := be.Stat(context.Background(), backend.Handle{Type: backend.Config, Name: "config"})
			if !errors.Is(err, perm) || calls != 1 {
				t.Fatalf("got %v after %d calls, want %v after 1", err, calls, perm)
			}
		})
	}
}

func TestCallbackErrorsNotRetried(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	data := []byte("x")
	h := backend.Handle{Type: backend.Index, Name: backend.NameOf(data)}
	if err := m.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	be := newRetry(m, nil)
	mine := errors.New("callback refuses")
	calls := 0
	err := be.Load(ctx, h, 0, 0, func(io.Reader) error { calls++; return mine })
	if !errors.Is(err, mine) || calls != 1 {
		t.Fatalf("load: got %v after %d calls", err, calls)
	}
	calls = 0
	err = be.List(ctx, backend.Index, func(backend.FileInfo) error { calls++; return mine })
	if !errors.Is(err, mine) || calls != 1 {
		t.Fatalf("list: got %v after %d calls", err, calls)
	}
}

func TestCancelStopsWaiting(t *testing.T) {
	m := mem.New()
	failN(m, mem.OpStat, 100)
	ctx, cancel := context.WithCancel(context.Background())
	be := retry.New(m, retry.Options{Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}})
	_, err := be.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestRangePastEndNotRetried(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	data := []byte("0123456789")
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
	if err := m.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	be := newRetry(m, &slept)
	err := be.Load(ctx, h, 5, 8, func(rd io.Reader) error { _, err := io.ReadAll(rd); return err })
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(slept) != 0 {
		t.Fatalf("got %v after %d retries, want io.ErrUnexpectedEOF at once", err, len(slept))
	}
}
