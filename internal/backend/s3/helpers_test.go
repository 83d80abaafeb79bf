package s3_test

import (
	"context"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnbackup/cairn/internal/minioserver"
)

func rawClient(srv *minioserver.Server) (*minio.Client, error) {
	return minio.New(srv.Addr(), &minio.Options{Creds: credentials.NewStaticV4(minioserver.AccessKey, minioserver.SecretKey, "")})
}

// objectETag returns an object's ETag.
func objectETag(srv *minioserver.Server, bucket, key string) (string, error) {
	c, err := rawClient(srv)
	if err != nil {
		return "", err
	}
	info, err := c.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	return info.ETag, err
}

// removeBucket removes an empty bucket behind the backend's back.
func removeBucket(srv *minioserver.Server, bucket string) error {
	c, err := rawClient(srv)
	if err != nil {
		return err
	}
	return c.RemoveBucket(context.Background(), bucket)
}
