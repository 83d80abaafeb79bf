package replication

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/server/state"
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
	}{
		{"usb", filepath.Join(dir, "usb"), "", "", ""},
		{"bad/name", filepath.Join(dir, "usb"), "", "", "destination name"},
		{"in", filepath.Join(data, "repos"), "", "", "overlaps the server's data directory"},
		{"above", dir, "", "", "overlaps the server's data directory"},
		{"store", "/srv/store/replicas", "", "/srv/store", "overlaps the server's storage"},
		{"sibling", "/srv/store2", "", "/srv/store", ""},
		{"dircreds", filepath.Join(dir, "usb"), pw, "", "a directory needs none"},
		{"s3", "s3:http://127.0.0.1:9000/b/replicas", aws, "", ""},
		{"s3same", "s3:http://127.0.0.1:9000/b/site/x", "", "s3:http://127.0.0.1:9000/b/site", "overlaps the server's storage"},
		{"s3other", "s3:http://127.0.0.1:9000/b/site2", "", "s3:http://127.0.0.1:9000/b/site", ""},
		{"s3badcreds", "s3:http://127.0.0.1:9000/b", empty, "", "aws_access_key_id"},
		{"s3nocreds", "s3:http://127.0.0.1:9000/b", filepath.Join(dir, "missing"), "", "--credentials-file"},
		{"rest", "rest:https://alice@far.example/alice", pw, "", ""},
		{"restpw", "rest:https://alice:pw@far.example/alice", "", "", "holds a password"},
		{"restempty", "rest:https://alice@far.example/alice", empty, "", "password on its first line"},
		{"ftp", "ftp://x/y", "", "", "unknown backend"},
	} {
		d, err := CheckDestination(state.Destination{Name: c.name, Location: c.loc, CredentialsFile: c.creds}, data, c.storage)
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
	d, err := CheckDestination(state.Destination{Name: "rel", Location: "rel/usb"}, data, "")
	if err != nil || !filepath.IsAbs(d.Location) {
		t.Fatalf("relative location: %+v %v", d, err)
	}
}
