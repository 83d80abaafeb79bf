package s3_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/s3"
	"github.com/cairnbackup/cairn/internal/minioserver"
)

// readOnly is a session policy that may read the bucket "perm" and nothing
// else.
const readOnly = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
 "Action":["s3:GetObject","s3:ListBucket","s3:GetBucketLocation"],
 "Resource":["arn:aws:s3:::perm","arn:aws:s3:::perm/*"]}]}`

// TestNoPermission uses temporary credentials (with a session token, from
// the environment, as AWS_SESSION_TOKEN users have them) whose policy only
// reads: opening works, writing fails with ErrPermission naming the key.
func TestNoPermission(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	cfg := config(srv, "perm", "")
	be := create(t, cfg)
	if err := be.Save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, backend.NewByteReader([]byte("c"))); err != nil {
		t.Fatal(err)
	}

	sts, err := credentials.NewSTSAssumeRole(srv.Endpoint(), credentials.STSAssumeRoleOptions{
		AccessKey: minioserver.AccessKey, SecretKey: minioserver.SecretKey, Policy: readOnly,
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sts.GetWithContext(nil)
	if err != nil {
		t.Fatalf("assume role: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", v.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", v.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", v.SessionToken)
	cfg.KeyID, cfg.Secret = "", ""

	ro, err := s3.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	if _, err := backend.LoadAll(ctx, ro, backend.Handle{Type: backend.Config, Name: "config"}); err != nil {
		t.Fatalf("read with read-only credentials: %v", err)
	}
	data := []byte("k")
	err = ro.Save(ctx, backend.Handle{Type: backend.Keys, Name: backend.NameOf(data)}, backend.NewByteReader(data))
	if !errors.Is(err, backend.ErrPermission) || !strings.Contains(err.Error(), v.AccessKeyID) {
		t.Fatalf("save with read-only credentials: got %v, want ErrPermission naming %s", err, v.AccessKeyID)
	}
	if strings.Contains(err.Error(), v.SecretAccessKey) || strings.Contains(err.Error(), v.SessionToken) {
		t.Fatalf("error reveals a secret: %v", err)
	}
	// Creating another bucket is refused too.
	other := cfg
	other.Bucket = "perm-other"
	if _, err := s3.Create(ctx, other); !errors.Is(err, backend.ErrPermission) {
		t.Fatalf("create bucket with read-only credentials: got %v, want ErrPermission", err)
	}
}

// TestCredentialsFile: without AWS_* variables the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, profile AWS_PROFILE) is used.
func TestCredentialsFile(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	cfg := config(srv, "credfile", "")
	create(t, cfg)
	file := filepath.Join(t.TempDir(), "credentials")
	ini := "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing-here\n\n[backup]\naws_access_key_id = " +
		minioserver.AccessKey + "\naws_secret_access_key = " + minioserver.SecretKey + "\n"
	if err := os.WriteFile(file, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", file)
	cfg.KeyID, cfg.Secret = "", ""
	t.Setenv("AWS_PROFILE", "backup")
	if _, err := s3.Create(ctx, cfg); err != nil {
		t.Fatalf("with profile backup: %v", err)
	}
	t.Setenv("AWS_PROFILE", "")
	if _, err := s3.Create(ctx, cfg); !errors.Is(err, backend.ErrPermission) || !strings.Contains(err.Error(), `"nobody"`) {
		t.Fatalf("with the default profile: got %v, want ErrPermission naming nobody", err)
	}
}
