/* Unit test for presign.c: blob URL signatures (known answers computed
 * independently with Python's hmac module, tampering, expiry, malformed
 * input), callback tokens and the X-Jobring-Signature header. */
#include "jobring/presign.h"
#include "test.h"

#include <errno.h>

#define KEY "test-signing-key-0123456789abcdef"
#define KLEN (sizeof(KEY) - 1)
#define PATH "/dl/job_1/out.mp4"
#define EXP 1700000000000LL
#define EXP_S "1700000000000"
/* hmac.new(KEY, b"GET\n/dl/job_1/out.mp4\n1700000000000", sha256).hexdigest() */
#define SIG "f928edd0721218ee37f2ecce803ef6f2ba8857e30c1c45e27cb806d6c75bf73b"

static void blob_urls(void)
{
	char sig[PRESIGN_SIG_LEN + 1], bad[PRESIGN_SIG_LEN + 1], url[256];
	int64_t now = EXP - 1000;

	CHECK_EQ(presign_sign(KEY, KLEN, "GET", PATH, EXP, sig), 0);
	CHECK_STR(sig, SIG);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, SIG, now), 0);
	/* Upper-case hex is the same signature. */
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S,
				"F928EDD0721218EE37F2ECCE803EF6F2BA8857E30C1C45E27CB806D6C75BF73B",
				now),
		 0);

	/* Expiry is inclusive, and checked only after the signature. */
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, SIG, EXP), 0);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, SIG, EXP + 1), -ETIMEDOUT);

	/* Tampering with any signed field, the key or the signature. */
	CHECK_EQ(presign_verify(KEY, KLEN, "PUT", PATH, EXP_S, SIG, now), -EACCES);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", "/dl/job_1/out.mp5", EXP_S, SIG, now), -EACCES);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", "/dl/job_2/out.mp4", EXP_S, SIG, now), -EACCES);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "1700000000001", SIG, now), -EACCES);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "9700000000000", SIG, now), -EACCES);
	CHECK_EQ(presign_verify(KEY, KLEN - 1, "GET", PATH, EXP_S, SIG, now), -EACCES);
	/* An expired link with a bad signature is a bad signature. */
	CHECK_EQ(presign_verify(KEY, KLEN, "PUT", PATH, EXP_S, SIG, EXP + 1), -EACCES);
	for (int i = 0; i < PRESIGN_SIG_LEN; i++) {
		memcpy(bad, SIG, sizeof(bad));
		bad[i] = bad[i] == '0' ? '1' : '0';
		CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, bad, now), -EACCES);
	}

	/* Malformed. */
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "", SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, NULL, SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "01700000000000", SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "+1700000000000", SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "-1", SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, " 1700000000000", SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "17e11", SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "9223372036854775808", SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, "99999999999999999999", SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, "", now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, NULL, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, SIG "0", now), -EINVAL);
	memcpy(bad, SIG, sizeof(bad));
	bad[63] = '\0';
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, bad, now), -EINVAL);
	bad[63] = 'g';
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", PATH, EXP_S, bad, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "get", PATH, EXP_S, SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "", PATH, EXP_S, SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", "dl/x", EXP_S, SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", "/dl/a b", EXP_S, SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", "/dl/a?b", EXP_S, SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(KEY, KLEN, "GET", "/dl/a\nb", EXP_S, SIG, now), -EINVAL);
	CHECK_EQ(presign_verify(NULL, 0, "GET", PATH, EXP_S, SIG, now), -EINVAL);
	CHECK_EQ(presign_sign(KEY, KLEN, "GET", PATH, -1, sig), -EINVAL);
	CHECK_EQ(presign_sign(KEY, 0, "GET", PATH, EXP, sig), -EINVAL);
	{
		static char longpath[PRESIGN_PATH_MAX + 2];
		memset(longpath, 'a', sizeof(longpath) - 1);
		longpath[0] = '/';
		CHECK_EQ(presign_sign(KEY, KLEN, "GET", longpath, EXP, sig), -EINVAL);
		longpath[PRESIGN_PATH_MAX] = '\0';
		CHECK_EQ(presign_sign(KEY, KLEN, "GET", longpath, EXP, sig), 0);
	}

	/* URLs: the whole string, a trailing slash on the base, buffer limits. */
	CHECK_EQ(presign_url(url, sizeof(url), "http://127.0.0.1:8080", "GET", PATH, EXP, KEY,
			     KLEN),
		 (int)strlen("http://127.0.0.1:8080" PATH "?exp=" EXP_S "&sig=" SIG));
	CHECK_STR(url, "http://127.0.0.1:8080" PATH "?exp=" EXP_S "&sig=" SIG);
	CHECK_EQ(presign_url(url, sizeof(url), "http://127.0.0.1:8080/", "GET", PATH, EXP, KEY,
			     KLEN),
		 (int)strlen("http://127.0.0.1:8080" PATH "?exp=" EXP_S "&sig=" SIG));
	CHECK_STR(url, "http://127.0.0.1:8080" PATH "?exp=" EXP_S "&sig=" SIG);
	{
		size_t need = strlen("http://h" PATH "?exp=" EXP_S "&sig=" SIG) + 1;
		CHECK_EQ(presign_url(url, need - 1, "http://h", "GET", PATH, EXP, KEY, KLEN),
			 -ENOSPC);
		CHECK_EQ(presign_url(url, need, "http://h", "GET", PATH, EXP, KEY, KLEN),
			 (int)need - 1);
	}
	CHECK_EQ(presign_url(url, sizeof(url), "http://h", "GET", "nope", EXP, KEY, KLEN), -EINVAL);
}

