/* crypto.h - hashing, HMAC, hex/base64 codecs and constant-time compare on
 * top of OpenSSL 3 libcrypto (EVP and EVP_MAC only, no deprecated calls).
 *
 * Ownership: every function writes into caller-provided memory; nothing is
 * allocated that outlives a call. All functions are safe to call from any
 * thread and after fork().
 * Errors: int results are 0 (or a length) on success and -errno on failure:
 * -EINVAL malformed input, -ENOSPC output buffer too small, -EOVERFLOW input
 * too large, -EIO libcrypto failure (a broken OpenSSL install or OOM). */
#ifndef JOBRING_CRYPTO_H
#define JOBRING_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA1_LEN 20
/** strlen() of a Sec-WebSocket-Accept value (base64 of a SHA-1). */
#define CRYPTO_WS_ACCEPT_LEN 28

/** Characters base64_encode() writes for n bytes (padded; add 1 for the NUL). */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
/** Characters base64url_encode() writes for n bytes (unpadded; add 1 for the NUL). */
#define BASE64URL_ENCODED_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/** One piece of a message that is hashed as the concatenation of its parts. */
struct crypto_part {
	const void *p;
	size_t n;
};

/** SHA-256 of data[0..len) into out. 0 or -EIO. */
int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);

/** SHA-1 of data[0..len) into out. Only for the WebSocket handshake. 0 or -EIO. */
int crypto_sha1(const void *data, size_t len, uint8_t out[CRYPTO_SHA1_LEN]);

/** HMAC-SHA256(key, data) into out. Any key length, including 0. 0 or -EIO. */
int crypto_hmac_sha256(const void *key, size_t klen, const void *data, size_t dlen,
		       uint8_t out[CRYPTO_SHA256_LEN]);

/** HMAC-SHA256 over the concatenation of nparts parts, without building it
 *  in memory (e.g. "{ts}" "." body). Parts with n == 0 may have p == NULL.
 *  0 or -EIO. */
int crypto_hmac_sha256_parts(const void *key, size_t klen, const struct crypto_part *parts,
			     size_t nparts, uint8_t out[CRYPTO_SHA256_LEN]);

/** Lowercase hex of in[0..n) into out, which must hold 2n+1 bytes; NUL-terminated.
 *  Returns 2n. */
size_t hex_encode(const void *in, size_t n, char *out);

/** Decode len hex digits (either case) into out[0..outsz). Returns the byte
 *  count (len/2), -EINVAL for an odd length or a non-hex character, -ENOSPC
 *  if outsz < len/2. out is not NUL-terminated. */
int hex_decode(const char *in, size_t len, void *out, size_t outsz);

/** RFC 4648 §4 base64 (alphabet A-Z a-z 0-9 + /, '=' padding) of in[0..n)
 *  into out; outsz must be >= BASE64_ENCODED_LEN(n) + 1. NUL-terminated.
 *  Returns the length written, -ENOSPC or -EOVERFLOW. Constant time in the
 *  data (no secret-indexed table lookups), so it may encode secrets. */
int base64_encode(const void *in, size_t n, char *out, size_t outsz);

/** Strict RFC 4648 §4 decode of in[0..len): len must be a multiple of 4,
 *  '=' only as 1-2 final pad characters, unused pad bits zero, no whitespace.
 *  Returns the byte count, -EINVAL or -ENOSPC. Constant time in the data. */
int base64_decode(const char *in, size_t len, void *out, size_t outsz);

/** RFC 4648 §5 base64url (- and _ instead of + and /) without padding;
 *  outsz >= BASE64URL_ENCODED_LEN(n) + 1. Returns the length, -ENOSPC or
 *  -EOVERFLOW. */
int base64url_encode(const void *in, size_t n, char *out, size_t outsz);

/** Strict decode of unpadded base64url: '=' is rejected, len % 4 != 1,
 *  unused bits zero. Returns the byte count, -EINVAL or -ENOSPC. */
int base64url_decode(const char *in, size_t len, void *out, size_t outsz);

/** True iff a[0..n) == b[0..n); the time taken depends only on n. */
bool crypto_memeq(const void *a, const void *b, size_t n);

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2):
 *  base64(SHA-1(key ‖ "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) into out
 *  (CRYPTO_WS_ACCEPT_LEN chars + NUL). The key must be the base64 of exactly
 *  16 bytes (24 chars, RFC 6455 §4.2.1 item 5), else -EINVAL. 0 or -errno. */
int crypto_ws_accept(const char *key, size_t keylen, char out[CRYPTO_WS_ACCEPT_LEN + 1]);

#endif
