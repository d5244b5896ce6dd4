/* presign.h - jobring's own signed, expiring blob URLs (served by intake),
 * the per-job provider callback token, and the X-Jobring-Signature header
 * on dispatches. All are HMAC-SHA256 under a server-held key.
 *
 * Signed strings (byte-exact; {exp} is decimal milliseconds since the epoch):
 *   blob URL   "{METHOD}\n{path}\n{exp}"   -> lowercase hex (64 chars)
 *   callback   "cb\n{job_id}\n{attempt}"   -> base64url, unpadded (43 chars)
 *   dispatch   the raw request body        -> "sha256=" + lowercase hex
 *
 * Ownership: all output goes to caller buffers; nothing is retained.
 * Errors: -EINVAL malformed input, -ENOSPC buffer too small, -EACCES bad
 * signature, -ETIMEDOUT genuine but expired, -EIO libcrypto failure.
 * Verification compares in constant time and checks the signature before
 * the expiry, so -ETIMEDOUT is only ever returned for a link we issued. */
#ifndef JOBRING_PRESIGN_H
#define JOBRING_PRESIGN_H

#include <stddef.h>
#include <stdint.h>

/** strlen() of a blob URL signature (hex HMAC-SHA256). */
#define PRESIGN_SIG_LEN 64
/** strlen() of a callback token (unpadded base64url of 32 bytes). */
#define PRESIGN_TOKEN_LEN 43
/** strlen() of an X-Jobring-Signature value: "sha256=" + 64 hex. */
#define SIG_HEADER_LEN 71
/** Longest accepted path, method and job id. */
#define PRESIGN_PATH_MAX 2048
#define PRESIGN_METHOD_MAX 16
#define PRESIGN_JOB_ID_MAX 128

/** Sign a blob URL: sig_hex_out = hex HMAC-SHA256(key, "{method}\n{path}\n{exp_ms}").
 *  method is 1..16 uppercase letters; path starts with '/', is at most
 *  PRESIGN_PATH_MAX bytes of printable ASCII without space, '?' or '#'
 *  (already URL-encoded); exp_ms >= 0; key non-empty. 0 or -EINVAL/-EIO. */
int presign_sign(const void *key, size_t keylen, const char *method, const char *path,
		 int64_t exp_ms, char sig_hex_out[PRESIGN_SIG_LEN + 1]);

/** Check a request against its "exp" and "sig" query values (NUL-terminated,
 *  as received). exp_str must be canonical decimal (no sign, no leading
 *  zeros) and sig_str exactly 64 hex digits, else -EINVAL. Returns 0 when
 *  the signature matches and now_ms <= exp, -EACCES when it does not match,
 *  -ETIMEDOUT when it matches but now_ms > exp. */
int presign_verify(const void *key, size_t keylen, const char *method, const char *path,
		   const char *exp_str, const char *sig_str, int64_t now_ms);

/** Write "{base_url}{path}?exp={exp_ms}&sig={hex}" into buf (one trailing
 *  '/' of base_url is dropped). Returns the length written (excluding the
 *  NUL), -ENOSPC if bufsz is too small, or presign_sign()'s errors. */
int presign_url(char *buf, size_t bufsz, const char *base_url, const char *method,
		const char *path, int64_t exp_ms, const void *key, size_t keylen);

/** Callback token for (job_id, attempt): unpadded base64url of
 *  HMAC-SHA256(key, "cb\n{job_id}\n{attempt}"). job_id is 1..128 printable
 *  ASCII without space. 0 or -EINVAL/-EIO. */
int presign_callback_token(const void *key, size_t keylen, const char *job_id,
			   uint32_t attempt, char out[PRESIGN_TOKEN_LEN + 1]);

/** Check a bearer token (NUL-terminated) for (job_id, attempt) in constant
 *  time. 0, -EACCES (wrong token, wrong length or wrong attempt), -EINVAL
 *  (bad job_id or key), -EIO. */
int presign_callback_verify(const void *key, size_t keylen, const char *job_id,
			    uint32_t attempt, const char *token);

/** X-Jobring-Signature value for a dispatch body: "sha256=" + hex
 *  HMAC-SHA256(secret, body). secret is a non-empty NUL-terminated string
 *  used as bytes. 0 or -EINVAL/-EIO. */
int sig_header_make(const char *secret, const void *body, size_t len,
		    char out[SIG_HEADER_LEN + 1]);

/** Check an X-Jobring-Signature value (NUL-terminated) against a body.
 *  0, -EINVAL (not "sha256=" + 64 hex, or empty secret), -EACCES, -EIO. */
int sig_header_verify(const char *secret, const void *body, size_t len, const char *header);

#endif
