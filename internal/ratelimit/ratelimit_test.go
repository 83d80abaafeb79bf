package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// virtualClock is a clock that moves only when slept on.
type virtualClock struct {
	now   time.Time
	slept time.Duration
}

func (c *virtualClock) Now() time.Time { return c.now }

func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.slept += d
	c.now = c.now.Add(d)
	return nil
}

func newVirtual(rate int64) (*Limiter, *virtualClock) {
	c := &virtualClock{now: time.Unix(1e9, 0)}
	return NewWithClock(rate, c.Now, c.Sleep), c
}

func TestLimiterPacesToTheRate(t *testing.T) {
	l, c := newVirtual(1000)
	r := l.Reader(context.Background(), bytes.NewReader(make([]byte, 5000)))
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != 5000 {
		t.Fatal(n, err)
	}
	// 1000 bytes of burst, then 4000 bytes at 1000 B/s.
	if c.slept < 3900*time.Millisecond || c.slept > 4100*time.Millisecond {
		t.Fatalf("slept %v for 5000 bytes at 1000 B/s with a 1000-byte burst, want about 4s", c.slept)
	}
	// Idle time refills the bucket up to the burst, no further.
	c.now = c.now.Add(time.Hour)
	before := c.slept
	io.Copy(io.Discard, l.Reader(context.Background(), bytes.NewReader(make([]byte, 3000))))
	if got := c.slept - before; got < 1900*time.Millisecond || got > 2100*time.Millisecond {
		t.Fatalf("after an idle hour 3000 bytes slept %v, want about 2s (the burst is one second's worth)", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l2, _ := newVirtual(1)
	if _, err := io.Copy(io.Discard, l2.Reader(ctx, bytes.NewReader(make([]byte, 100)))); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled copy was not stopped: %v", err)
	}
}

// TestLimiterSharedAcrossReaders: two streams on one limiter share its
// rate rather than getting one each.
func TestLimiterSharedAcrossReaders(t *testing.T) {
	l, c := newVirtual(1000)
	a := l.Reader(context.Background(), bytes.NewReader(make([]byte, 3000)))
	b := l.Reader(context.Background(), bytes.NewReader(make([]byte, 3000)))
	buf := make([]byte, 500)
	for {
		na, _ := a.Read(buf)
		nb, _ := b.Read(buf)
		if na == 0 && nb == 0 {
			break
		}
	}
	if c.slept < 4900*time.Millisecond || c.slept > 5100*time.Millisecond {
		t.Fatalf("6000 bytes over two readers slept %v, want about 5s", c.slept)
	}
}

// TestTransportPacesBothDirections: Limits.Transport paces what is sent
// (request bodies) with Upload and what is received with Download.
func TestTransportPacesBothDirections(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n != 4000 {
			http.Error(w, "short body", http.StatusBadRequest)
			return
		}
		w.Write(make([]byte, 9000))
	}))
	defer srv.Close()
	up, upc := newVirtual(1000)
	down, downc := newVirtual(3000)
	hc := &http.Client{Transport: Limits{Upload: up, Download: down}.Transport(http.DefaultTransport)}
	resp, err := hc.Post(srv.URL, "application/octet-stream", bytes.NewReader(make([]byte, 4000)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 9000 || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d bytes, %v, %s", n, err, resp.Status)
	}
	if upc.slept < 2900*time.Millisecond || upc.slept > 3100*time.Millisecond {
		t.Errorf("upload of 4000 bytes at 1000 B/s slept %v, want about 3s", upc.slept)
	}
	if downc.slept < 1900*time.Millisecond || downc.slept > 2100*time.Millisecond {
		t.Errorf("download of 9000 bytes at 3000 B/s slept %v, want about 2s", downc.slept)
	}
	if rt := (Limits{}).Transport(http.DefaultTransport); rt != http.DefaultTransport {
		t.Error("no limits still wrapped the transport")
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"20MiB/s": 20 << 20, "20MiB": 20 << 20, "500KiB/s": 500 << 10, "1.5M": 3 << 19, "2G/s": 2 << 30, "100B/s": 100} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1024", "0MiB/s", "fast", "-1MiB/s", "20MiB/h"} {
		if _, err := ParseRate(in); !errors.Is(err, ErrRate) {
			t.Errorf("ParseRate(%q): %v, want ErrRate", in, err)
		} else if in == "1024" && !strings.Contains(err.Error(), "give a unit") {
			t.Errorf("a bare number's error does not ask for a unit: %v", err)
		}
	}
}
