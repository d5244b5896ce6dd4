/* Unit test for s3sign.c against published and independent vectors:
 *  - AWS S3 API Reference, "Authenticating Requests: Using Query Parameters
 *    (AWS Signature Version 4)", presigned GET of examplebucket/test.txt:
 *    canonical request, string to sign, signature and URL;
 *  - AWS General Reference, "Examples of how to derive a signing key for
 *    Signature Version 4" (20120215 / us-east-1 / iam);
 *  - path-style, escaped-key and virtual-host URLs whose signatures were
 *    computed with botocore's S3SigV4QueryAuth at a fixed clock (an
 *    implementation independent of ours);
 * plus input validation and buffer limits. */
#include "jobring/s3sign.h"
#include "jobring/crypto.h"
#include "test.h"

#include <errno.h>

#define AWS_AK "AKIAIOSFODNN7EXAMPLE"
#define AWS_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static struct s3_presign_req aws_example(void)
{
	return (struct s3_presign_req){
		.method = "GET",
		.endpoint = "https://s3.amazonaws.com",
		.bucket = "examplebucket",
		.key = "test.txt",
		.region = "us-east-1",
		.access_key = AWS_AK,
		.secret_key = AWS_SK,
		.time = 1369353600, /* 2013-05-24T00:00:00Z */
		.expires = 86400,
		.path_style = false,
	};
}

static void aws_query_example(void)
{
	struct s3_presign_req r = aws_example();
	char buf[S3_URL_MAX];
	const char *canon = "GET\n"
			    "/test.txt\n"
			    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
			    "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-"
			    "Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
			    "host:examplebucket.s3.amazonaws.com\n"
			    "\n"
			    "host\n"
			    "UNSIGNED-PAYLOAD";
	const char *sts = "AWS4-HMAC-SHA256\n"
			  "20130524T000000Z\n"
			  "20130524/us-east-1/s3/aws4_request\n"
			  "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04";
	const char *url =
		"https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-"
		"Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-"
		"Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-"
		"Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

	CHECK_EQ(s3_canonical_request(buf, sizeof(buf), &r), (int)strlen(canon));
	CHECK_STR(buf, canon);
	CHECK_EQ(s3_string_to_sign(buf, sizeof(buf), &r), (int)strlen(sts));
	CHECK_STR(buf, sts);
	CHECK_EQ(s3_presign(buf, sizeof(buf), &r), (int)strlen(url));
	CHECK_STR(buf, url);

	/* The same request through an endpoint with a default port and a
	 * trailing slash signs identically. */
	r.endpoint = "https://s3.amazonaws.com:443/";
	CHECK_EQ(s3_presign(buf, sizeof(buf), &r), (int)strlen(url));
	CHECK_STR(buf, url);

	/* Exact buffer sizes. */
	r = aws_example();
	CHECK_EQ(s3_presign(buf, strlen(url), &r), -ENOSPC);
	CHECK_EQ(s3_presign(buf, strlen(url) + 1, &r), (int)strlen(url));
	CHECK_EQ(s3_canonical_request(buf, strlen(canon), &r), -ENOSPC);
	CHECK_EQ(s3_string_to_sign(buf, strlen(sts), &r), -ENOSPC);
}

static void signing_key(void)
{
	uint8_t k[32];
	char hex[65];

	CHECK_EQ(s3_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1",
				"iam", k),
		 0);
	hex_encode(k, 32, hex);
	CHECK_STR(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");

	CHECK_EQ(s3_signing_key("x", "2012021", "us-east-1", "iam", k), -EINVAL);
	CHECK_EQ(s3_signing_key("x", "2012021a", "us-east-1", "iam", k), -EINVAL);
	CHECK_EQ(s3_signing_key("", "20120215", "us-east-1", "iam", k), -EINVAL);
	CHECK_EQ(s3_signing_key("x", "20120215", "", "iam", k), -EINVAL);
	CHECK_EQ(s3_signing_key("x", "20120215", "us-east-1", NULL, k), -EINVAL);
}

static void botocore_vectors(void)
{
	char buf[S3_URL_MAX];
	struct s3_presign_req r = {
		.method = "PUT",
		.endpoint = "http://127.0.0.1:9000",
		.bucket = "jobring-out",
		.key = "out/a b+c~d_e.f(1)\xc3\xa9.mp4",
		.region = "eu-west-3",
		.access_key = "minioadmin",
		.secret_key = "minio/secret+key",
		.time = 1709251199, /* 2024-02-29T23:59:59Z */
		.expires = 900,
		.path_style = true,
	};
	const char *url1 =
		"http://127.0.0.1:9000/jobring-out/out/a%20b%2Bc~d_e.f%281%29%C3%A9.mp4?X-Amz-"
		"Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=minioadmin%2F20240229%2Feu-west-3%2Fs3%"
		"2Faws4_request&X-Amz-Date=20240229T235959Z&X-Amz-Expires=900&X-Amz-SignedHeaders="
		"host&X-Amz-Signature=687f1b48c6d35a5bc9ee21fa5f68d1cc3ad169f0b6fe929925bc294de0c5680b";
	const char *url2 =
		"https://my.bucket.s3.example.com/deep/dir/x%3Dy%26z.txt?X-Amz-Algorithm=AWS4-HMAC-"
		"SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20300102%2Fus-east-1%2Fs3%2Faws4_"
		"request&X-Amz-Date=20300102T030405Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-"
		"Amz-Signature=998d7276f6f8d163820f30135642a17b7d4ca79b4021a31991e45a7631c55a14";

	CHECK_EQ(s3_presign(buf, sizeof(buf), &r), (int)strlen(url1));
	CHECK_STR(buf, url1);
	CHECK_EQ(s3_canonical_request(buf, sizeof(buf), &r), (int)strlen(buf));
	CHECK(strstr(buf, "\nhost:127.0.0.1:9000\n") != NULL);

	r = aws_example();
	r.endpoint = "https://s3.example.com";
	r.bucket = "my.bucket";
	r.key = "deep/dir/x=y&z.txt";
	r.time = 1893553445; /* 2030-01-02T03:04:05Z */
	r.expires = S3_EXPIRES_MAX;
	CHECK_EQ(s3_presign(buf, sizeof(buf), &r), (int)strlen(url2));
	CHECK_STR(buf, url2);
}

