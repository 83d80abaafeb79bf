// Package s3 stores a repository in an S3-compatible object store (AWS S3,
// MinIO, Ceph RGW, B2) through minio-go.
//
// Layout under the location's prefix P (which may be empty):
//
//	P/config          the repository's config (fixed name)
//	P/<type>/<name>   every other file, named by the SHA-256 of its bytes
//	P/data/<name>     packs: not sharded, unlike the local layout; object
//	                  stores have no directories to keep small
//	P/leases/<repo>   coordination leases (see AcquireLease); not a file type
//	P/created         an empty marker: a server created the repository and
//	                  its config is not written yet (see Exists)
//
// A server keeps every repository it stores under one root prefix R, each
// at R/<client>/<repository> (Connect for the root, Sub for each one); they
// share the root's client and connection limit.
//
// A Save is one PUT with If-None-Match: * (write-once: a second Save of the
// name fails with backend.ErrExists, and of racing Saves exactly one wins).
// Files above Config.PartSize (64 MiB by default, above any pack) go by
// multipart upload, completed with the same condition. The bytes are hashed
// while they are sent and the last of them are held back until the hash and
// the length are checked: a reader that fails, ends early, runs long, or
// whose bytes do not hash to the name (backend.ErrHashMismatch) cuts the
// request before its end, so the server discards it (an unfinished multipart
// upload is aborted) and nothing becomes visible. A single PUT also carries
// x-amz-checksum-sha256 of the name, so the server refuses bytes damaged
// after that check.
//
// If a server refuses conditional writes (NotImplemented), Saves fall back to
// Stat followed by PUT: write-once against sequential writers, but two
// racing writers of one name may both succeed. For content-named files
// both carry the same verified bytes; for config the repository code
// creates it once, at init.
//
// Remove Stats first, as S3's DELETE succeeds for a missing key. Load is a
// ranged GET; a range past the end is io.ErrUnexpectedEOF. List pages
// through P/<type>/ and skips keys that are not valid names.
//
// Errors map to backend sentinels: NoSuchKey and NoSuchBucket to
// ErrNotFound (the message says which), InvalidAccessKeyId,
// SignatureDoesNotMatch and AccessDenied to ErrPermission, naming the access
// key ID and never the secret; PreconditionFailed to ErrExists. Everything
// else (connection errors, 5xx, a server that is starting) is left for the
// retry decorator, which package location wraps around this backend. The
// minio-go client is told not to retry itself, so there is one policy.
//
// Credentials come from Config, else AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN, else the shared credentials file.
package s3
