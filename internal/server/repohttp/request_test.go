package repohttp

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

// TestFailNamesItsFile: a failure names the file the request is about,
// and a request about none (a writer list, an owner request, a session)
// says what failed without an empty "/" where a file would be.
func TestFailNamesItsFile(t *testing.T) {
	missing := fmt.Errorf("no repository bob/repo: %w", backend.ErrNotFound)
	for _, tt := range []struct {
		h    backend.Handle
		what string
		want string
	}{
		{backend.Handle{}, "writer list", "writer list: no repository bob/repo: "},
		{backend.Handle{Type: backend.Data, Name: "0123abcd"}, "load", "load data/0123abcd: no repository bob/repo: "},
		{backend.Handle{Type: backend.Config}, "stat", "stat config: no repository bob/repo: "},
	} {
		rec := httptest.NewRecorder()
		q := NewRequest(rec, httptest.NewRequest("GET", "/bob/repo/", nil), slog.New(slog.DiscardHandler), BodyRate{})
		q.Path.Handle = tt.h
		q.Fail(tt.what, missing)
		body, _ := io.ReadAll(rec.Result().Body)
		if rec.Code != 404 || !strings.HasPrefix(string(body), tt.want) {
			t.Errorf("%v: %d %q, want 404 %q…", tt.h, rec.Code, body, tt.want)
		}
	}
}