static void encoding_and_limits(void)
{
	struct s3_presign_req r = aws_example();
	char buf[S3_URL_MAX], canon[S3_URL_MAX];
	static char longkey[S3_KEY_MAX + 2];

	/* Path-style puts the bucket in the path and keeps the endpoint host. */
	r.path_style = true;
	CHECK(s3_canonical_request(canon, sizeof(canon), &r) > 0);
	CHECK(starts_with(canon, "GET\n/examplebucket/test.txt\n"));
	CHECK(strstr(canon, "\nhost:s3.amazonaws.com\n") != NULL);
	CHECK(s3_presign(buf, sizeof(buf), &r) > 0);
	CHECK(starts_with(buf, "https://s3.amazonaws.com/examplebucket/test.txt?"));
	/* A non-default port is signed and kept; IPv6 literals work path-style. */
	r.endpoint = "http://[::1]:9000/";
	CHECK(s3_canonical_request(canon, sizeof(canon), &r) > 0);
	CHECK(strstr(canon, "\nhost:[::1]:9000\n") != NULL);
	r.endpoint = "http://minio:80";
	CHECK(s3_canonical_request(canon, sizeof(canon), &r) > 0);
	CHECK(strstr(canon, "\nhost:minio\n") != NULL);

	/* Every byte outside the unreserved set and '/' is %XX, upper-case. */
	r = aws_example();
	r.key = "a/\x01 \x7f\xff%~._-Z9";
	CHECK(s3_canonical_request(canon, sizeof(canon), &r) > 0);
	CHECK(starts_with(canon, "GET\n/a/%01%20%7F%FF%25~._-Z9\n"));

	/* The longest key fits S3_URL_MAX even fully escaped. */
	memset(longkey, '\xff', S3_KEY_MAX);
	r.key = longkey;
	r.access_key = "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		       "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";
	r.bucket = "b23456789012345678901234567890123456789012345678901234567890123";
	r.region = "abcdefghijklmnopqrstuvwxyz-12345";
	r.path_style = true;
	CHECK(s3_presign(buf, sizeof(buf), &r) > 0);
	longkey[S3_KEY_MAX] = 'x';
	CHECK_EQ(s3_presign(buf, sizeof(buf), &r), -EINVAL);

	/* Validation. */
#define BAD(field, value)                                                   \
	do {                                                                \
		r = aws_example();                                          \
		r.field = value;                                            \
		CHECK_EQ(s3_presign(buf, sizeof(buf), &r), -EINVAL);        \
	} while (0)
	BAD(method, "get");
	BAD(method, "");
	BAD(method, NULL);
	BAD(endpoint, "s3.amazonaws.com");
	BAD(endpoint, "ftp://s3.amazonaws.com");
	BAD(endpoint, "https://");
	BAD(endpoint, "https://s3.amazonaws.com/prefix");
	BAD(endpoint, "https://s3.amazonaws.com:");
	BAD(endpoint, "https://s3.amazonaws.com:0");
	BAD(endpoint, "https://s3.amazonaws.com:65536");
	BAD(endpoint, "https://s3.amazonaws.com:12a");
	BAD(endpoint, "https://user@s3.amazonaws.com");
	BAD(endpoint, "http://[::1]"); /* virtual-host on an IPv6 literal */
	BAD(endpoint, NULL);
	BAD(bucket, "ab");
	BAD(bucket, "Example");
	BAD(bucket, "a/b");
	BAD(key, "");
	BAD(key, NULL);
	BAD(region, "");
	BAD(region, "us east");
	BAD(access_key, "");
	BAD(access_key, "AK IA");
	BAD(secret_key, "");
	BAD(time, -1);
	BAD(time, 253402300800LL);
	BAD(expires, 0);
	BAD(expires, S3_EXPIRES_MAX + 1);
#undef BAD
	CHECK_EQ(s3_presign(buf, sizeof(buf), NULL), -EINVAL);
}

int main(void)
{
	aws_query_example();
	signing_key();
	botocore_vectors();
	encoding_and_limits();
	return T_PASS;
}
