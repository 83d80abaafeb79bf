package rest

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/cairnbackup/cairn/internal/ratelimit"
)

// Config locates a repository on a REST server.
type Config struct {
	// URL is the repository's base URL, with credentials in its user info.
	URL *url.URL
	// Insecure allows plain http:// to a host that is not loopback.
	Insecure bool
	// Connections is the number of concurrent requests; default 5.
	Connections int
	// RootCAs, when set, are the only certificate authorities an https://
	// server's certificate may chain to (--cacert); nil: the system's.
	RootCAs *x509.CertPool
	// Limits pace what is sent and received (--limit-upload,
	// --limit-download); the zero value is unlimited.
	Limits ratelimit.Limits
}

// ParseURL parses "rest:http[s]://[user:pass@]host[:port]/path" (the rest:
// prefix is optional) into a base URL with a trailing slash.
func ParseURL(loc string) (*url.URL, error) {
	s := strings.TrimPrefix(loc, "rest:")
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("rest location %q: %w", redact(loc), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("rest location %q: scheme must be http or https", redact(loc))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("rest location %q: no host", redact(loc))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("rest location %q: no query or fragment allowed", redact(loc))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

func redact(loc string) string {
	s := strings.TrimPrefix(loc, "rest:")
	if u, err := url.Parse(s); err == nil {
		return Redacted(u)
	}
	return "rest:…"
}

// Redacted is u as a string with its password, if any, shown as "***".
func Redacted(u *url.URL) string {
	if u == nil {
		return ""
	}
	if _, has := u.User.Password(); has {
		// url escapes "*" in userinfo: mark the spot, then replace it.
		c := *u
		c.User = url.UserPassword(u.User.Username(), "xxxxx")
		return strings.Replace(c.String(), ":xxxxx@", ":***@", 1)
	}
	return u.String()
}

// ErrInsecure refuses plain HTTP to a remote host.
var ErrInsecure = errors.New("refusing plain http:// to a remote host")

// checkTransport enforces R21's transport half.
func (c Config) checkTransport() error {
	if c.URL.Scheme == "https" || c.Insecure || isLoopback(c.URL.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w %s: the password and data would cross the network unencrypted; use https:// (cairn server run --tls-cert/--tls-key), or pass --insecure if the network is trusted", ErrInsecure, c.URL.Host)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
