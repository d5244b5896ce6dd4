/* s3sign.h - presigned URLs for S3-compatible object stores (AWS S3, MinIO,
 * R2, ...): AWS Signature Version 4, query-string form, UNSIGNED-PAYLOAD,
 * only the host header signed.
 *
 * The steps are exported as well as the final URL, so that a
 * SignatureDoesNotMatch can be debugged by comparing the canonical request
 * and the string to sign with the ones the server reports.
 *
 * Ownership: the request only borrows its strings for the duration of a
 * call; all output goes to caller buffers (NUL-terminated).
 * Errors: -EINVAL malformed or out-of-range input, -ENOSPC buffer too small,
 * -EIO libcrypto failure. */
#ifndef JOBRING_S3SIGN_H
#define JOBRING_S3SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest object key (S3's own limit) and X-Amz-Expires range (7 days max). */
#define S3_KEY_MAX 1024
#define S3_EXPIRES_MAX 604800
/** A buffer this large always holds any s3_presign() URL. */
#define S3_URL_MAX 5120

struct s3_presign_req {
	const char *method;     /* "GET", "PUT", ...: 1..16 uppercase letters */
	const char *endpoint;   /* "http[s]://host[:port]", optional trailing '/';
				 * a default port (:80 / :443) is dropped */
	const char *bucket;     /* 3..63 of [a-z0-9.-_] */
	const char *key;        /* object key, unencoded, 1..S3_KEY_MAX bytes;
				 * encoded per AWS rules, '/' kept */
	const char *region;     /* e.g. "us-east-1": 1..32 of [a-z0-9-] */
	const char *access_key; /* 1..128 printable ASCII, no space */
	const char *secret_key; /* 1..128 bytes */
	int64_t time;           /* signing time, UTC seconds since the epoch */
	int64_t expires;        /* X-Amz-Expires in seconds, 1..S3_EXPIRES_MAX */
	bool path_style;        /* true: {endpoint}/{bucket}/{key};
				 * false (virtual-hosted): {bucket}.{host}/{key} */
};

/** SigV4 signing key: HMAC chain "AWS4"+secret -> date (YYYYMMDD) -> region
 *  -> service -> "aws4_request". 0, -EINVAL (date not 8 digits, empty
 *  strings, secret over 128 bytes) or -EIO. */
int s3_signing_key(const char *secret, const char *date, const char *region,
		   const char *service, uint8_t out[32]);

/** The canonical request for r (method, URI, sorted query without the
 *  signature, "host:..." header, "host", "UNSIGNED-PAYLOAD"; '\n'
 *  separated). Returns its length or -errno. */
int s3_canonical_request(char *out, size_t outsz, const struct s3_presign_req *r);

/** The string to sign for r ("AWS4-HMAC-SHA256\n{amzdate}\n{scope}\n{hex
 *  SHA-256 of the canonical request}"). Returns its length or -errno. */
int s3_string_to_sign(char *out, size_t outsz, const struct s3_presign_req *r);

/** The presigned URL for r. Returns its length (< S3_URL_MAX) or -errno. */
int s3_presign(char *out, size_t outsz, const struct s3_presign_req *r);

#endif
