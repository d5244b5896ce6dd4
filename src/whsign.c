/* whsign.c - Rendobar and Standard Webhooks signatures; see whsign.h. */
#include "jobring/whsign.h"

#include "jobring/crypto.h"
#include "jobring/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define PREFIX_LEN (sizeof(WHSIGN_SECRET_PREFIX) - 1)
#define SHA_PREFIX "sha256="
#define SHA_PREFIX_LEN (sizeof(SHA_PREFIX) - 1)
#define B64_MAC_LEN BASE64_ENCODED_LEN(CRYPTO_SHA256_LEN) /* 44 */
/* Standard Webhooks: symmetric keys are 24..64 bytes. */
#define STD_KEY_MIN 24
#define STD_KEY_MAX 64

_Static_assert(WHSIGN_SECRET_LEN == PREFIX_LEN + BASE64_ENCODED_LEN(WHSIGN_SECRET_BYTES),
	       "secret length");
_Static_assert(WHSIGN_STD_LEN == 3 + B64_MAC_LEN, "v1 entry length");

int whsign_new_secret(char *out, size_t outsz)
{
	uint8_t raw[WHSIGN_SECRET_BYTES];
	int r;

	if (!out || outsz < WHSIGN_SECRET_LEN + 1)
		return -ENOSPC;
	rand_bytes(raw, sizeof(raw));
	memcpy(out, WHSIGN_SECRET_PREFIX, PREFIX_LEN);
	r = base64_encode(raw, sizeof(raw), out + PREFIX_LEN, outsz - PREFIX_LEN);
	explicit_bzero(raw, sizeof(raw));
	return r < 0 ? r : WHSIGN_SECRET_LEN;
}

/* Canonical non-negative decimal seconds: digits only, no leading zero
 * but "0", at most 18 digits. */
static int parse_ts(const char *s, int64_t *ret)
{
	int64_t v = 0;
	size_t n;

	if (!s)
		return -EINVAL;
	n = strnlen(s, 19);
	if (n == 0 || n > 18 || (s[0] == '0' && n > 1))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return 0;
}

static int check_time(int64_t ts, int64_t now_s)
{
	int64_t d = now_s - ts; /* both in [0, INT64_MAX]: cannot overflow */

	return d > WHSIGN_TOLERANCE_S || d < -WHSIGN_TOLERANCE_S ? -ETIMEDOUT : 0;
}

static int rendobar_mac(const char *secret, const char *ts, size_t tslen, const void *body,
			size_t len, uint8_t mac[CRYPTO_SHA256_LEN])
{
	struct crypto_part parts[3] = { { ts, tslen }, { ".", 1 }, { body, len } };

	if (!secret || !*secret || (!body && len))
		return -EINVAL;
	return crypto_hmac_sha256_parts(secret, strlen(secret), parts, 3, mac);
}

int whsign_rendobar_make(const char *secret, int64_t ts, const void *body, size_t len,
			 char out[WHSIGN_RENDOBAR_LEN + 1])
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	char tsbuf[24];
	int r, n;

	if (ts < 0)
		return -EINVAL;
	n = snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
	r = rendobar_mac(secret, tsbuf, (size_t)n, body, len, mac);
	if (r < 0)
		return r;
	memcpy(out, SHA_PREFIX, SHA_PREFIX_LEN);
	hex_encode(mac, sizeof(mac), out + SHA_PREFIX_LEN);
	return 0;
}

int whsign_rendobar_verify(const char *secret, const char *ts, const void *body, size_t len,
			   const char *header, int64_t now_s)
{
	uint8_t want[CRYPTO_SHA256_LEN], got[CRYPTO_SHA256_LEN];
	int64_t t;
	int r;

	if (now_s < 0 || parse_ts(ts, &t) < 0 || !header ||
	    strnlen(header, WHSIGN_RENDOBAR_LEN + 1) != WHSIGN_RENDOBAR_LEN ||
	    memcmp(header, SHA_PREFIX, SHA_PREFIX_LEN) != 0 ||
	    hex_decode(header + SHA_PREFIX_LEN, 2 * CRYPTO_SHA256_LEN, got, sizeof(got)) !=
		    (int)sizeof(got))
		return -EINVAL;
	r = rendobar_mac(secret, ts, strlen(ts), body, len, want);
	if (r < 0)
		return r;
	if (!crypto_memeq(want, got, sizeof(want)))
		return -EACCES;
	return check_time(t, now_s);
}

