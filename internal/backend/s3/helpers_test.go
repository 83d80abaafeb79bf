package s3_test

import (
	"context"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnbackup/cairn/internal/minioserver"
)

// removeBucket removes an empty bucket behind the backend's back.
func removeBucket(srv *minioserver.Server, bucket string) error {
	c, err := minio.New(srv.Addr(), &minio.Options{Creds: credentials.NewStaticV4(minioserver.AccessKey, minioserver.SecretKey, "")})
	if err != nil {
		return err
	}
	return c.RemoveBucket(context.Background(), bucket)
}
