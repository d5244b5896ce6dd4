/* presign.c - signed blob URLs, provider callback tokens and the dispatch
 * signature header; see presign.h for the exact signed strings. */
#include "jobring/presign.h"

#include "jobring/crypto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SIG_PREFIX "sha256="
#define SIG_PREFIX_LEN (sizeof(SIG_PREFIX) - 1)

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool valid_method(const char *m)
{
	size_t n;

	if (!m)
		return false;
	n = strnlen(m, PRESIGN_METHOD_MAX + 1);
	if (n == 0 || n > PRESIGN_METHOD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

static bool valid_path(const char *p)
{
	size_t n;

	if (!p || p[0] != '/')
		return false;
	n = strnlen(p, PRESIGN_PATH_MAX + 1);
	return n <= PRESIGN_PATH_MAX && printable(p, n) && !strpbrk(p, "?#");
}

static bool valid_job_id(const char *id)
{
	size_t n;

	if (!id)
		return false;
	n = strnlen(id, PRESIGN_JOB_ID_MAX + 1);
	return n > 0 && n <= PRESIGN_JOB_ID_MAX && printable(id, n);
}

/* Canonical non-negative decimal: digits only, no leading zero but "0". */
static int parse_exp(const char *s, int64_t *ret)
{
	int64_t v = 0;
	size_t n;

	if (!s)
		return -EINVAL;
	n = strnlen(s, 20);
	if (n == 0 || n > 19 || (s[0] == '0' && n > 1))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return 0;
}

static int blob_mac(const void *key, size_t keylen, const char *method, const char *path,
		    int64_t exp_ms, uint8_t mac[CRYPTO_SHA256_LEN])
{
	char exp[24];
	struct crypto_part parts[5];
	int n;

	if (!key || !keylen || !valid_method(method) || !valid_path(path) || exp_ms < 0)
		return -EINVAL;
	n = snprintf(exp, sizeof(exp), "%" PRId64, exp_ms);
	parts[0] = (struct crypto_part){ method, strlen(method) };
	parts[1] = (struct crypto_part){ "\n", 1 };
	parts[2] = (struct crypto_part){ path, strlen(path) };
	parts[3] = (struct crypto_part){ "\n", 1 };
	parts[4] = (struct crypto_part){ exp, (size_t)n };
	return crypto_hmac_sha256_parts(key, keylen, parts, 5, mac);
}

int presign_sign(const void *key, size_t keylen, const char *method, const char *path,
		 int64_t exp_ms, char sig_hex_out[PRESIGN_SIG_LEN + 1])
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	int r = blob_mac(key, keylen, method, path, exp_ms, mac);

	if (r < 0)
		return r;
	hex_encode(mac, sizeof(mac), sig_hex_out);
	return 0;
}

int presign_verify(const void *key, size_t keylen, const char *method, const char *path,
		   const char *exp_str, const char *sig_str, int64_t now_ms)
{
	uint8_t want[CRYPTO_SHA256_LEN], got[CRYPTO_SHA256_LEN];
	int64_t exp;
	int r;

	if (parse_exp(exp_str, &exp) < 0 || !sig_str ||
	    strnlen(sig_str, PRESIGN_SIG_LEN + 1) != PRESIGN_SIG_LEN ||
	    hex_decode(sig_str, PRESIGN_SIG_LEN, got, sizeof(got)) != (int)sizeof(got))
		return -EINVAL;
	r = blob_mac(key, keylen, method, path, exp, want);
	if (r < 0)
		return r;
	if (!crypto_memeq(want, got, sizeof(want)))
		return -EACCES;
	return now_ms > exp ? -ETIMEDOUT : 0;
}

int presign_url(char *buf, size_t bufsz, const char *base_url, const char *method,
		const char *path, int64_t exp_ms, const void *key, size_t keylen)
{
	char sig[PRESIGN_SIG_LEN + 1];
	size_t blen;
	int r, n;

	if (!base_url || !buf)
		return -EINVAL;
	r = presign_sign(key, keylen, method, path, exp_ms, sig);
	if (r < 0)
		return r;
	blen = strlen(base_url);
	if (blen && base_url[blen - 1] == '/')
		blen--;
	if (blen > PRESIGN_PATH_MAX)
		return -EINVAL;
	n = snprintf(buf, bufsz, "%.*s%s?exp=%" PRId64 "&sig=%s", (int)blen, base_url, path,
		     exp_ms, sig);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= bufsz)
		return -ENOSPC;
	return n;
}

int presign_callback_token(const void *key, size_t keylen, const char *job_id,
			   uint32_t attempt, char out[PRESIGN_TOKEN_LEN + 1])
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	char att[12];
	struct crypto_part parts[4];
	int r, n;

	if (!key || !keylen || !valid_job_id(job_id))
		return -EINVAL;
	n = snprintf(att, sizeof(att), "%" PRIu32, attempt);
	parts[0] = (struct crypto_part){ "cb\n", 3 };
	parts[1] = (struct crypto_part){ job_id, strlen(job_id) };
	parts[2] = (struct crypto_part){ "\n", 1 };
	parts[3] = (struct crypto_part){ att, (size_t)n };
	r = crypto_hmac_sha256_parts(key, keylen, parts, 4, mac);
	if (r < 0)
		return r;
	r = base64url_encode(mac, sizeof(mac), out, PRESIGN_TOKEN_LEN + 1);
	return r < 0 ? r : 0;
}

int presign_callback_verify(const void *key, size_t keylen, const char *job_id,
			    uint32_t attempt, const char *token)
{
	char want[PRESIGN_TOKEN_LEN + 1];
	int r = presign_callback_token(key, keylen, job_id, attempt, want);

	if (r < 0)
		return r;
	if (!token || strnlen(token, PRESIGN_TOKEN_LEN + 1) != PRESIGN_TOKEN_LEN)
		return -EACCES;
	return crypto_memeq(want, token, PRESIGN_TOKEN_LEN) ? 0 : -EACCES;
}

static int body_mac(const char *secret, const void *body, size_t len,
		    uint8_t mac[CRYPTO_SHA256_LEN])
{
	if (!secret || !*secret || (!body && len))
		return -EINVAL;
	return crypto_hmac_sha256(secret, strlen(secret), body, len, mac);
}

int sig_header_make(const char *secret, const void *body, size_t len,
		    char out[SIG_HEADER_LEN + 1])
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	int r = body_mac(secret, body, len, mac);

	if (r < 0)
		return r;
	memcpy(out, SIG_PREFIX, SIG_PREFIX_LEN);
	hex_encode(mac, sizeof(mac), out + SIG_PREFIX_LEN);
	return 0;
}

int sig_header_verify(const char *secret, const void *body, size_t len, const char *header)
{
	uint8_t want[CRYPTO_SHA256_LEN], got[CRYPTO_SHA256_LEN];
	int r;

	if (!header || strnlen(header, SIG_HEADER_LEN + 1) != SIG_HEADER_LEN ||
	    memcmp(header, SIG_PREFIX, SIG_PREFIX_LEN) != 0 ||
	    hex_decode(header + SIG_PREFIX_LEN, PRESIGN_SIG_LEN, got, sizeof(got)) !=
		    (int)sizeof(got))
		return -EINVAL;
	r = body_mac(secret, body, len, want);
	if (r < 0)
		return r;
	return crypto_memeq(want, got, sizeof(want)) ? 0 : -EACCES;
}
