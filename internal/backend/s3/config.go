package s3

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/ratelimit"
)

// Config says where a repository lives and how to reach it.
type Config struct {
	Endpoint string // host[:port]
	Secure   bool   // https
	Bucket   string
	Prefix   string // a key prefix without leading or trailing slash; may be empty

	Region       string // empty: ask the server
	BucketLookup string // "auto" (default), "path" or "dns"
	CAFile       string // PEM file of extra trusted CAs for https

	// KeyID and Secret are the credentials; when KeyID is empty they come
	// from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then
	// from the shared credentials file (~/.aws/credentials, AWS_PROFILE).
	KeyID, Secret, SessionToken string

	// Connections bounds concurrent connections to the server; default 5.
	Connections int
	// PartSize is the size of multipart upload parts; files up to it go in
	// one PUT. Default 64 MiB, above cairn's largest pack.
	PartSize uint64

	// Limits pace what is sent and received (--limit-upload,
	// --limit-download); the zero value is unlimited.
	Limits ratelimit.Limits

	// Now is the clock leases use; default time.Now.
	Now func() time.Time
}

// Location is a description of the repository without secrets.
func (c Config) Location() string {
	scheme := "http"
	if c.Secure {
		scheme = "https"
	}
	loc := "s3:" + scheme + "://" + c.Endpoint + "/" + c.Bucket
	if c.Prefix != "" {
		loc += "/" + c.Prefix
	}
	return loc
}

// ParseURL parses s3:http[s]://host[:port]/bucket[/prefix][?options]. The
// options are region=, bucket-lookup=path|dns|auto, ca=FILE and
// connections=N. The environment supplies defaults: AWS_DEFAULT_REGION (or
// AWS_REGION) and CAIRN_S3_CA_FILE.
func ParseURL(s string) (Config, error) {
	rest, ok := strings.CutPrefix(s, "s3:")
	if !ok {
		return Config{}, fmt.Errorf("s3 location %q lacks the s3: scheme", s)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return Config{}, fmt.Errorf("s3 location %q: %w", s, err)
	}
	var cfg Config
	switch u.Scheme {
	case "http":
	case "https":
		cfg.Secure = true
	case "":
		// s3:bucket/x (restic's s3:host/bucket form, or a forgotten host).
		return Config{}, fmt.Errorf("s3 location %q has no server address: write s3:https://HOST[:PORT]/%s (or s3:http:// for a server without TLS)", s, strings.TrimLeft(rest, "/"))
	default:
		return Config{}, fmt.Errorf("s3 location %q: scheme %q is neither http nor https: write s3:http://host[:port]/bucket[/prefix] or s3:https://host/bucket", s, u.Scheme)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("s3 location %q: do not put credentials in the location; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", redact(u))
	}
	if u.Host == "" {
		return Config{}, fmt.Errorf("s3 location %q: no host", s)
	}
	cfg.Endpoint = u.Host
	path := strings.Trim(u.Path, "/")
	cfg.Bucket, cfg.Prefix, _ = strings.Cut(path, "/")
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if cfg.Bucket == "" {
		return Config{}, fmt.Errorf("s3 location %q: no bucket; write s3:%s://%s/BUCKET[/PREFIX]", s, u.Scheme, u.Host)
	}
	if strings.Contains(cfg.Prefix, "//") {
		return Config{}, fmt.Errorf("s3 location %q: empty path segment in prefix", s)
	}
	cfg.Region = os.Getenv("AWS_DEFAULT_REGION")
	if cfg.Region == "" {
		cfg.Region = os.Getenv("AWS_REGION")
	}
	cfg.CAFile = os.Getenv("CAIRN_S3_CA_FILE")
	cfg.BucketLookup = "auto"
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "region":
			cfg.Region = v
		case "bucket-lookup":
			if v != "auto" && v != "path" && v != "dns" {
				return Config{}, fmt.Errorf("s3 location %q: bucket-lookup=%q, want path, dns or auto", s, v)
			}
			cfg.BucketLookup = v
		case "ca":
			cfg.CAFile = v
		case "connections":
			var n int
			if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 1 || n > 256 {
				return Config{}, fmt.Errorf("s3 location %q: connections=%q, want a number from 1 to 256", s, v)
			}
			cfg.Connections = n
		default:
			return Config{}, fmt.Errorf("s3 location %q: unknown option %q (known: region, bucket-lookup, ca, connections)", s, k)
		}
	}
	return cfg, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return "s3:" + c.String()
}
