// Package location turns a repository location string into a backend. It
// is the one place that lists the backends and assembles their decorators:
//
//	/path/to/repo, ./repo, local:PATH        package local
//	s3:http[s]://host[:port]/bucket[/prefix] package s3, behind package retry
//	rest:http[s]://user:pass@host[:port]/path package rest, behind package retry
//
// A location with another scheme is refused with a message listing these.
// A relative path holding a colon must be written ./a:b.
package location

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/backend/retry"
	"github.com/cairnbackup/cairn/internal/backend/s3"
	"github.com/cairnbackup/cairn/internal/ratelimit"
)

// Kind names a backend.
type Kind string

// The backends.
const (
	Local Kind = "local"
	S3    Kind = "s3"
	Rest  Kind = "rest"
)

// Location is a parsed repository location.
type Location struct {
	Kind Kind
	Path string      // Local
	S3   s3.Config   // S3
	Rest rest.Config // Rest
}

// ErrUnsupported is wrapped by errors for schemes this build cannot use.
var ErrUnsupported = errors.New("unsupported repository location")

var schemeRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*):`)

// Parse parses loc.
func Parse(loc string) (Location, error) {
	if loc == "" {
		return Location{}, errors.New("empty repository location")
	}
	m := schemeRE.FindStringSubmatch(loc)
	if m == nil {
		return Location{Kind: Local, Path: loc}, nil
	}
	switch m[1] {
	case "local":
		return Location{Kind: Local, Path: strings.TrimPrefix(loc, "local:")}, nil
	case "s3":
		if err := checkS3Form(loc); err != nil {
			return Location{}, err
		}
		cfg, err := s3.ParseURL(loc)
		if err != nil {
			return Location{}, err
		}
		return Location{Kind: S3, S3: cfg}, nil
	case "rest":
		u, err := rest.ParseURL(loc)
		if err != nil {
			return Location{}, err
		}
		return Location{Kind: Rest, Rest: rest.Config{URL: u}}, nil
	}
	return Location{}, fmt.Errorf("repository %q: unknown backend %q; use a directory (a path, or local:PATH; write ./%s for a relative path with a colon) s3:http[s]://host[:port]/bucket[/prefix], or rest:http[s]://user:pass@host[:port]/path: %w", Redact(loc), m[1]+":", Redact(loc), ErrUnsupported)
}

// checkS3Form refuses the S3 locations restic and the AWS CLI accept but
// cairn does not, naming the form to write instead: restic's
// s3:HOST[:PORT]/BUCKET (cairn needs the scheme, so that plain http is
// never a guess) and the AWS CLI's s3://BUCKET/PREFIX (which names no
// server). s3:http[s]://… and anything else go to s3.ParseURL.
func checkS3Form(loc string) error {
	rest := strings.TrimPrefix(loc, "s3:")
	if strings.HasPrefix(rest, "http://") || strings.HasPrefix(rest, "https://") {
		return nil
	}
	if path, ok := strings.CutPrefix(rest, "//"); ok {
		return fmt.Errorf("s3 location %q is the AWS CLI's form, which names no server: write s3:https://HOST/%s, e.g. s3:https://s3.amazonaws.com/%s for AWS (see docs/s3.md)", Redact(loc), path, path)
	}
	host, path, _ := strings.Cut(rest, "/")
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		// Not a host name: s3:BUCKET[/PREFIX] without a server.
		return fmt.Errorf("s3 location %q has no server address: write s3:https://HOST[:PORT]/%s (s3:http:// for a server without TLS; see docs/s3.md)", Redact(loc), strings.TrimLeft(rest, "/"))
	}
	if strings.Contains(host, "@") {
		// Not printed: the part before "@" may be a secret.
		return errors.New("s3 location: do not put credentials in the location; write s3:https://HOST[:PORT]/BUCKET[/PREFIX] and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if path == "" {
		path = "BUCKET[/PREFIX]"
	}
	return fmt.Errorf("s3 location %q is restic's form; cairn needs the scheme: write s3:https://%s/%s (s3:http://%s/%s for a server without TLS; see docs/s3.md)", Redact(loc), host, path, host, path)
}

// userinfoRE finds the password of a URL's userinfo: "//user:password@".
// It matches also where the URL does not parse, and up to the last "@"
// before the path, as a URL parser reads it.
var userinfoRE = regexp.MustCompile(`(//[^/?#:@]*):[^/?#]*@`)

// Redact returns loc fit to print: any password in it shown as "***"
// (a rest: URL carries its tenant's credentials). Every message, log line
// and help text that shows a location shows Redact's.
func Redact(loc string) string {
	return userinfoRE.ReplaceAllString(loc, "$1:***@")
}

// Options configure the decorators.
type Options struct {
	Logger *slog.Logger
	Retry  retry.Options
	// Insecure allows plain http:// to a REST server that is not on
	// loopback (R21).
	Insecure bool
	// RootCAs, when set, replace the system's certificate authorities
	// for an https:// REST server (--cacert).
	RootCAs *x509.CertPool
	// Limits pace the bytes sent to and received from an s3: or rest:
	// repository (--limit-upload, --limit-download); a directory is not
	// limited.
	Limits ratelimit.Limits
}

// Open opens the existing repository at loc.
func Open(ctx context.Context, loc string, opts Options) (backend.Backend, error) {
	l, err := Parse(loc)
	if err != nil {
		return nil, err
	}
	switch l.Kind {
	case S3:
		l.S3.Limits = opts.Limits
		be, err := s3.Open(ctx, l.S3)
		if err != nil {
			return nil, err
		}
		return Decorate(be, opts), nil
	case Rest:
		l.Rest.Insecure = opts.Insecure
		l.Rest.RootCAs = opts.RootCAs
		l.Rest.Limits = opts.Limits
		be, err := rest.Open(ctx, l.Rest)
		if err != nil {
			return nil, err
		}
		return Decorate(be, opts), nil
	}
	return local.Open(l.Path)
}

// Create makes the storage of a new repository at loc (for S3 the bucket,
// if missing) and returns its backend; the caller saves the config.
func Create(ctx context.Context, loc string, opts Options) (backend.Backend, error) {
	l, err := Parse(loc)
	if err != nil {
		return nil, err
	}
	switch l.Kind {
	case S3:
		l.S3.Limits = opts.Limits
		be, err := s3.Create(ctx, l.S3)
		if err != nil {
			return nil, err
		}
		return Decorate(be, opts), nil
	case Rest:
		l.Rest.Insecure = opts.Insecure
		l.Rest.RootCAs = opts.RootCAs
		l.Rest.Limits = opts.Limits
		be, err := rest.Create(ctx, l.Rest)
		if err != nil {
			return nil, err
		}
		return Decorate(be, opts), nil
	}
	return local.Create(ctx, l.Path)
}

// Decorate wraps a remote backend in its decorators; Open and Create use
// it, and so does a server for each repository it stores in a bucket. A
// local directory gets none: its failures are not transient.
func Decorate(be backend.Backend, opts Options) backend.Backend {
	ro := opts.Retry
	if ro.Logger == nil {
		ro.Logger = opts.Logger
	}
	return retry.New(be, ro)
}
