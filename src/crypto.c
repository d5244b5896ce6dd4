/* crypto.c - SHA-256/SHA-1/HMAC-SHA256 through OpenSSL 3 EVP, plus hex and
 * base64 codecs written branch-free so that they may touch secrets. */
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1

#include "jobring/crypto.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* Algorithms are fetched once per process: an explicit fetch avoids the
 * name lookup that implicit fetching does on every call. The objects are
 * immutable and reference counted, so they stay valid across fork(). */
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;
static EVP_MD *md_sha1;
static EVP_MAC *mac_hmac;

static void algs_init(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static int digest(EVP_MD **md, const void *data, size_t len, uint8_t *out, unsigned int outlen)
{
	unsigned int n = 0;

	pthread_once(&algs_once, algs_init);
	if (!*md)
		return -EIO;
	if (!data)
		data = "";
	if (!EVP_Digest(data, len, out, &n, *md, NULL) || n != outlen)
		return -EIO;
	return 0;
}

int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
	return digest(&md_sha256, data, len, out, CRYPTO_SHA256_LEN);
}

int crypto_sha1(const void *data, size_t len, uint8_t out[CRYPTO_SHA1_LEN])
{
	return digest(&md_sha1, data, len, out, CRYPTO_SHA1_LEN);
}

int crypto_hmac_sha256_parts(const void *key, size_t klen, const struct crypto_part *parts,
			     size_t nparts, uint8_t out[CRYPTO_SHA256_LEN])
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;
	size_t outl = 0;
	int ok;

	pthread_once(&algs_once, algs_init);
	if (!mac_hmac)
		return -EIO;
	ctx = EVP_MAC_CTX_new(mac_hmac);
	if (!ctx)
		return -EIO;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	/* A NULL key means "keep the previous key" to EVP_MAC_init(), so an
	 * empty key is passed as a non-NULL pointer with length 0. */
	ok = EVP_MAC_init(ctx, key && klen ? key : (const void *)"", klen, params);
	for (size_t i = 0; ok && i < nparts; i++)
		if (parts[i].n)
			ok = EVP_MAC_update(ctx, parts[i].p, parts[i].n);
	if (ok)
		ok = EVP_MAC_final(ctx, out, &outl, CRYPTO_SHA256_LEN);
	EVP_MAC_CTX_free(ctx);
	return ok && outl == CRYPTO_SHA256_LEN ? 0 : -EIO;
}

int crypto_hmac_sha256(const void *key, size_t klen, const void *data, size_t dlen,
		       uint8_t out[CRYPTO_SHA256_LEN])
{
	struct crypto_part part = { data, dlen };

	return crypto_hmac_sha256_parts(key, klen, &part, 1, out);
}

bool crypto_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* Branch-free helpers. Arguments are small non-negative ints, so the
 * differences fit in an int and ">> 8" of a negative one is all ones (gcc
 * and clang shift signed ints arithmetically). */
#define CT_RANGE(c, lo, hi) ((((lo) - 1 - (c)) & ((c) - (hi) - 1)) >> 8) /* -1 if lo<=c<=hi */
#define CT_EQ(c, v) CT_RANGE(c, v, v)

static char hex_digit(int v)
{
	/* 0..9 -> '0'..'9', 10..15 -> 'a'..'f' */
	return (char)(v + '0' + (((9 - v) >> 8) & ('a' - '0' - 10)));
}

static int hex_value(int c)
{
	int r = -1;

	r += CT_RANGE(c, '0', '9') & (c - '0' + 1);
	r += CT_RANGE(c, 'a', 'f') & (c - 'a' + 11);
	r += CT_RANGE(c, 'A', 'F') & (c - 'A' + 11);
	return r;
}

size_t hex_encode(const void *in, size_t n, char *out)
{
	const uint8_t *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_digit(p[i] >> 4);
		out[2 * i + 1] = hex_digit(p[i] & 15);
	}
	out[2 * n] = '\0';
	return 2 * n;
}

int hex_decode(const char *in, size_t len, void *out, size_t outsz)
{
	uint8_t *o = out;
	int bad = 0;

	if (len % 2)
		return -EINVAL;
	if (len / 2 > INT_MAX)
		return -EOVERFLOW;
	if (len / 2 > outsz)
		return -ENOSPC;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_value((unsigned char)in[i]);
		int lo = hex_value((unsigned char)in[i + 1]);
		bad |= hi | lo;
		o[i / 2] = (uint8_t)(((hi & 15) << 4) | (lo & 15));
	}
	return bad < 0 ? -EINVAL : (int)(len / 2);
}

/* 0..63 -> the alphabet; c62/c63 are '+' '/' or '-' '_'. */
static char b64_char(int v, int c62, int c63)
{
	int c = v + 'A';

	c += ((25 - v) >> 8) & ('a' - 26 - 'A');
	c += ((51 - v) >> 8) & ('0' - 52 - ('a' - 26));
	c += ((61 - v) >> 8) & (c62 - 62 - ('0' - 52));
	c += ((62 - v) >> 8) & (c63 - c62 - 1);
	return (char)c;
}

