/* Unit test for http_parse.c: request heads (tables of good and bad input,
 * every prefix and every split, each input ending at a PROT_NONE guard page),
 * limits, framing and smuggling rules, chunked bodies in every split,
 * query/path decoding and the status tables. */
#include "jobring/http_parse.h"
#include "jobring/util.h"
#include "test.h"

#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------ guard page */

#define GUARD_SPACE (256 * 1024)
static char *guard_base;

static void guard_init(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	guard_base = mmap(NULL, GUARD_SPACE + page, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(guard_base != MAP_FAILED);
	CHECK(GUARD_SPACE % page == 0);
	CHECK(mprotect(guard_base + GUARD_SPACE, page, PROT_NONE) == 0);
}

/* Copy s so that its last byte is the last readable byte: any read past n faults. */
static char *guard_copy(const void *s, size_t n)
{
	char *p = guard_base + GUARD_SPACE - n;

	CHECK(n <= GUARD_SPACE);
	memcpy(p, s, n);
	return p;
}

/* ------------------------------------------------------------ head tables */

static char dumpbuf[2][4096];

/* "METHOD TARGET minor|name:value|..." (offsets from base appended if base) */
static const char *dump(int slot, const char *base, const struct http_request *r)
{
	char *o = dumpbuf[slot];
	size_t n = 0, sz = sizeof(dumpbuf[0]);

	n += (size_t)snprintf(o + n, sz - n, "%.*s %.*s %d", (int)r->method_len, r->method,
			      (int)r->target_len, r->target, r->minor_version);
	if (base)
		n += (size_t)snprintf(o + n, sz - n, "@%td,%td", r->method - base,
				      r->target - base);
	for (size_t i = 0; i < r->num_headers && n < sz; i++) {
		const struct http_header *h = &r->headers[i];

		n += (size_t)snprintf(o + n, sz - n, "|%.*s:%.*s", (int)h->name_len, h->name,
				      (int)h->value_len, h->value);
		if (base && n < sz)
			n += (size_t)snprintf(o + n, sz - n, "@%td,%td", h->name - base,
					      h->value - base);
	}
	return o;
}

struct good_case {
	const char *in;
	size_t tail;		/* bytes after the head (body, next request) */
	const char *want;	/* dump() without offsets */
};

static const struct good_case good_cases[] = {
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "GET / 1|Host:a" },
	{ "GET /jobs?limit=5&x=%20 HTTP/1.0\r\n\r\n", 0, "GET /jobs?limit=5&x=%20 0" },
	{ "\r\nPOST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 2,
	  "POST /v1/jobs 1|Host:x|Content-Length:2" },
	{ "GET / HTTP/1.1\r\nHost:   a b \t\r\nX-Empty:\r\nY: \r\n\r\n", 0,
	  "GET / 1|Host:a b|X-Empty:|Y:" },
	{ "GET / HTTP/1.1\r\nX: caf\xc3\xa9\tok\r\n\r\n", 0, "GET / 1|X:caf\xc3\xa9\tok" },
	{ "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0, "OPTIONS * 1|Host:a" },
	{ "M-SEARCH /~a/b;c=d,e!$&'()*+@: HTTP/1.1\r\n\r\n", 0,
	  "M-SEARCH /~a/b;c=d,e!$&'()*+@: 1" },
	{ "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\n\r\n", 19, "GET /a 1|Host:a" },
	{ "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 0,
	  "GET /ws 1|Host:a|Upgrade:websocket|Connection:Upgrade|"
	  "Sec-WebSocket-Key:dGhlIHNhbXBsZSBub25jZQ==" },
	{ "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v:w\r\n\r\n", 0,
	  "GET / 1|!#$%&'*+-.^_`|~09azAZ:v:w" },
};

struct bad_case {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	int want;
};

static const struct bad_case bad_cases[] = {
	{ "GET  / HTTP/1.1\r\n\r\n", 0, HTTP_E_REQUEST_LINE },
	{ " GET / HTTP/1.1\r\n\r\n", 0, HTTP_E_REQUEST_LINE },
	{ "\n", 0, HTTP_E_REQUEST_LINE },
	{ "\rGET / HTTP/1.1\r\n\r\n", 0, HTTP_E_LINE_ENDING },
	{ "G(T / HTTP/1.1\r\n\r\n", 0, HTTP_E_METHOD },
	{ "G\0T / HTTP/1.1\r\n\r\n", 18, HTTP_E_METHOD },
	{ "GET\t/ HTTP/1.1\r\n\r\n", 0, HTTP_E_METHOD },
	{ "GET http://x/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
	{ "CONNECT h:443 HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
	{ "GET * HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
	{ "OPTIONS *x HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
	{ "GET /a#b HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
	{ "GET /\x7f HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
	{ "GET /\xa0 HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
	{ "GET /\r\n\r\n", 0, HTTP_E_TARGET },	/* HTTP/0.9 */
	{ "GET / HTTP/1.1\n\n", 0, HTTP_E_LINE_ENDING },
	{ "GET / HTTP/1.1\rX\r\n", 0, HTTP_E_LINE_ENDING },
	{ "GET / http/1.1\r\n\r\n", 0, HTTP_E_VERSION_SYNTAX },
	{ "GET / HTTP/1.10\r\n\r\n", 0, HTTP_E_VERSION_SYNTAX },
	{ "GET / HTTP/1.1 \r\n\r\n", 0, HTTP_E_VERSION_SYNTAX },
	{ "GET / HTTP/1\r\n\r\n", 0, HTTP_E_VERSION_SYNTAX },
	{ "GET / HTTP/2.0\r\n\r\n", 0, HTTP_E_VERSION },
	{ "GET / HTTP/0.9\r\n\r\n", 0, HTTP_E_VERSION },
	{ "GET / HTTP/1.2\r\n\r\n", 0, HTTP_E_VERSION },
	{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, HTTP_E_HEADER_NAME },
	{ "GET / HTTP/1.1\r\n: a\r\n\r\n", 0, HTTP_E_HEADER_NAME },
	{ "GET / HTTP/1.1\r\nHo\x01st: a\r\n\r\n", 0, HTTP_E_HEADER_NAME },
	{ "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 0, HTTP_E_HEADER_NAME },
	{ "GET / HTTP/1.1\r\nH\xc3\xa9: a\r\n\r\n", 0, HTTP_E_HEADER_NAME },
	{ "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26, HTTP_E_HEADER_VALUE },
	{ "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 0, HTTP_E_HEADER_VALUE },
	{ "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 0, HTTP_E_HEADER_VALUE },
	{ "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 0, HTTP_E_LINE_ENDING },
	{ "GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 0, HTTP_E_LINE_ENDING },
	{ "GET / HTTP/1.1\r\nX: a\r\n\n", 0, HTTP_E_LINE_ENDING },
	{ "GET / HTTP/1.1\r\nX: a\r\n\r\r", 0, HTTP_E_LINE_ENDING },
	{ "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 0, HTTP_E_OBS_FOLD },
	{ "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 0, HTTP_E_OBS_FOLD },
	{ "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 0, HTTP_E_OBS_FOLD },
};

#define MAX_HDRS 16

static int parse(const char *b, size_t n, struct http_request *r, struct http_header *h)
{
	return http_parse_request(b, n, r, h, MAX_HDRS, NULL);
}

static void test_good(const struct good_case *c)
{
	struct http_header h[MAX_HDRS], h2[MAX_HDRS];
	struct http_request r, r2;
	size_t len = strlen(c->in);
	int want = (int)(len - c->tail);
	char *b;

	b = guard_copy(c->in, len);
	CHECK_EQ(parse(b, len, &r, h), want);
	CHECK_STR(dump(0, NULL, &r), c->want);
	dump(0, b, &r);

	/* every prefix: incomplete before the head ends, the same answer after */
	for (size_t k = 0; k < len; k++) {
		b = guard_copy(c->in, k);
		if ((int)k < want) {
			CHECK_EQ(parse(b, k, &r2, h2), HTTP_INCOMPLETE);
		} else {
			CHECK_EQ(parse(b, k, &r2, h2), want);
			CHECK_STR(dump(1, b, &r2), dumpbuf[0]);
		}
	}
	/* every split: the first part arrives, then the rest is appended */
	for (size_t k = 1; k < (size_t)want; k++) {
		b = guard_base + GUARD_SPACE - len;
		memset(b, 'Z', len);
		memcpy(b, c->in, k);
		CHECK_EQ(parse(b, k, &r2, h2), HTTP_INCOMPLETE);
		memcpy(b + k, c->in + k, len - k);
		CHECK(http_head_ready(b, len, k, NULL));
		CHECK_EQ(parse(b, len, &r2, h2), want);
		CHECK_STR(dump(1, b, &r2), dumpbuf[0]);
	}
}

static void test_bad(const struct bad_case *c)
{
	struct http_header h[MAX_HDRS];
	struct http_request r;
	size_t len = c->len ? c->len : strlen(c->in);
	bool failed = false;

	CHECK_EQ(parse(guard_copy(c->in, len), len, &r, h), c->want);
	/* a prefix is incomplete or already fails, and failures never go away */
	for (size_t k = 0; k <= len; k++) {
		int got = parse(guard_copy(c->in, k), k, &r, h);

		if (got != HTTP_INCOMPLETE) {
			CHECK_EQ(got, c->want);
			failed = true;
		} else {
			CHECK(!failed);
		}
	}
}

/* ------------------------------------------------------------------ limits */

static void test_limits(void)
{
	struct http_limits lim = { .max_request_line = 32, .max_header_bytes = 64 };
	struct http_header h[MAX_HDRS];
	struct http_request r;
	char in[GUARD_SPACE / 2];
	size_t n;

	/* "GET /aaaa HTTP/1.1" is exactly 32 bytes: fine; one more: 414 */
	memset(in, 'z', sizeof(in));
	n = (size_t)snprintf(in, sizeof(in), "GET /%0*d HTTP/1.1\r\n\r\n", 18, 0);
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, h, MAX_HDRS, &lim), (int)n);
	n = (size_t)snprintf(in, sizeof(in), "GET /%0*d HTTP/1.1\r\n\r\n", 19, 0);
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, h, MAX_HDRS, &lim),
		 HTTP_E_URI_TOO_LONG);
	/* incomplete but already past the limit: fail now, not when CRLF comes */
	n = (size_t)snprintf(in, sizeof(in), "GET /%033d", 0);
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, h, MAX_HDRS, &lim),
		 HTTP_E_URI_TOO_LONG);
	CHECK_EQ(http_parse_request(guard_copy(in, 32), 32, &r, h, MAX_HDRS, &lim),
		 HTTP_INCOMPLETE);
	CHECK_EQ(http_parse_request(guard_copy(in, 33), 33, &r, h, MAX_HDRS, &lim),
		 HTTP_E_URI_TOO_LONG);
	/* a leading CRLF does not count against the line */
	n = (size_t)snprintf(in, sizeof(in), "\r\nGET /%018d HTTP/1.1\r\n\r\n", 0);
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, h, MAX_HDRS, &lim), (int)n);
	/* default limit: an 8 KiB request line is fine, a longer one 414 */
	n = (size_t)snprintf(in, sizeof(in), "GET /%0*d HTTP/1.1\r\n\r\n", 8192 - 14, 0);
	CHECK_EQ(parse(guard_copy(in, n), n, &r, h), (int)n);
	n = (size_t)snprintf(in, sizeof(in), "GET /%0*d HTTP/1.1\r\n\r\n", 8192 - 13, 0);
	CHECK_EQ(parse(guard_copy(in, n), n, &r, h), HTTP_E_URI_TOO_LONG);
	CHECK_EQ(parse(guard_copy(in, 9000), 9000, &r, h), HTTP_E_URI_TOO_LONG);
	CHECK(http_head_ready(in, 9000, 100, NULL));

	/* header section of exactly 64 bytes (final CRLF included): fine; 65: 431 */
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", 64 - 7, 0);
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, h, MAX_HDRS, &lim), (int)n);
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", 64 - 6, 0);
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, h, MAX_HDRS, &lim),
		 HTTP_E_HEADERS_TOO_LARGE);
	CHECK_EQ(http_parse_request(guard_copy(in, 16 + 64), 16 + 64, &r, h, MAX_HDRS, &lim),
		 HTTP_INCOMPLETE);
	CHECK_EQ(http_parse_request(guard_copy(in, 16 + 65), 16 + 65, &r, h, MAX_HDRS, &lim),
		 HTTP_E_HEADERS_TOO_LARGE);
	/* default header limit, and a big section that never ends */
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nX: %0*d", 20000, 0);
	CHECK_EQ(parse(guard_copy(in, n), n, &r, h), HTTP_E_HEADERS_TOO_LARGE);
	CHECK_EQ(parse(guard_copy(in, 16000), 16000, &r, h), HTTP_INCOMPLETE);

	/* header count: as many as the array holds, then 431 at the next line's first byte */
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, h, 3, NULL), (int)n);
	CHECK_EQ(r.num_headers, 3);
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, h, 2, NULL),
		 HTTP_E_TOO_MANY_HEADERS);
	CHECK_EQ(http_parse_request(guard_copy(in, 29), 29, &r, h, 2, NULL),
		 HTTP_E_TOO_MANY_HEADERS);
	CHECK_EQ(http_parse_request(guard_copy(in, 28), 28, &r, h, 2, NULL), HTTP_INCOMPLETE);
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n\r\n");
	CHECK_EQ(http_parse_request(guard_copy(in, n), n, &r, NULL, 0, NULL), (int)n);
	CHECK_EQ(r.num_headers, 0);

	/* the slowloris guard says no while nothing decisive arrived */
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: a\r\n");
	CHECK(!http_head_ready(in, n, n - 3, NULL));
	CHECK(http_head_ready(in, n, 0, NULL));
	CHECK(http_head_ready("\r\n\r\n", 4, 1, NULL));
}

/* ----------------------------------------------------------------- framing */

struct frame_case {
	const char *hdrs;	/* after "GET / HTTP/1.x\r\n" */
	int minor, want;
	enum http_body_kind body;
	uint64_t cl;
	bool ka, ec, ws;
};

#define H "Host: a\r\n"
#define FE(h, minor, err) { h, minor, err, HTTP_BODY_NONE, 0, 0, 0, 0 }
static const struct frame_case frame_cases[] = {
	{ H, 1, 0, HTTP_BODY_NONE, 0, 1, 0, 0 },
	{ "", 0, 0, HTTP_BODY_NONE, 0, 0, 0, 0 },
	{ "Connection: keep-alive\r\n", 0, 0, HTTP_BODY_NONE, 0, 1, 0, 0 },
	{ "Connection: Keep-Alive, close\r\n", 0, 0, HTTP_BODY_NONE, 0, 0, 0, 0 },
	{ H "Connection: close\r\n", 1, 0, HTTP_BODY_NONE, 0, 0, 0, 0 },
	{ H "Connection: foo,  CLOSE ;x\r\n", 1, 0, HTTP_BODY_NONE, 0, 0, 0, 0 },
	{ H "Content-Length: 10\r\n", 1, 0, HTTP_BODY_LENGTH, 10, 1, 0, 0 },
	{ H "Content-Length: 0\r\n", 1, 0, HTTP_BODY_LENGTH, 0, 1, 0, 0 },
	{ H "Content-Length: 5, 5\r\n", 1, 0, HTTP_BODY_LENGTH, 5, 1, 0, 0 },
	{ H "Content-Length: 5\r\ncontent-length: 005\r\n", 1, 0, HTTP_BODY_LENGTH, 5, 1, 0, 0 },
	{ H "Content-Length: 9223372036854775807\r\n", 1, 0, HTTP_BODY_LENGTH, INT64_MAX, 1, 0, 0 },
	{ H "Transfer-Encoding: chunked\r\n", 1, 0, HTTP_BODY_CHUNKED, 0, 1, 0, 0 },
	{ H "Transfer-Encoding: Chunked,\r\n", 1, 0, HTTP_BODY_CHUNKED, 0, 1, 0, 0 },
	{ H "Expect: 100-Continue\r\nContent-Length: 3\r\n", 1, 0, HTTP_BODY_LENGTH, 3, 1, 1, 0 },
	{ "Expect: 100-continue\r\n", 0, 0, HTTP_BODY_NONE, 0, 0, 0, 0 },
	{ H "Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n", 1, 0,
	  HTTP_BODY_NONE, 0, 1, 0, 1 },
	{ H "Upgrade: websocket\r\n", 1, 0, HTTP_BODY_NONE, 0, 1, 0, 0 },
	{ "Upgrade: websocket\r\nConnection: upgrade\r\n", 0, 0, HTTP_BODY_NONE, 0, 0, 0, 0 },
	{ "Host: [::1]:8080\r\n", 1, 0, HTTP_BODY_NONE, 0, 1, 0, 0 },
	{ "Host:\r\n", 1, 0, HTTP_BODY_NONE, 0, 1, 0, 0 },
	/* smuggling and framing errors */
	FE(H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", 1, HTTP_E_CL_AND_TE),
	FE(H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", 1, HTTP_E_CL_AND_TE),
	FE(H "Content-Length: 1\r\nContent-Length: 2\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length: 1,2\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length: 1,,1\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length: -1\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length: +1\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length: 1 2\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length: 0x10\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length:\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length: 9223372036854775808\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Content-Length: 18446744073709551617\r\n", 1, HTTP_E_CONTENT_LENGTH),
	FE(H "Transfer-Encoding: chunked, identity\r\n", 1, HTTP_E_TRANSFER_ENCODING),
	FE(H "Transfer-Encoding: xchunked\r\n", 1, HTTP_E_TRANSFER_ENCODING),
	FE(H "Transfer-Encoding: chunked, chunked\r\n", 1, HTTP_E_TRANSFER_ENCODING),
	FE(H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 1,
	   HTTP_E_TRANSFER_ENCODING),
	FE(H "Transfer-Encoding: chunked;x=1\r\n", 1, HTTP_E_TRANSFER_ENCODING),
	FE(H "Transfer-Encoding: chun ked\r\n", 1, HTTP_E_TRANSFER_ENCODING),
	FE(H "Transfer-Encoding:\r\n", 1, HTTP_E_TRANSFER_ENCODING),
	FE(H "Transfer-Encoding: gzip\r\n", 1, HTTP_E_TRANSFER_ENCODING),
	FE("Transfer-Encoding: chunked\r\n", 0, HTTP_E_TRANSFER_ENCODING),
	FE(H "Transfer-Encoding: gzip, chunked\r\n", 1, HTTP_E_TE_UNSUPPORTED),
	FE(H "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 1, HTTP_E_TE_UNSUPPORTED),
	FE("", 1, HTTP_E_HOST),
	FE(H H, 1, HTTP_E_HOST),
	FE(H H, 0, HTTP_E_HOST),
	FE("Host: a/b\r\n", 1, HTTP_E_HOST),
	FE("Host: a b\r\n", 1, HTTP_E_HOST),
	FE("Host: user@a\r\n", 1, HTTP_E_HOST),
};
#undef FE
#undef H

static void test_framing(const struct frame_case *c)
{
	struct http_header h[MAX_HDRS];
	struct http_request r;
	struct http_framing f;
	char in[1024];
	int n;

	n = snprintf(in, sizeof(in), "GET / HTTP/1.%d\r\n%s\r\n", c->minor, c->hdrs);
	CHECK_EQ(parse(guard_copy(in, (size_t)n), (size_t)n, &r, h), n);
	CHECK_EQ(http_request_framing(&r, &f), c->want);
	if (c->want)
		return;
	CHECK_EQ(f.body, c->body);
	CHECK_EQ(f.content_length, c->cl);
	CHECK_EQ(f.keep_alive, c->ka);
	CHECK_EQ(f.expect_continue, c->ec);
	CHECK_EQ(f.upgrade_websocket, c->ws);
	CHECK_EQ(f.has_host, c->minor == 1 || strstr(c->hdrs, "Host"));
}

static void test_headers_api(void)
{
	struct http_header h[MAX_HDRS];
	struct http_request r;
	const char *in = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n";

	CHECK(parse(in, strlen(in), &r, h) > 0);
	CHECK_EQ(http_header_find(&r, "X-A", 0), 1);
	CHECK_EQ(http_header_find(&r, "x-A", 2), 2);
	CHECK_EQ(http_header_find(&r, "x-a", 3), -ENOENT);
	CHECK_EQ(http_header_find(&r, "X-", 0), -ENOENT);
	CHECK_EQ(http_header_find(&r, "X-AB", 0), -ENOENT);
	CHECK(http_name_eq("CoNtEnT-LeNgTh", 14, "content-length"));
	CHECK(!http_name_eq("Content-Lengt", 13, "content-length"));
	CHECK(http_list_has("a, b ,c;q=1", 11, "C"));
	CHECK(!http_list_has("ab, cd", 6, "b"));
	CHECK(!http_list_has("", 0, ""));
}

/* ----------------------------------------------------------------- chunked */

struct chunk_case {
	const char *in;
	const char *out;	/* decoded body (so far) */
	int want;		/* 0, HTTP_INCOMPLETE or an error */
	size_t tail;		/* bytes after the body, not consumed */
	uint64_t max_body;	/* 0: 1 MiB */
};

static const struct chunk_case chunk_cases[] = {
	{ "5\r\nhello\r\n0\r\n\r\n", "hello", 0, 0, 0 },
	{ "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", "hello world", 0, 0, 0 },
	{ "6;name=val\r\nhello \r\n5 \t;x;y=\"q\"\r\nworld\r\n0;last\r\n\r\n", "hello world", 0, 0, 0 },
	{ "5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n", "hello", 0, 0, 0 },
	{ "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", "01234567890123456789", 0, 0, 0 },
	{ "0005\r\nhello\r\n0000\r\n\r\nGET / HTTP/1.1\r\n", "hello", 0, 16, 0 },
	{ "0\r\n\r\n", "", 0, 0, 0 },
	{ "f\r\n0123456789abcde\r\n0\r\n\r\n", "0123456789abcde", 0, 0, 15 },
	{ "000000000000000f\r\n0123456789abcde\r\n0\r\n\r\n", "0123456789abcde", 0, 0, 15 },
	{ "5\r\nhel", "hel", HTTP_INCOMPLETE, 0, 0 },
	{ "5\r\nhello\r\n0\r\n\r", "hello", HTTP_INCOMPLETE, 0, 0 },
	{ "ffffffffffffffff\r\nab", "ab", HTTP_INCOMPLETE, 0, UINT64_MAX },
	/* malformed */
	{ "z\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ " 5\r\nhello\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "+5\r\nhello\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "-5\r\nhello\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "0x5\r\nhello\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "5 \r\nhello\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ ";a\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "5\nhello\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "5;a\nhello\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "5;a\x01\r\nhello\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "5\r\nhello\n0\r\n\r\n", "hello", HTTP_E_CHUNK, 0, 0 },
	{ "5\r\nhelloX\r\n", "hello", HTTP_E_CHUNK, 0, 0 },
	{ "5\r\nhello\r\r", "hello", HTTP_E_CHUNK, 0, 0 },
	{ "5\r\nhello0\r\n\r\n", "hello", HTTP_E_CHUNK, 0, 0 },
	{ "00000000000000005\r\nhello\r\n", "", HTTP_E_CHUNK, 0, UINT64_MAX },
	{ "10000000000000000\r\n", "", HTTP_E_CHUNK, 0, UINT64_MAX },
	{ "0\r\nX: a\n\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "0\r\nX: a\r\n b\r\n\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "0\r\nXa\r\n\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "0\r\n: a\r\n\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "0\r\nX: \x01\r\n\r\n", "", HTTP_E_CHUNK, 0, 0 },
	{ "0\r\n\r\r", "", HTTP_E_CHUNK, 0, 0 },
	{ "0\r\n\n", "", HTTP_E_CHUNK, 0, 0 },
	/* body limit: refused as soon as the size is read */
	{ "10\r\n0123456789abcdef\r\n0\r\n\r\n", "", HTTP_E_BODY_TOO_LARGE, 0, 15 },
	{ "8\r\n01234567\r\n8\r\n", "01234567", HTTP_E_BODY_TOO_LARGE, 0, 15 },
	{ "ffffffffffffffff\r\n", "", HTTP_E_BODY_TOO_LARGE, 0, 0 },
};

static char chunk_out[GUARD_SPACE];

/* Feed c->in in the pieces given by cuts (sorted positions), into a separate
 * output buffer or in place. Checks the final answer and the decoded bytes. */
static void chunk_run(const struct chunk_case *c, const size_t *cuts, size_t ncuts,
		      bool in_place)
{
	struct http_chunked d;
	size_t len = strlen(c->in), pos = 0, outlen = 0, used, got;
	uint64_t max = c->max_body ? c->max_body : 1u << 20;
	int r = HTTP_INCOMPLETE;

	memset(&d, 0, sizeof(d));
	for (size_t i = 0; i <= ncuts && r == HTTP_INCOMPLETE; i++) {
		size_t stop = i < ncuts ? cuts[i] : len;
		/* each piece ends at the guard page: copy it there */
		char *piece = guard_copy(c->in + pos, stop - pos);
		char *out = in_place ? piece : chunk_out + outlen;

		r = http_chunked_decode(&d, piece, stop - pos, out, &got, &used, max);
		CHECK(got <= used);
		if (in_place)
			memmove(chunk_out + outlen, piece, got);
		outlen += got;
		if (r == HTTP_INCOMPLETE)
			CHECK_EQ(used, stop - pos);
		pos += used;
		if (r < 0 && r != HTTP_INCOMPLETE)
			break;
	}
	CHECK_EQ(r, c->want);
	CHECK_EQ(outlen, strlen(c->out));
	CHECK(memcmp(chunk_out, c->out, outlen) == 0);
	CHECK_EQ(d.body_len, outlen);
	if (c->want == 0) {
		CHECK_EQ(pos, len - c->tail);
		/* finished: nothing more is consumed */
		CHECK_EQ(http_chunked_decode(&d, "x", 1, chunk_out, &got, &used, max), 0);
		CHECK_EQ(used, 0);
	} else if (c->want != HTTP_INCOMPLETE) {
		/* errors stick */
		CHECK_EQ(http_chunked_decode(&d, "0\r\n\r\n", 5, chunk_out, &got, &used, max),
			 c->want);
		CHECK_EQ(got, 0);
	}
}

static void test_chunked(const struct chunk_case *c)
{
	size_t len = strlen(c->in), cuts[1024];

	chunk_run(c, NULL, 0, false);
	chunk_run(c, NULL, 0, true);
	for (size_t k = 0; k <= len; k++) {
		cuts[0] = k;
		chunk_run(c, cuts, 1, false);
		chunk_run(c, cuts, 1, true);
	}
	CHECK(len < ARRAY_SIZE(cuts));
	for (size_t k = 0; k < len; k++)
		cuts[k] = k + 1;
	chunk_run(c, cuts, len - 1, false);
	chunk_run(c, cuts, len - 1, true);
}

static void test_chunked_caps(void)
{
	static char in[GUARD_SPACE / 2];
	struct http_chunked d;
	size_t n = 0, got, used;

	/* 1-byte chunks: 5 bytes of metadata per byte of data trip the overhead cap */
	memset(&d, 0, sizeof(d));
	while (n + 6 < sizeof(in)) {
		memcpy(in + n, "1\r\na\r\n", 6);
		n += 6;
	}
	CHECK_EQ(http_chunked_decode(&d, guard_copy(in, n), n, chunk_out, &got, &used, UINT64_MAX),
		 HTTP_E_CHUNK_OVERHEAD);
	CHECK(d.body_len > 16000 && d.body_len < 17000);
	CHECK(d.overhead == HTTP_CHUNK_OVERHEAD_BASE + d.body_len + 1);

	/* long extension on one line */
	memset(&d, 0, sizeof(d));
	n = (size_t)snprintf(in, sizeof(in), "1;%0*d\r\na\r\n", HTTP_CHUNK_MAX_EXT, 0);
	CHECK_EQ(http_chunked_decode(&d, guard_copy(in, n), n, chunk_out, &got, &used, 100),
		 HTTP_E_CHUNK);
	memset(&d, 0, sizeof(d));
	n = (size_t)snprintf(in, sizeof(in), "1;%0*d\r\na\r\n", HTTP_CHUNK_MAX_EXT - 1, 0);
	CHECK_EQ(http_chunked_decode(&d, guard_copy(in, n), n, chunk_out, &got, &used, 100),
		 HTTP_INCOMPLETE);

	/* trailer section cap */
	memset(&d, 0, sizeof(d));
	n = (size_t)snprintf(in, sizeof(in), "0\r\nX: %0*d\r\n\r\n", HTTP_CHUNK_MAX_TRAILERS, 0);
	CHECK_EQ(http_chunked_decode(&d, guard_copy(in, n), n, chunk_out, &got, &used, 100),
		 HTTP_E_TRAILERS_TOO_LARGE);
	memset(&d, 0, sizeof(d));
	n = (size_t)snprintf(in, sizeof(in), "0\r\nX: %0*d\r\n\r\n", HTTP_CHUNK_MAX_TRAILERS - 7, 0);
	CHECK_EQ(http_chunked_decode(&d, guard_copy(in, n), n, chunk_out, &got, &used, 100), 0);
	CHECK_EQ(used, n);
}

/* ---------------------------------------------------------- target helpers */

static void test_target(void)
{
	const char *path, *query;
	size_t pl, ql;
	char out[64];
	const char *q = "limit=10&name=a%20b+c&flag&&li%6Dit=9&empty=&bad=%zz&nul=%00&k%zz=1";

	CHECK_EQ(http_split_target("/jobs?x=1", 9, &path, &pl, &query, &ql), 0);
	CHECK_EQ(pl, 5);
	CHECK(memcmp(path, "/jobs", 5) == 0);
	CHECK_EQ(ql, 3);
	CHECK(memcmp(query, "x=1", 3) == 0);
	CHECK_EQ(http_split_target("/a?", 3, &path, &pl, &query, &ql), 0);
	CHECK(query != NULL);
	CHECK_EQ(ql, 0);
	CHECK_EQ(http_split_target("/a", 2, &path, &pl, &query, &ql), 0);
	CHECK(query == NULL);
	CHECK_EQ(http_split_target("*", 1, &path, &pl, &query, &ql), -EINVAL);
	CHECK_EQ(http_split_target("", 0, &path, &pl, &query, &ql), -EINVAL);

	CHECK_EQ(http_query_get(q, strlen(q), "limit", out, sizeof(out)), 2);
	CHECK_STR(out, "10");
	CHECK_EQ(http_query_get(q, strlen(q), "name", out, sizeof(out)), 5);
	CHECK_STR(out, "a b c");
	CHECK_EQ(http_query_get(q, strlen(q), "flag", out, sizeof(out)), 0);
	CHECK_STR(out, "");
	CHECK_EQ(http_query_get(q, strlen(q), "empty", out, sizeof(out)), 0);
	CHECK_EQ(http_query_get(q, strlen(q), "missing", out, sizeof(out)), -EINVAL);
	CHECK_EQ(http_query_get(q, 44, "missing", out, sizeof(out)), -ENOENT);
	CHECK_EQ(http_query_get(q, strlen(q), "bad", out, sizeof(out)), -EINVAL);
	CHECK_EQ(http_query_get(q, strlen(q), "nul", out, sizeof(out)), -EINVAL);
	CHECK_EQ(http_query_get(q, strlen(q), "name", out, 5), -ENOBUFS);
	CHECK_EQ(http_query_get(q, strlen(q), "name", out, 6), 5);
	CHECK_EQ(http_query_get("a=1", 3, "a", out, 0), -ENOBUFS);
	CHECK_EQ(http_query_get("", 0, "a", out, sizeof(out)), -ENOENT);
	CHECK_EQ(http_query_get("a=%4", 4, "a", out, sizeof(out)), -EINVAL);
	CHECK_EQ(http_query_get("a=%", 3, "a", out, sizeof(out)), -EINVAL);
	CHECK_EQ(http_query_get("a%3D=%3d", 8, "a=", out, sizeof(out)), 1);
	CHECK_STR(out, "=");

	struct http_query_iter it;
	struct http_query_param p;
	int count = 0;

	http_query_iter_init(&it, "&a=1&&b&=c&", 11);
	while (http_query_next(&it, &p))
		count++;
	CHECK_EQ(count, 3);
	http_query_iter_init(&it, "x=1=2", 5);
	CHECK_EQ(http_query_next(&it, &p), 1);
	CHECK_EQ(p.key_len, 1);
	CHECK_EQ(p.value_len, 3);
	CHECK_EQ(http_query_next(&it, &p), 0);

#define PATH(in, want_ret, want_out)                                             \
	do {                                                                     \
		ssize_t _r = http_path_decode(in, strlen(in), out, sizeof(out)); \
		CHECK_EQ(_r, want_ret);                                          \
		if (_r >= 0)                                                     \
			CHECK_STR(out, want_out);                                \
	} while (0)
	PATH("/jobs/job_1", 11, "/jobs/job_1");
	PATH("/a%20b/c+d", 8, "/a b/c+d");
	PATH("/%E2%82%ac", 4, "/\xe2\x82\xac");
	PATH("/", 1, "/");
	PATH("/a//b/", 6, "/a//b/");
	PATH("/..a/a..", 8, "/..a/a..");
	PATH("/a/../b", -EINVAL, "");
	PATH("/..", -EINVAL, "");
	PATH("/a/..", -EINVAL, "");
	PATH("/a/%2e%2E/b", -EINVAL, "");
	PATH("/a/.%2e", -EINVAL, "");
	PATH("/./a", -EINVAL, "");
	PATH("/a/.", -EINVAL, "");
	PATH("/a%00b", -EINVAL, "");
	PATH("/a%0ab", -EINVAL, "");
	PATH("/a%2Fb", -EINVAL, "");
	PATH("/a%2", -EINVAL, "");
	PATH("/a%g0", -EINVAL, "");
	PATH("a/b", -EINVAL, "");
	PATH("", -EINVAL, "");
#undef PATH
	CHECK_EQ(http_path_decode("/abc", 4, out, 4), -ENOBUFS);
	CHECK_EQ(http_path_decode("/abc", 4, out, 5), 4);
}

/* ------------------------------------------------------------------ tables */

static void test_tables(void)
{
	static const int used[] = { 200, 201, 202, 204, 206, 301, 304, 400, 401, 402, 403,
				    404, 405, 408, 409, 410, 411, 413, 414, 415, 416, 422,
				    429, 431, 500, 501, 502, 503, 504, 505, 507 };

	for (size_t i = 0; i < ARRAY_SIZE(used); i++)
		CHECK(strcmp(http_reason(used[i]), "Unknown") != 0);
	CHECK_STR(http_reason(404), "Not Found");
	CHECK_STR(http_reason(431), "Request Header Fields Too Large");
	CHECK_STR(http_reason(299), "Unknown");

	for (int e = HTTP_E_REQUEST_LINE; e <= HTTP_E_VERSION; e++) {
		int s = http_error_status(e);

		CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
		CHECK(strcmp(http_error_reason(e), "Unknown") != 0);
	}
	CHECK_EQ(http_error_status(HTTP_E_URI_TOO_LONG), 414);
	CHECK_EQ(http_error_status(HTTP_E_HEADERS_TOO_LARGE), 431);
	CHECK_EQ(http_error_status(HTTP_E_TOO_MANY_HEADERS), 431);
	CHECK_EQ(http_error_status(HTTP_E_VERSION), 505);
	CHECK_EQ(http_error_status(HTTP_E_TE_UNSUPPORTED), 501);
	CHECK_EQ(http_error_status(HTTP_E_BODY_TOO_LARGE), 413);
	CHECK_EQ(http_error_status(HTTP_E_OBS_FOLD), 400);
	CHECK_EQ(http_error_status(-EINVAL), 400);
	CHECK_EQ(http_error_status(-ENOMEM), 500);
	CHECK_STR(http_error_reason(-ENOMEM), "Internal Server Error");
}

int main(void)
{
	guard_init();
	for (size_t i = 0; i < ARRAY_SIZE(good_cases); i++)
		test_good(&good_cases[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++)
		test_bad(&bad_cases[i]);
	test_limits();
	for (size_t i = 0; i < ARRAY_SIZE(frame_cases); i++)
		test_framing(&frame_cases[i]);
	test_headers_api();
	for (size_t i = 0; i < ARRAY_SIZE(chunk_cases); i++)
		test_chunked(&chunk_cases[i]);
	test_chunked_caps();
	test_target();
	test_tables();
	return T_PASS;
}
