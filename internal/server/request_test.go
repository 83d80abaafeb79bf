package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/cairnbackup/cairn/internal/server/repohttp"
)

// testRequest is a request answered into rec, logging nowhere.
func testRequest(rec *httptest.ResponseRecorder, r *http.Request) *request {
	return &request{Request: &repohttp.Request{W: &repohttp.StatusWriter{ResponseWriter: rec}, R: r, Log: slog.New(slog.DiscardHandler)}}
}
