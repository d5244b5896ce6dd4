/* Unit test for crypto.c: FIPS 180 SHA vectors, RFC 4231 HMAC-SHA256
 * vectors, RFC 4648 base16/base64 vectors, strict decoding, a differential
 * check of base64 against OpenSSL's encoder, and the RFC 6455 accept key. */
#include "jobring/crypto.h"
#include "jobring/util.h"
#include "test.h"

#include <errno.h>

#include <openssl/evp.h>

static void check_hex(const uint8_t *got, size_t n, const char *want)
{
	char hex[2 * 64 + 1];

	CHECK(n <= 64);
	CHECK_EQ(hex_encode(got, n, hex), 2 * n);
	CHECK_STR(hex, want);
}

static void sha_vectors(void)
{
	uint8_t md[CRYPTO_SHA256_LEN];
	static char million[1000000];

	/* FIPS 180-2 appendix B and the empty message. */
	CHECK_EQ(crypto_sha256("", 0, md), 0);
	check_hex(md, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_EQ(crypto_sha256(NULL, 0, md), 0);
	check_hex(md, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_EQ(crypto_sha256("abc", 3, md), 0);
	check_hex(md, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	{
		const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
		CHECK_EQ(crypto_sha256(m, strlen(m), md), 0);
		check_hex(md, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	}
	memset(million, 'a', sizeof(million));
	CHECK_EQ(crypto_sha256(million, sizeof(million), md), 0);
	check_hex(md, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

	/* FIPS 180-1 SHA-1 "abc" and the empty message. */
	CHECK_EQ(crypto_sha1("abc", 3, md), 0);
	check_hex(md, 20, "a9993e364706816aba3e25717850c26c9cd0d89d");
	CHECK_EQ(crypto_sha1("", 0, md), 0);
	check_hex(md, 20, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

static void hmac_vectors(void)
{
	uint8_t key[131], data[50], mac[32];
	const char *m;

	/* RFC 4231 §4.2 - §4.8 */
	memset(key, 0x0b, 20);
	CHECK_EQ(crypto_hmac_sha256(key, 20, "Hi There", 8, mac), 0);
	check_hex(mac, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

	m = "what do ya want for nothing?";
	CHECK_EQ(crypto_hmac_sha256("Jefe", 4, m, strlen(m), mac), 0);
	check_hex(mac, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	CHECK_EQ(crypto_hmac_sha256(key, 20, data, 50, mac), 0);
	check_hex(mac, 32, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

	for (int i = 0; i < 25; i++)
		key[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, 50);
	CHECK_EQ(crypto_hmac_sha256(key, 25, data, 50, mac), 0);
	check_hex(mac, 32, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

	memset(key, 0x0c, 20);
	CHECK_EQ(crypto_hmac_sha256(key, 20, "Test With Truncation", 20, mac), 0);
	check_hex(mac, 16, "a3b6167473100ee06e0c796c2955552b");

	memset(key, 0xaa, 131);
	m = "Test Using Larger Than Block-Size Key - Hash Key First";
	CHECK_EQ(crypto_hmac_sha256(key, 131, m, strlen(m), mac), 0);
	check_hex(mac, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

	m = "This is a test using a larger than block-size key and a larger than block-size "
	    "data. The key needs to be hashed before being used by the HMAC algorithm.";
	CHECK_EQ(crypto_hmac_sha256(key, 131, m, strlen(m), mac), 0);
	check_hex(mac, 32, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");

	/* Empty key and empty message (a NULL key must mean "empty", not "reuse"). */
	CHECK_EQ(crypto_hmac_sha256(NULL, 0, "", 0, mac), 0);
	check_hex(mac, 32, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	CHECK_EQ(crypto_hmac_sha256("", 0, NULL, 0, mac), 0);
	check_hex(mac, 32, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");

	/* The parts form equals the one-shot form at every split point. */
	m = "what do ya want for nothing?";
	for (size_t a = 0; a <= strlen(m); a++) {
		for (size_t b = a; b <= strlen(m); b += 3) {
			struct crypto_part p[4] = {
				{ m, a }, { NULL, 0 }, { m + a, b - a }, { m + b, strlen(m) - b },
			};
			CHECK_EQ(crypto_hmac_sha256_parts("Jefe", 4, p, 4, mac), 0);
			check_hex(mac, 32,
				  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
		}
	}
}

static void hex_codec(void)
{
	uint8_t b[8];
	char s[17];

	/* RFC 4648 §10 base16, decoded in both cases. */
	CHECK_EQ(hex_encode("foobar", 6, s), 12);
	CHECK_STR(s, "666f6f626172");
	CHECK_EQ(hex_decode("666F6F626172", 12, b, sizeof(b)), 6);
	CHECK(memcmp(b, "foobar", 6) == 0);
	CHECK_EQ(hex_decode("666f6f626172", 12, b, sizeof(b)), 6);
	CHECK(memcmp(b, "foobar", 6) == 0);
	CHECK_EQ(hex_encode("", 0, s), 0);
	CHECK_STR(s, "");
	CHECK_EQ(hex_decode("", 0, b, 0), 0);

	CHECK_EQ(hex_decode("abc", 3, b, sizeof(b)), -EINVAL);
	CHECK_EQ(hex_decode("0g", 2, b, sizeof(b)), -EINVAL);
	CHECK_EQ(hex_decode("g0", 2, b, sizeof(b)), -EINVAL);
	CHECK_EQ(hex_decode(" 0", 2, b, sizeof(b)), -EINVAL);
	CHECK_EQ(hex_decode("0123456789abcdef00", 18, b, sizeof(b)), -ENOSPC);

	/* Every byte value round-trips, and every character decodes iff it is hex. */
	for (int c = 0; c < 256; c++) {
		uint8_t v = (uint8_t)c, w = 0;
		char in[3] = { '0', (char)c, 0 };
		int want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');

		hex_encode(&v, 1, s);
		CHECK_EQ(hex_decode(s, 2, &w, 1), 1);
		CHECK_EQ(w, v);
		CHECK_EQ(hex_decode(in, 2, &w, 1), want ? 1 : -EINVAL);
	}
}

static void b64_vector(const char *plain, const char *enc, const char *url)
{
	char out[64];
	uint8_t dec[64];
	size_t n = strlen(plain);

	CHECK_EQ(base64_encode(plain, n, out, sizeof(out)), (int)strlen(enc));
	CHECK_STR(out, enc);
	CHECK_EQ(BASE64_ENCODED_LEN(n), strlen(enc));
	CHECK_EQ(base64_decode(enc, strlen(enc), dec, sizeof(dec)), (int)n);
	CHECK(memcmp(dec, plain, n) == 0);

	CHECK_EQ(base64url_encode(plain, n, out, sizeof(out)), (int)strlen(url));
	CHECK_STR(out, url);
	CHECK_EQ(BASE64URL_ENCODED_LEN(n), strlen(url));
	CHECK_EQ(base64url_decode(url, strlen(url), dec, sizeof(dec)), (int)n);
	CHECK(memcmp(dec, plain, n) == 0);
}

static void b64_codec(void)
{
	char out[300];
	uint8_t dec[256], raw[200];
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	/* RFC 4648 §10 */
	b64_vector("", "", "");
	b64_vector("f", "Zg==", "Zg");
	b64_vector("fo", "Zm8=", "Zm8");
	b64_vector("foo", "Zm9v", "Zm9v");
	b64_vector("foob", "Zm9vYg==", "Zm9vYg");
	b64_vector("fooba", "Zm9vYmE=", "Zm9vYmE");
	b64_vector("foobar", "Zm9vYmFy", "Zm9vYmFy");
	/* Index 62 and 63 differ between the two alphabets. */
	b64_vector("\xfb\xff\xbf", "+/+/", "-_-_");
	b64_vector("\xfb\xff", "+/8=", "-_8");

	/* Strictness. */
	CHECK_EQ(base64_decode("Zg=", 3, dec, sizeof(dec)), -EINVAL);  /* length */
	CHECK_EQ(base64_decode("Zg", 2, dec, sizeof(dec)), -EINVAL);   /* missing pad */
	CHECK_EQ(base64_decode("Zh==", 4, dec, sizeof(dec)), -EINVAL); /* pad bits */
	CHECK_EQ(base64_decode("Zm9=", 4, dec, sizeof(dec)), -EINVAL); /* pad bits */
	CHECK_EQ(base64_decode("Z===", 4, dec, sizeof(dec)), -EINVAL);
	CHECK_EQ(base64_decode("====", 4, dec, sizeof(dec)), -EINVAL);
	CHECK_EQ(base64_decode("Zg==Zg==", 8, dec, sizeof(dec)), -EINVAL); /* pad inside */
	CHECK_EQ(base64_decode("Zm9v\nYmFy", 9, dec, sizeof(dec)), -EINVAL);
	CHECK_EQ(base64_decode("Zm 9", 4, dec, sizeof(dec)), -EINVAL);
	CHECK_EQ(base64_decode("-_8=", 4, dec, sizeof(dec)), -EINVAL); /* url alphabet */
	CHECK_EQ(base64url_decode("+/8", 3, dec, sizeof(dec)), -EINVAL); /* std alphabet */
	CHECK_EQ(base64url_decode("Zg==", 4, dec, sizeof(dec)), -EINVAL); /* padding */
	CHECK_EQ(base64url_decode("Zm9vYQ", 5, dec, sizeof(dec)), -EINVAL); /* len % 4 == 1 */
	CHECK_EQ(base64url_decode("Zh", 2, dec, sizeof(dec)), -EINVAL);    /* pad bits */
	CHECK_EQ(base64_decode("Zm9vYmFy", 8, dec, 5), -ENOSPC);
	CHECK_EQ(base64_decode("Zm9vYmFy", 8, dec, 6), 6);
	CHECK_EQ(base64_encode("foobar", 6, out, 8), -ENOSPC); /* no room for the NUL */
	CHECK_EQ(base64_encode("foobar", 6, out, 9), 8);
	CHECK_EQ(base64url_encode("fooba", 5, out, 7), -ENOSPC);
	CHECK_EQ(base64url_encode("fooba", 5, out, 8), 7);

	/* Every character of a full group decodes to its index iff it is in
	 * the alphabet (this walks all 256 byte values through the branch-free
	 * classifier). */
	for (int c = 0; c < 256; c++) {
		static const char std[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		static const char url[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		char in[4] = { 'A', 'A', 'A', (char)c };
		const char *ps = c ? strchr(std, c) : NULL, *pu = c ? strchr(url, c) : NULL;
		int r;

		r = base64_decode(in, 4, dec, sizeof(dec));
		CHECK_EQ(r, ps ? 3 : c == '=' ? 2 : -EINVAL); /* "AAA=" is valid */
		if (ps)
			CHECK_EQ(dec[2], ps - std);
		r = base64url_decode(in, 4, dec, sizeof(dec));
		CHECK_EQ(r, pu ? 3 : -EINVAL);
		if (pu)
			CHECK_EQ(dec[2], pu - url);
	}

	/* Differential against OpenSSL's encoder, and round trips, for every
	 * length 0..200 with pseudo-random bytes. */
	for (size_t n = 0; n <= sizeof(raw); n++) {
		unsigned char ref[300];
		int r;

		for (size_t i = 0; i < n; i++)
			raw[i] = (uint8_t)rand_next(&seed);
		CHECK_EQ(EVP_EncodeBlock(ref, raw, (int)n), BASE64_ENCODED_LEN(n));
		r = base64_encode(raw, n, out, sizeof(out));
		CHECK_EQ(r, BASE64_ENCODED_LEN(n));
		CHECK_STR(out, (const char *)ref);
		CHECK_EQ(base64_decode(out, (size_t)r, dec, sizeof(dec)), (int)n);
		CHECK(memcmp(dec, raw, n) == 0);

		r = base64url_encode(raw, n, out, sizeof(out));
		CHECK_EQ(r, BASE64URL_ENCODED_LEN(n));
		CHECK(strchr(out, '=') == NULL && strchr(out, '+') == NULL &&
		      strchr(out, '/') == NULL);
		CHECK_EQ(base64url_decode(out, (size_t)r, dec, sizeof(dec)), (int)n);
		CHECK(memcmp(dec, raw, n) == 0);
	}
}

static void memeq_and_ws(void)
{
	char acc[CRYPTO_WS_ACCEPT_LEN + 1];

	CHECK(crypto_memeq("abcd", "abcd", 4));
	CHECK(!crypto_memeq("abcd", "abce", 4));
	CHECK(!crypto_memeq("xbcd", "abcd", 4));
	CHECK(crypto_memeq("a", "b", 0));

	/* RFC 6455 §1.3 */
	CHECK_EQ(crypto_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, acc), 0);
	CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	CHECK_EQ(crypto_ws_accept("dGhlIHNhbXBsZSBub25jZQ=", 23, acc), -EINVAL);
	CHECK_EQ(crypto_ws_accept("dGhlIHNhbXBsZSBub25jZQ==x", 25, acc), -EINVAL);
	CHECK_EQ(crypto_ws_accept("dGhlIHNhbXBsZSBub25jZQAA", 24, acc), -EINVAL); /* 18 bytes */
	CHECK_EQ(crypto_ws_accept("dGhlIHNhbXBsZSBub25jZQ!=", 24, acc), -EINVAL);
	CHECK_EQ(crypto_ws_accept(NULL, 0, acc), -EINVAL);
}

int main(void)
{
	sha_vectors();
	hmac_vectors();
	hex_codec();
	b64_codec();
	memeq_and_ws();
	return T_PASS;
}
