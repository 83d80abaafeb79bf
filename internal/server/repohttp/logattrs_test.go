package repohttp

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRequestLogLines: a request's logger writes exactly the lines the
// eager logger (slog's With of the same attributes) wrote, text and
// JSON, through further With and WithGroup, and nothing below its level.
func TestRequestLogLines(t *testing.T) {
	long := "/alice/" + strings.Repeat("x", 600)
	for _, format := range []string{"text", "json"} {
		for _, path := range []string{"/alice/repo/data/0123", long} {
			var lazyOut, eagerOut bytes.Buffer
			newHandler := func(b *bytes.Buffer) slog.Handler {
				opts := &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey && len(groups) == 0 {
						return slog.Attr{} // the two loggers write at different times
					}
					return a
				}}
				if format == "json" {
					return slog.NewJSONHandler(b, opts)
				}
				return slog.NewTextHandler(b, opts)
			}
			r := httptest.NewRequest("HEAD", path, nil)
			r.RemoteAddr = "192.0.2.7:4242"
			q := NewRequest(httptest.NewRecorder(), r, slog.New(newHandler(&lazyOut)), BodyRate{})
			eager := slog.New(newHandler(&eagerOut)).With("req", q.ID, "method", "HEAD", "path", Shorten(path, 512), "remote", "192.0.2.7:4242")
			for _, l := range []*slog.Logger{q.Log, eager} {
				l.Debug("not written", "k", 1)
				l.Info("first", "client", "alice", "status", 200)
				u := l.With("user", "alice")
				u.Warn("refused", "code", "auth")
				u.With().WithGroup("").With("n", 3).Info("more", "x", true)
				u.WithGroup("g").Info("grouped", "y", "z")
				l.Error("after", "err", "boom")
			}
			got, want := lazyOut.String(), eagerOut.String()
			if got != want {
				t.Fatalf("%s %.20s: lines\n%s\nwant\n%s", format, path, got, want)
			}
			if n := strings.Count(got, "\n"); n != 5 {
				t.Fatalf("%s: %d lines, want 5:\n%s", format, n, got)
			}
			for _, attr := range []string{q.ID, "HEAD", "192.0.2.7:4242", "alice", Shorten(path, 512)} {
				if strings.Count(got, attr) < 5 {
					t.Fatalf("%s: %q not on every line:\n%s", format, attr, got)
				}
			}
		}
	}
}

// TestRequestLogEnabled: the request's logger asks its base whether a
// level is written.
func TestRequestLogEnabled(t *testing.T) {
	base := slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})
	q := NewRequest(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), slog.New(base), BodyRate{})
	ctx := context.Background()
	if q.Log.Enabled(ctx, slog.LevelInfo) || !q.Log.Enabled(ctx, slog.LevelWarn) {
		t.Fatal("the request's logger does not follow its base's level")
	}
}