/* A character -> 0..63, or -1 if it is not in the alphabet. */
static int b64_value(int c, int c62, int c63)
{
	int r = -1;

	r += CT_RANGE(c, 'A', 'Z') & (c - 'A' + 1);
	r += CT_RANGE(c, 'a', 'z') & (c - 'a' + 27);
	r += CT_RANGE(c, '0', '9') & (c - '0' + 53);
	r += CT_EQ(c, c62) & 63;
	r += CT_EQ(c, c63) & 64;
	return r;
}

static int b64_encode(const uint8_t *in, size_t n, char *out, size_t outsz, int c62, int c63,
		      bool pad)
{
	size_t need, o = 0, i = 0;

	if (n > (size_t)INT_MAX / 4 * 3 - 3)
		return -EOVERFLOW;
	need = pad ? BASE64_ENCODED_LEN(n) : BASE64URL_ENCODED_LEN(n);
	if (need >= outsz)
		return -ENOSPC;
	for (; i + 3 <= n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_char((int)(w >> 18), c62, c63);
		out[o++] = b64_char((int)(w >> 12) & 63, c62, c63);
		out[o++] = b64_char((int)(w >> 6) & 63, c62, c63);
		out[o++] = b64_char((int)w & 63, c62, c63);
	}
	if (i < n) {
		uint32_t w = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = b64_char((int)(w >> 18), c62, c63);
		out[o++] = b64_char((int)(w >> 12) & 63, c62, c63);
		if (i + 1 < n)
			out[o++] = b64_char((int)(w >> 6) & 63, c62, c63);
		else if (pad)
			out[o++] = '=';
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

/* Decode m characters that contain no padding; m % 4 is 0, 2 or 3. */
static int b64_decode(const char *in, size_t m, uint8_t *out, size_t outsz, int c62, int c63)
{
	size_t nout = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0), o = 0, i = 0;
	int bad = 0;

	if (m % 4 == 1)
		return -EINVAL;
	if (nout > INT_MAX)
		return -EOVERFLOW;
	if (nout > outsz)
		return -ENOSPC;
	for (; i + 4 <= m; i += 4) {
		int a = b64_value((unsigned char)in[i], c62, c63);
		int b = b64_value((unsigned char)in[i + 1], c62, c63);
		int c = b64_value((unsigned char)in[i + 2], c62, c63);
		int d = b64_value((unsigned char)in[i + 3], c62, c63);
		uint32_t w = (uint32_t)(a & 63) << 18 | (uint32_t)(b & 63) << 12 |
			     (uint32_t)(c & 63) << 6 | (uint32_t)(d & 63);
		bad |= a | b | c | d;
		out[o++] = (uint8_t)(w >> 16);
		out[o++] = (uint8_t)(w >> 8);
		out[o++] = (uint8_t)w;
	}
	if (i < m) {
		int a = b64_value((unsigned char)in[i], c62, c63);
		int b = b64_value((unsigned char)in[i + 1], c62, c63);
		int c = m - i == 3 ? b64_value((unsigned char)in[i + 2], c62, c63) : 0;
		bad |= a | b | c;
		out[o++] = (uint8_t)((a & 63) << 2 | (b & 63) >> 4);
		if (m - i == 3) {
			out[o++] = (uint8_t)((b & 15) << 4 | (c & 63) >> 2);
			bad |= -(c & 3); /* canonical: the unused bits are zero */
		} else {
			bad |= -(b & 15);
		}
	}
	return bad < 0 ? -EINVAL : (int)o;
}

int base64_encode(const void *in, size_t n, char *out, size_t outsz)
{
	return b64_encode(in, n, out, outsz, '+', '/', true);
}

int base64url_encode(const void *in, size_t n, char *out, size_t outsz)
{
	return b64_encode(in, n, out, outsz, '-', '_', false);
}

int base64_decode(const char *in, size_t len, void *out, size_t outsz)
{
	size_t m = len;

	if (len % 4)
		return -EINVAL;
	if (m && in[m - 1] == '=')
		m--;
	if (m && in[m - 1] == '=')
		m--;
	return b64_decode(in, m, out, outsz, '+', '/');
}

int base64url_decode(const char *in, size_t len, void *out, size_t outsz)
{
	return b64_decode(in, len, out, outsz, '-', '_');
}

int crypto_ws_accept(const char *key, size_t keylen, char out[CRYPTO_WS_ACCEPT_LEN + 1])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char buf[24 + sizeof(guid)];
	uint8_t nonce[16], sha[CRYPTO_SHA1_LEN];
	int r;

	if (!key || keylen != 24 || base64_decode(key, keylen, nonce, sizeof(nonce)) != 16)
		return -EINVAL;
	memcpy(buf, key, 24);
	memcpy(buf + 24, guid, sizeof(guid) - 1);
	r = crypto_sha1(buf, 24 + sizeof(guid) - 1, sha);
	if (r < 0)
		return r;
	r = base64_encode(sha, sizeof(sha), out, CRYPTO_WS_ACCEPT_LEN + 1);
	return r < 0 ? r : 0;
}
