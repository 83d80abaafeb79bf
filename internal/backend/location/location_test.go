package location_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend/location"
)

func TestParse(t *testing.T) {
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("CAIRN_S3_CA_FILE", "")
	tests := []struct {
		in      string
		kind    location.Kind
		path    string
		where   string // s3 Location()
		wantErr bool
	}{
		{in: "/srv/repo", kind: location.Local, path: "/srv/repo"},
		{in: "repo", kind: location.Local, path: "repo"},
		{in: "./a:b", kind: location.Local, path: "./a:b"},
		{in: "local:/srv/repo", kind: location.Local, path: "/srv/repo"},
		{in: "s3:http://127.0.0.1:9000/bucket", kind: location.S3, where: "s3:http://127.0.0.1:9000/bucket"},
		{in: "s3:https://s3.example.com/bucket/a/b/", kind: location.S3, where: "s3:https://s3.example.com/bucket/a/b"},
		{in: "s3:http://h/b?region=eu-west-1&bucket-lookup=path", kind: location.S3, where: "s3:http://h/b"},
		{in: "s3:http://h", wantErr: true},
		{in: "s3:http://h/", wantErr: true},
		{in: "s3:ftp://h/b", wantErr: true},
		{in: "s3:http://key:secret@h/b", wantErr: true},
		{in: "s3:http://h/b?bucket-lookup=maybe", wantErr: true},
		{in: "s3:http://h/b?color=blue", wantErr: true},
		{in: "rest:ftp://h/", wantErr: true},
		{in: "sftp:host:/repo", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, err := location.Parse(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parsed to %+v, want an error", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Kind != tt.kind || l.Path != tt.path || (tt.kind == location.S3 && l.S3.Location() != tt.where) {
				t.Fatalf("got %+v (%s)", l, l.S3.Location())
			}
		})
	}
}

func TestS3Options(t *testing.T) {
	t.Setenv("AWS_DEFAULT_REGION", "us-west-2")
	t.Setenv("CAIRN_S3_CA_FILE", "/etc/ca.pem")
	l, err := location.Parse("s3:https://h:9000/b/p?bucket-lookup=dns&connections=12")
	if err != nil {
		t.Fatal(err)
	}
	c := l.S3
	if !c.Secure || c.Endpoint != "h:9000" || c.Bucket != "b" || c.Prefix != "p" || c.Region != "us-west-2" ||
		c.BucketLookup != "dns" || c.CAFile != "/etc/ca.pem" || c.Connections != 12 {
		t.Fatalf("got %+v", c)
	}
	l, err = location.Parse("s3:http://h/b?region=eu-central-1&ca=/x.pem")
	if err != nil || l.S3.Region != "eu-central-1" || l.S3.CAFile != "/x.pem" {
		t.Fatalf("got %+v, %v", l.S3, err)
	}
}

func TestRest(t *testing.T) {
	l, err := location.Parse("rest:http://alice:pw@127.0.0.1:8000/alice/laptop")
	if err != nil || l.Kind != location.Rest || l.Rest.URL.Path != "/alice/laptop/" {
		t.Fatalf("got %+v, %v", l, err)
	}
	if _, err := location.Parse("sftp:h:/r"); !errors.Is(err, location.ErrUnsupported) {
		t.Fatalf("got %v", err)
	}
}

// TestRedact: no password of a location is ever printed.
func TestRedact(t *testing.T) {
	for loc, want := range map[string]string{
		"rest:http://bob:s3cret@127.0.0.1:8000/bob/main": "rest:http://bob:***@127.0.0.1:8000/bob/main",
		"rest:https://bob:p@ss:w@rd@host/bob/":           "rest:https://bob:***@host/bob/",
		"rest:http://bob:s3cret@host:bad port/x":         "rest:http://bob:***@host:bad port/x",
		"rest:http://bob@host/x":                         "rest:http://bob@host/x",
		"foo:http://u:s3cret@host/":                      "foo:http://u:***@host/",
		"/srv/backup":                                    "/srv/backup",
		"s3:https://minio.example:9000/bucket/prefix":    "s3:https://minio.example:9000/bucket/prefix",
		"rest:http://bob:s3cret@host/a?b=c:d@e":          "rest:http://bob:***@host/a?b=c:d@e",
	} {
		if got := location.Redact(loc); got != want {
			t.Errorf("Redact(%q) = %q, want %q", loc, got, want)
		}
	}
	_, err := location.Parse("foo:http://u:s3cret@host/")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("unknown scheme error shows the password: %v", err)
	}
}

// TestParseForeignS3Forms: the S3 locations restic and the AWS CLI take
// are refused with the form to write instead, never misread (a host taken
// for a bucket, a port for a scheme), and a secret in one is not echoed.
func TestParseForeignS3Forms(t *testing.T) {
	tests := []struct{ in, want string }{
		{"s3:s3.amazonaws.com/bkt", "write s3:https://s3.amazonaws.com/bkt (s3:http://s3.amazonaws.com/bkt for a server without TLS"},
		{"s3:s3.amazonaws.com/bkt/a/b", "write s3:https://s3.amazonaws.com/bkt/a/b "},
		{"s3:host:9000/bkt", "write s3:https://host:9000/bkt (s3:http://host:9000/bkt"},
		{"s3:localhost/bkt", "write s3:https://localhost/bkt "},
		{"s3:minio.lan:9000", "write s3:https://minio.lan:9000/BUCKET[/PREFIX] "},
		{"s3://bkt/prefix", "AWS CLI's form, which names no server: write s3:https://HOST/bkt/prefix, e.g. s3:https://s3.amazonaws.com/bkt/prefix"},
		{"s3:bkt/prefix", "has no server address: write s3:https://HOST[:PORT]/bkt/prefix"},
		{"s3:key:hunter2@host:9000/bkt", "do not put credentials in the location"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, err := location.Parse(tt.in)
			if err == nil {
				t.Fatalf("parsed to %+v, want an error", l)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the secret", err)
			}
		})
	}
	// The forms restic and cairn share still parse.
	for _, in := range []string{"s3:https://s3.amazonaws.com/bkt", "s3:http://host:9000/bkt/p", "s3:https://host:9000/bkt"} {
		if _, err := location.Parse(in); err != nil {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
}
