/* Unit test for whsign.c: the Standard Webhooks reference vector (the one
 * the official libraries test against: secret whsec_MfKQ9r8..., msg_id
 * msg_p5jXN8AQ..., timestamp 1614265330), a Rendobar-scheme known answer
 * computed independently with Python's hmac module, several signatures per
 * header, the 300 s window in both directions, tampering and malformed
 * input, and secrets from whsign_new_secret(). */
#include "jobring/whsign.h"
#include "jobring/crypto.h"
#include "test.h"

#include <errno.h>

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define TS 1614265330LL
#define TS_S "1614265330"
#define BODY "{\"test\": 2432232314}"
#define STD_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* "sha256=" + hmac.new(SECRET.encode(), b"1614265330." + BODY, sha256).hexdigest() */
#define RB_SIG "sha256=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964"

static int std_verify(const char *secret, const char *id, const char *ts, const char *body,
		      const char *hdr, int64_t now)
{
	return whsign_std_verify(secret, id, ts, body, strlen(body), hdr, now);
}

/* "whsec_" + base64 of n zero bytes. */
static const char *zero_secret(size_t n)
{
	static char buf[6 + BASE64_ENCODED_LEN(100) + 1];
	static const uint8_t zero[100];

	CHECK(n <= sizeof(zero));
	memcpy(buf, "whsec_", 6);
	CHECK(base64_encode(zero, n, buf + 6, sizeof(buf) - 6) > 0);
	return buf;
}

static void standard_webhooks(void)
{
	char sig[WHSIGN_STD_LEN + 1];
	static char longhdr[WHSIGN_HEADER_MAX + 2];

	CHECK_EQ(whsign_std_make(SECRET, MSG_ID, TS, BODY, strlen(BODY), sig), 0);
	CHECK_STR(sig, STD_SIG);
	/* The whsec_ prefix is optional, as in the reference libraries. */
	CHECK_EQ(whsign_std_make("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", MSG_ID, TS, BODY,
				 strlen(BODY), sig),
		 0);
	CHECK_STR(sig, STD_SIG);

	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, STD_SIG, TS), 0);
	/* Several signatures: any v1 match passes, other versions are skipped. */
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, "v1,bm9wZQ== " STD_SIG, TS), 0);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY,
			    STD_SIG " v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5Bdq==", TS),
		 0);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY,
			    "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " STD_SIG " v2,x", TS),
		 0);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY,
			    STD_SIG " v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", TS),
		 0);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY,
			    "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,bm9wZQ==", TS),
		 -EACCES);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
			    TS),
		 -EACCES);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
			    TS),
		 -EACCES);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, "   ", TS), -EACCES);

	/* The window is 300 s either side, inclusive. */
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, STD_SIG, TS + 300), 0);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, STD_SIG, TS - 300), 0);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, STD_SIG, TS + 301), -ETIMEDOUT);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, STD_SIG, TS - 301), -ETIMEDOUT);

	/* Tampering: body, id, timestamp, secret, signature. */
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, "{\"test\": 2432232315}", STD_SIG, TS), -EACCES);
	CHECK_EQ(std_verify(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJeK", TS_S, BODY, STD_SIG, TS),
		 -EACCES);
	CHECK_EQ(std_verify(SECRET, MSG_ID, "1614265331", BODY, STD_SIG, TS), -EACCES);
	CHECK_EQ(std_verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx", MSG_ID, TS_S, BODY, STD_SIG,
			    TS),
		 -EACCES);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY,
			    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", TS),
		 -EACCES);
	/* A stale timestamp with a wrong signature is a wrong signature. */
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, "{}", STD_SIG, TS + 1000), -EACCES);

	/* Malformed. */
	CHECK_EQ(std_verify(SECRET, MSG_ID, "01614265330", BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(std_verify(SECRET, MSG_ID, "1614265330.0", BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(std_verify(SECRET, MSG_ID, "-1", BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(std_verify(SECRET, MSG_ID, "", BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, "", TS), -EINVAL);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, NULL, TS), -EINVAL);
	memset(longhdr, 'x', sizeof(longhdr) - 1);
	CHECK_EQ(std_verify(SECRET, MSG_ID, TS_S, BODY, longhdr, TS), -EINVAL);
	CHECK_EQ(std_verify(SECRET, "msg.1", TS_S, BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(std_verify(SECRET, "", TS_S, BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(std_verify(SECRET, "msg 1", TS_S, BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(std_verify("whsec_!!!!", MSG_ID, TS_S, BODY, STD_SIG, TS), -EINVAL);
	/* Keys must be 24..64 bytes: 23 and 65 are refused, 24 and 64 accepted. */
	CHECK_EQ(std_verify(zero_secret(23), MSG_ID, TS_S, BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(std_verify(zero_secret(24), MSG_ID, TS_S, BODY, STD_SIG, TS), -EACCES);
	CHECK_EQ(std_verify(zero_secret(64), MSG_ID, TS_S, BODY, STD_SIG, TS), -EACCES);
	CHECK_EQ(std_verify(zero_secret(65), MSG_ID, TS_S, BODY, STD_SIG, TS), -EINVAL);
	CHECK_EQ(whsign_std_make(SECRET, MSG_ID, -1, BODY, strlen(BODY), sig), -EINVAL);
	CHECK_EQ(whsign_std_make(NULL, MSG_ID, TS, BODY, strlen(BODY), sig), -EINVAL);
}

static void rendobar(void)
{
	char sig[WHSIGN_RENDOBAR_LEN + 1], bad[WHSIGN_RENDOBAR_LEN + 2];
	size_t n = strlen(BODY);

	/* Keyed with the secret string verbatim, whsec_ included. */
	CHECK_EQ(whsign_rendobar_make(SECRET, TS, BODY, n, sig), 0);
	CHECK_STR(sig, RB_SIG);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, RB_SIG, TS), 0);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, RB_SIG, TS + 300), 0);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, RB_SIG, TS - 300), 0);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, RB_SIG, TS + 301), -ETIMEDOUT);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, RB_SIG, TS - 301), -ETIMEDOUT);

	CHECK_EQ(whsign_rendobar_verify(SECRET, "1614265331", BODY, n, RB_SIG, TS), -EACCES);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n - 1, RB_SIG, TS), -EACCES);
	CHECK_EQ(whsign_rendobar_verify(SECRET + 6, TS_S, BODY, n, RB_SIG, TS), -EACCES);
	for (int i = 7; i < WHSIGN_RENDOBAR_LEN; i++) {
		memcpy(bad, RB_SIG, sizeof(RB_SIG));
		bad[i] = bad[i] == '0' ? '1' : '0';
		CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, bad, TS), -EACCES);
	}
	/* "{ts}.{body}": the separator is signed, so "1.23" + "4" != "1" + ".234". */
	CHECK_EQ(whsign_rendobar_make(SECRET, 1, "234", 3, sig), 0);
	CHECK_EQ(whsign_rendobar_verify(SECRET, "12", "34", 2, sig, 12), -EACCES);
	CHECK_EQ(whsign_rendobar_verify(SECRET, "1", "234", 3, sig, 1), 0);

	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, RB_SIG + 7, TS), -EINVAL);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, "sha1=abc", TS), -EINVAL);
	snprintf(bad, sizeof(bad), "%sa", RB_SIG);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, bad, TS), -EINVAL);
	CHECK_EQ(whsign_rendobar_verify(SECRET, "+1614265330", BODY, n, RB_SIG, TS), -EINVAL);
	CHECK_EQ(whsign_rendobar_verify(SECRET, NULL, BODY, n, RB_SIG, TS), -EINVAL);
	CHECK_EQ(whsign_rendobar_verify("", TS_S, BODY, n, RB_SIG, TS), -EINVAL);
	CHECK_EQ(whsign_rendobar_verify(SECRET, TS_S, BODY, n, RB_SIG, -1), -EINVAL);
	CHECK_EQ(whsign_rendobar_make(SECRET, -5, BODY, n, sig), -EINVAL);
}

