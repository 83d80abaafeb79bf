package replication

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/server/state/policy"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

func TestCheckDestination(t *testing.T) {
	dir := t.TempDir()
	aws := filepath.Join(dir, "aws")
	os.WriteFile(aws, []byte("[default]\naws_access_key_id = K\naws_secret_access_key = S\n"), 0o600)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	data := filepath.Join(dir, "data")
	for _, c := range []struct {
		name, loc, creds, storage string
		wantErr                   string
		fp                        string // --server-fingerprint
		keep                      bool   // a retention policy
	}{
		{"usb", filepath.Join(dir, "usb"), "", "", "", "", false},
		{"bad/name", filepath.Join(dir, "usb"), "", "", "destination name", "", false},
		{"in", filepath.Join(data, "repos"), "", "", "overlaps the server's data directory", "", false},
		{"above", dir, "", "", "overlaps the server's data directory", "", false},
		{"store", "/srv/store/replicas", "", "/srv/store", "overlaps the server's storage", "", false},
		{"sibling", "/srv/store2", "", "/srv/store", "", "", false},
		{"dircreds", filepath.Join(dir, "usb"), pw, "", "a directory needs none", "", false},
		{"s3", "s3:http://127.0.0.1:9000/b/replicas", aws, "", "", "", false},
		{"s3same", "s3:http://127.0.0.1:9000/b/site/x", "", "s3:http://127.0.0.1:9000/b/site", "overlaps the server's storage", "", false},
		{"s3other", "s3:http://127.0.0.1:9000/b/site2", "", "s3:http://127.0.0.1:9000/b/site", "", "", false},
		{"s3badcreds", "s3:http://127.0.0.1:9000/b", empty, "", "aws_access_key_id", "", false},
		{"s3nocreds", "s3:http://127.0.0.1:9000/b", filepath.Join(dir, "missing"), "", "--credentials-file", "", false},
		{"rest", "rest:https://alice@far.example/alice", pw, "", "", "SHA256:ab", false},
		{"restnofp", "rest:https://alice@far.example/alice", pw, "", "--server-fingerprint is required", "", false},
		{"restkeep", "rest:https://alice@far.example/alice", pw, "", "keeps every snapshot", "SHA256:ab", true},
		{"restpw", "rest:https://alice:pw@far.example/alice", "", "", "holds a password", "SHA256:ab", false},
		{"restempty", "rest:https://alice@far.example/alice", empty, "", "password on its first line", "SHA256:ab", false},
		{"ftp", "ftp://x/y", "", "", "unknown backend", "", false},
	} {
		in := replicas.Destination{Name: c.name, Location: c.loc, CredentialsFile: c.creds, ServerFingerprint: c.fp}
		if c.keep {
			p := policy.DefaultPolicy()
			p.Keep.Last = 1
			in.Retention = &p
		}
		d, err := CheckDestination(in, data, c.storage)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.wantErr)
		case err == nil && c.creds != "" && !filepath.IsAbs(d.CredentialsFile):
			t.Errorf("%s: credentials file %q not absolute", c.name, d.CredentialsFile)
		}
	}
	// A relative directory is recorded absolute.
	d, err := CheckDestination(replicas.Destination{Name: "rel", Location: "rel/usb"}, data, "")
	if err != nil || !filepath.IsAbs(d.Location) {
		t.Fatalf("relative location: %+v %v", d, err)
	}
}
