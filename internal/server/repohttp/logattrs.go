package repohttp

import (
	"context"
	"log/slog"
)

// requestHandler is the handler of a request's logger: it adds the
// request's attributes (ID, method, path, remote address) and any added
// since (Logger.With) to each record it writes, and builds them only
// then. The lines are those of base.WithAttrs(attributes) — the same
// attributes, values and order — but a request that logs nothing (a
// HEAD or GET at level info) no longer pays for formatting them up front
// (issue 17: slog's text and JSON handlers format what With adds at once).
type requestHandler struct {
	base                     slog.Handler
	id, method, path, remote string
	extra                    []slog.Attr // added by With since, in order
}

func (h *requestHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.base.Enabled(ctx, l)
}

func (h *requestHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.materialize().Handle(ctx, r)
}

func (h *requestHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	c.extra = append(h.extra[:len(h.extra):len(h.extra)], as...)
	return &c
}

// WithGroup puts what follows in a group: the attributes so far go
// outside it, as they would have, so they are built now.
func (h *requestHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.materialize().WithGroup(name)
}

// materialize is the base handler with the request's attributes.
func (h *requestHandler) materialize() slog.Handler {
	as := make([]slog.Attr, 0, 4+len(h.extra))
	as = append(as, slog.String("req", h.id), slog.String("method", h.method), slog.String("path", h.path), slog.String("remote", h.remote))
	return h.base.WithAttrs(append(as, h.extra...))
}