static void callback_tokens(void)
{
	char tok[PRESIGN_TOKEN_LEN + 1], bad[PRESIGN_TOKEN_LEN + 2];
	/* base64url(hmac(KEY, b"cb\njob_abc123\n2")) without '=' */
	const char *want = "GTmk_SA87gRvpFcvFwCdUgIgH38Sys2KG0DR7DzPVUs";

	CHECK_EQ(presign_callback_token(KEY, KLEN, "job_abc123", 2, tok), 0);
	CHECK_STR(tok, want);
	CHECK_EQ(strlen(tok), PRESIGN_TOKEN_LEN);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_abc123", 2, want), 0);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_abc123", 1, want), -EACCES);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_abc123", 3, want), -EACCES);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_abc124", 2, want), -EACCES);
	CHECK_EQ(presign_callback_verify("other", 5, "job_abc123", 2, want), -EACCES);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_abc123", 2, ""), -EACCES);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_abc123", 2, NULL), -EACCES);
	snprintf(bad, sizeof(bad), "%s=", want);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_abc123", 2, bad), -EACCES);
	for (int i = 0; i < PRESIGN_TOKEN_LEN; i++) {
		memcpy(bad, want, PRESIGN_TOKEN_LEN + 1);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_abc123", 2, bad), -EACCES);
	}
	/* Job ids and attempts are separated: "job_1" attempt 12 != "job_11" attempt 2. */
	CHECK_EQ(presign_callback_token(KEY, KLEN, "job_1", 12, tok), 0);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_11", 2, tok), -EACCES);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_1", 12, tok), 0);
	CHECK_EQ(presign_callback_token(KEY, KLEN, "job_1", UINT32_MAX, tok), 0);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job_1", UINT32_MAX, tok), 0);

	CHECK_EQ(presign_callback_token(KEY, KLEN, "", 1, tok), -EINVAL);
	CHECK_EQ(presign_callback_token(KEY, KLEN, "job\n1", 1, tok), -EINVAL);
	CHECK_EQ(presign_callback_token(KEY, KLEN, NULL, 1, tok), -EINVAL);
	CHECK_EQ(presign_callback_token(KEY, 0, "job_1", 1, tok), -EINVAL);
	CHECK_EQ(presign_callback_verify(KEY, KLEN, "job 1", 1, want), -EINVAL);
}

static void dispatch_header(void)
{
	const char *body = "{\"jobId\":\"job_abc123\",\"type\":\"sleep\",\"attempt\":1}";
	/* "sha256=" + hmac.new(b"provider-secret", body, sha256).hexdigest() */
	const char *want = "sha256=ce245dbda90dd5f230208376704659711cee213e482e9ea8ce45fe01fa431a43";
	char hdr[SIG_HEADER_LEN + 1], bad[SIG_HEADER_LEN + 2];

	CHECK_EQ(sig_header_make("provider-secret", body, strlen(body), hdr), 0);
	CHECK_STR(hdr, want);
	CHECK_EQ(sig_header_verify("provider-secret", body, strlen(body), want), 0);
	CHECK_EQ(sig_header_verify("provider-secreT", body, strlen(body), want), -EACCES);
	CHECK_EQ(sig_header_verify("provider-secret", body, strlen(body) - 1, want), -EACCES);
	memcpy(bad, want, SIG_HEADER_LEN + 1);
	bad[SIG_HEADER_LEN - 1] ^= 1;
	CHECK_EQ(sig_header_verify("provider-secret", body, strlen(body), bad), -EACCES);
	memcpy(bad, want, SIG_HEADER_LEN + 1);
	bad[0] = 'S';
	CHECK_EQ(sig_header_verify("provider-secret", body, strlen(body), bad), -EINVAL);
	CHECK_EQ(sig_header_verify("provider-secret", body, strlen(body), want + 7), -EINVAL);
	CHECK_EQ(sig_header_verify("provider-secret", body, strlen(body), "sha256="), -EINVAL);
	CHECK_EQ(sig_header_verify("provider-secret", body, strlen(body), NULL), -EINVAL);
	snprintf(bad, sizeof(bad), "%s0", want);
	CHECK_EQ(sig_header_verify("provider-secret", body, strlen(body), bad), -EINVAL);
	CHECK_EQ(sig_header_verify("", body, strlen(body), want), -EINVAL);
	/* An empty body is signable. */
	CHECK_EQ(sig_header_make("s", NULL, 0, hdr), 0);
	CHECK_EQ(sig_header_verify("s", "", 0, hdr), 0);
}

int main(void)
{
	blob_urls();
	callback_tokens();
	dispatch_header();
	return T_PASS;
}
