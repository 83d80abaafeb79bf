package repohttp

import (
	"strings"
	"testing"
)

func TestMethodLabel(t *testing.T) {
	for m, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "DELETE": "DELETE",
		"PUT": "other", "get": "other", "": "other", strings.Repeat("X", 1<<20): "other",
	} {
		if got := MethodLabel(m); got != want {
			t.Errorf("MethodLabel(%.10q) = %q, want %q", m, got, want)
		}
	}
}