static bool valid_msg_id(const char *id)
{
	size_t n;

	if (!id)
		return false;
	n = strnlen(id, WHSIGN_MSG_ID_MAX + 1);
	if (n == 0 || n > WHSIGN_MSG_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f || id[i] == '.')
			return false;
	return true;
}

/* HMAC key of a Standard Webhooks secret: base64 after the optional prefix. */
static int std_key(const char *secret, uint8_t key[STD_KEY_MAX])
{
	size_t n;
	int r;

	if (!secret)
		return -EINVAL;
	if (strncmp(secret, WHSIGN_SECRET_PREFIX, PREFIX_LEN) == 0)
		secret += PREFIX_LEN;
	n = strnlen(secret, BASE64_ENCODED_LEN(STD_KEY_MAX) + 1);
	r = base64_decode(secret, n, key, STD_KEY_MAX);
	return r < STD_KEY_MIN ? -EINVAL : r;
}

/* base64 HMAC of "{msg_id}.{ts}.{body}" into out (B64_MAC_LEN + NUL). */
static int std_sig(const char *secret, const char *msg_id, const char *ts, size_t tslen,
		   const void *body, size_t len, char out[B64_MAC_LEN + 1])
{
	uint8_t key[STD_KEY_MAX], mac[CRYPTO_SHA256_LEN];
	struct crypto_part parts[5] = {
		{ msg_id, 0 }, { ".", 1 }, { ts, tslen }, { ".", 1 }, { body, len },
	};
	int klen, r;

	if (!valid_msg_id(msg_id) || (!body && len))
		return -EINVAL;
	parts[0].n = strlen(msg_id);
	klen = std_key(secret, key);
	if (klen < 0)
		return klen;
	r = crypto_hmac_sha256_parts(key, (size_t)klen, parts, 5, mac);
	explicit_bzero(key, sizeof(key));
	if (r < 0)
		return r;
	r = base64_encode(mac, sizeof(mac), out, B64_MAC_LEN + 1);
	return r < 0 ? r : 0;
}

int whsign_std_make(const char *secret, const char *msg_id, int64_t ts, const void *body,
		    size_t len, char out[WHSIGN_STD_LEN + 1])
{
	char tsbuf[24];
	int n;

	if (ts < 0)
		return -EINVAL;
	n = snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
	memcpy(out, "v1,", 3);
	return std_sig(secret, msg_id, tsbuf, (size_t)n, body, len, out + 3);
}

int whsign_std_verify(const char *secret, const char *msg_id, const char *ts, const void *body,
		      size_t len, const char *header, int64_t now_s)
{
	char want[B64_MAC_LEN + 1];
	const char *p, *end;
	bool match = false;
	int64_t t;
	int r;

	if (now_s < 0 || parse_ts(ts, &t) < 0 || !header)
		return -EINVAL;
	end = header + strnlen(header, WHSIGN_HEADER_MAX + 1);
	if (end == header || end > header + WHSIGN_HEADER_MAX)
		return -EINVAL;
	r = std_sig(secret, msg_id, ts, strlen(ts), body, len, want);
	if (r < 0)
		return r;
	/* Every entry is compared, so the time taken does not depend on which
	 * one matched. */
	for (p = header; p < end;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t n = (size_t)((sp ? sp : end) - p);

		if (n == WHSIGN_STD_LEN && memcmp(p, "v1,", 3) == 0)
			match |= crypto_memeq(p + 3, want, B64_MAC_LEN);
		p += n + 1;
	}
	if (!match)
		return -EACCES;
	return check_time(t, now_s);
}