static void new_secrets(void)
{
	char a[WHSIGN_SECRET_LEN + 1], b[WHSIGN_SECRET_LEN + 1];
	char std[WHSIGN_STD_LEN + 1], rb[WHSIGN_RENDOBAR_LEN + 1];
	uint8_t raw[64];

	CHECK_EQ(whsign_new_secret(a, sizeof(a)), WHSIGN_SECRET_LEN);
	CHECK_EQ(whsign_new_secret(b, sizeof(b)), WHSIGN_SECRET_LEN);
	CHECK_EQ(strlen(a), WHSIGN_SECRET_LEN);
	CHECK(strncmp(a, "whsec_", 6) == 0);
	CHECK(strcmp(a, b) != 0);
	CHECK_EQ(base64_decode(a + 6, strlen(a + 6), raw, sizeof(raw)), WHSIGN_SECRET_BYTES);
	CHECK_EQ(whsign_new_secret(a, WHSIGN_SECRET_LEN), -ENOSPC);

	/* Usable with both schemes. */
	CHECK_EQ(whsign_std_make(b, "del_1", 1700000000, "{}", 2, std), 0);
	CHECK_EQ(whsign_std_verify(b, "del_1", "1700000000", "{}", 2, std, 1700000010), 0);
	CHECK_EQ(whsign_rendobar_make(b, 1700000000, "{}", 2, rb), 0);
	CHECK_EQ(whsign_rendobar_verify(b, "1700000000", "{}", 2, rb, 1700000010), 0);
	/* Empty bodies too. */
	CHECK_EQ(whsign_std_make(b, "del_1", 0, NULL, 0, std), 0);
	CHECK_EQ(whsign_std_verify(b, "del_1", "0", "", 0, std, 0), 0);
}

int main(void)
{
	standard_webhooks();
	rendobar();
	new_secrets();
	return T_PASS;
}
