/* fuzz_http.c - libFuzzer target for http_parse.c: the request parser, the
 * framing rules, and the chunked decoder (on the whole input and on what
 * follows a parsed head), plus the target/query/path helpers. Checks the
 * invariants the callers rely on; any violation aborts. */
#include "jobring/http_parse.h"

#include <stdlib.h>
#include <string.h>

#define MAX_HDRS 32

#define INVARIANT(cond)                                                          \
	do {                                                                     \
		if (!(cond))                                                     \
			abort();                                                 \
	} while (0)

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void check_helpers(const struct http_request *r)
{
	const char *path, *query;
	size_t pl, ql;
	char out[256];
	struct http_query_iter it;
	struct http_query_param prm;
	ssize_t n;

	if (http_split_target(r->target, r->target_len, &path, &pl, &query, &ql) < 0)
		return;
	INVARIANT(pl + (query ? ql + 1 : 0) == r->target_len);
	n = http_path_decode(path, pl, out, sizeof(out));
	INVARIANT(n < 0 || ((size_t)n <= pl && out[n] == '\0' && out[0] == '/'));
	if (n >= 0)
		INVARIANT(!strstr(out, "/../") && !strstr(out, "/./"));
	if (!query)
		return;
	http_query_iter_init(&it, query, ql);
	while (http_query_next(&it, &prm)) {
		INVARIANT(inside(prm.key, prm.key_len, query, ql));
		INVARIANT(inside(prm.value, prm.value_len, query, ql));
		n = http_query_decode(prm.value, prm.value_len, out, sizeof(out));
		INVARIANT(n < 0 || ((size_t)n <= prm.value_len && out[n] == '\0'));
	}
	n = http_query_get(query, ql, "limit", out, sizeof(out));
	INVARIANT(n == -ENOENT || n == -EINVAL || n == -ENOBUFS ||
		  (n >= 0 && (size_t)n < sizeof(out)));
}

/* Decode in[0,len) in place and into a copy, with a split, and compare. */
static void check_chunked(const char *in, size_t len, uint64_t max_body)
{
	struct http_chunked d1, d2;
	char *a = malloc(len + 1), *b = malloc(len + 1);
	size_t o1, c1, o2, c2, o3 = 0, c3 = 0, cut = len / 3;
	int r1, r2;

	INVARIANT(a && b);
	memcpy(a, in, len);
	memset(&d1, 0, sizeof(d1));
	memset(&d2, 0, sizeof(d2));
	r1 = http_chunked_decode(&d1, a, len, a, &o1, &c1, max_body);
	INVARIANT(o1 <= c1 && c1 <= len && d1.body_len == o1 && d1.body_len <= max_body);
	INVARIANT(r1 == 0 || r1 == HTTP_INCOMPLETE || http_error_status(r1) != 500);
	INVARIANT(r1 != HTTP_INCOMPLETE || c1 == len);

	/* the same bytes in two pieces give the same answer and the same data */
	r2 = http_chunked_decode(&d2, in, cut, b, &o2, &c2, max_body);
	if (r2 == HTTP_INCOMPLETE) {
		INVARIANT(c2 == cut);
		r2 = http_chunked_decode(&d2, in + cut, len - cut, b + o2, &o3, &c3, max_body);
	}
	INVARIANT(r1 == r2);
	INVARIANT(o1 == o2 + o3 && memcmp(a, b, o1) == 0);
	if (r1 == 0)
		INVARIANT(c1 == c2 + c3);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits lim = { .max_request_line = 256, .max_header_bytes = 1024 };
	struct http_header hdrs[MAX_HDRS];
	struct http_request req, req2;
	struct http_framing fr;
	const char *buf = (const char *)data;
	int r, r2;

	r = http_parse_request(buf, size, &req, hdrs, MAX_HDRS, NULL);
	INVARIANT(r == HTTP_INCOMPLETE || r > 0 || http_error_status(r) != 500);
	if (r > 0) {
		INVARIANT((size_t)r <= size);
		INVARIANT(inside(req.method, req.method_len, buf, (size_t)r));
		INVARIANT(inside(req.target, req.target_len, buf, (size_t)r));
		INVARIANT(req.method_len > 0 && req.target_len > 0);
		INVARIANT(req.minor_version == 0 || req.minor_version == 1);
		INVARIANT(req.num_headers <= MAX_HDRS && req.headers == hdrs);
		for (size_t i = 0; i < req.num_headers; i++) {
			INVARIANT(inside(hdrs[i].name, hdrs[i].name_len, buf, (size_t)r));
			INVARIANT(inside(hdrs[i].value, hdrs[i].value_len, buf, (size_t)r));
			INVARIANT(hdrs[i].name_len > 0);
		}
		/* stateless: the head alone parses to the same length */
		INVARIANT(http_parse_request(buf, (size_t)r, &req2, hdrs, MAX_HDRS, NULL) == r);
		INVARIANT(http_parse_request(buf, (size_t)r - 1, &req2, hdrs, MAX_HDRS, NULL) ==
			  HTTP_INCOMPLETE);
		/* the slowloris guard never hides a complete head */
		INVARIANT(http_head_ready(buf, (size_t)r, (size_t)r / 2 + 1, NULL));
		check_helpers(&req);

		r2 = http_request_framing(&req, &fr);
		INVARIANT(r2 == 0 || http_error_status(r2) != 500);
		if (r2 == 0) {
			INVARIANT(fr.content_length <= INT64_MAX);
			INVARIANT(!fr.host || inside(fr.host, fr.host_len, buf, (size_t)r));
			if (fr.body == HTTP_BODY_CHUNKED)
				check_chunked(buf + r, size - (size_t)r, 1u << 20);
		}
	} else if (r != HTTP_INCOMPLETE) {
		/* a prefix is still incomplete or already has the same error */
		r2 = http_parse_request(buf, size / 2, &req2, hdrs, MAX_HDRS, NULL);
		INVARIANT(r2 == HTTP_INCOMPLETE || r2 == r);
	}
	/* tighter limits: same grammar, so a head they accept is accepted anyway */
	r2 = http_parse_request(buf, size, &req2, hdrs, 4, &lim);
	INVARIANT(r2 == HTTP_INCOMPLETE || r2 > 0 || http_error_status(r2) != 500);
	INVARIANT(r2 < 0 || r2 == r);

	/* the whole input as a chunked body, with a small and a large limit */
	check_chunked(buf, size, 64);
	check_chunked(buf, size, UINT64_MAX);
	return 0;
}
