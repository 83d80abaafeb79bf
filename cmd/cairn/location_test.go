package main

import "testing"

// TestForeignS3Locations: restic's and the AWS CLI's S3 locations get an
// error naming the form to write instead (docs/s3.md), before any
// network access.
func TestForeignS3Locations(t *testing.T) {
	c := newCLI(t)
	for loc, want := range map[string]string{
		"s3:s3.amazonaws.com/bkt": "is restic's form; cairn needs the scheme: write s3:https://s3.amazonaws.com/bkt",
		"s3:host:9000/bkt/laptop": "write s3:https://host:9000/bkt/laptop (s3:http://host:9000/bkt/laptop for a server without TLS",
		"s3://bkt/laptop":         "write s3:https://HOST/bkt/laptop",
		"s3:bkt":                  "has no server address: write s3:https://HOST[:PORT]/bkt",
	} {
		c.fails(exitFailed, want, "-r", loc, "snapshots")
		c.fails(exitFailed, want, "-r", loc, "init")
	}
}
