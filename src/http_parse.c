/* http_parse.c - zero-copy HTTP/1.1 request parser in the style of
 * picohttpparser: stateless head parsing over the caller's buffer, a
 * separate resumable chunked decoder, and the framing rules that a parser
 * which only checks syntax leaves out (request smuggling defences).
 *
 * Every scanning loop judges bytes strictly in order and decides at the
 * first byte that settles the outcome, so a result never depends on how the
 * input was split across reads: a prefix either is HTTP_INCOMPLETE or already
 * has the final answer. Limits are checked before a byte is looked at, so a
 * buffer that breaks one fails at once. */
#include "jobring/http_parse.h"

#include <limits.h>
#include <string.h>

#include "jobring/util.h"

/* Limits are clamped so that a head length always fits an int. */
#define HTTP_LIMIT_CLAMP ((size_t)1 << 20)

/* Character classes as bitmaps over ASCII (bytes >= 0x80 are never members). */
static const uint32_t tchar_map[4] = {	/* RFC 9110 §5.6.2 tchar */
	0x00000000, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff,
};
static const uint32_t target_map[4] = {	/* VCHAR minus '#' */
	0x00000000, 0xfffffff6, 0xffffffff, 0x7fffffff,
};
static const uint32_t host_map[4] = {	/* reg-name / IP-literal / ':' port */
	0x00000000, 0x2fff7ff2, 0xaffffffe, 0x47fffffe,
};

static inline bool in_map(const uint32_t *map, unsigned char c)
{
	return c < 128 && (map[c >> 5] >> (c & 31) & 1);
}

static inline bool is_tchar(unsigned char c)
{
	return in_map(tchar_map, c);
}

/* field-vchar / SP / HTAB: everything but CTLs (HTAB allowed) and DEL. */
static inline bool is_value_char(unsigned char c)
{
	return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ------------------------------------------------------------------ errors */

static const struct {
	int err;
	int status;
	const char *reason;
} http_errors[] = {
	{ HTTP_E_REQUEST_LINE, 400, "malformed request line" },
	{ HTTP_E_METHOD, 400, "invalid method" },
	{ HTTP_E_TARGET, 400, "request target must be origin-form" },
	{ HTTP_E_VERSION_SYNTAX, 400, "malformed HTTP version" },
	{ HTTP_E_LINE_ENDING, 400, "lines must end with CRLF" },
	{ HTTP_E_HEADER_NAME, 400, "invalid header name" },
	{ HTTP_E_HEADER_VALUE, 400, "invalid character in header value" },
	{ HTTP_E_OBS_FOLD, 400, "folded header lines are not allowed" },
	{ HTTP_E_HOST, 400, "missing, repeated or invalid Host header" },
	{ HTTP_E_CONTENT_LENGTH, 400, "invalid or conflicting Content-Length" },
	{ HTTP_E_TRANSFER_ENCODING, 400, "invalid Transfer-Encoding" },
	{ HTTP_E_CL_AND_TE, 400, "both Content-Length and Transfer-Encoding" },
	{ HTTP_E_CHUNK, 400, "malformed chunked body" },
	{ HTTP_E_CHUNK_OVERHEAD, 400, "too much chunk metadata" },
	{ HTTP_E_URI_TOO_LONG, 414, "request line too long" },
	{ HTTP_E_HEADERS_TOO_LARGE, 431, "header section too large" },
	{ HTTP_E_TOO_MANY_HEADERS, 431, "too many header fields" },
	{ HTTP_E_TRAILERS_TOO_LARGE, 431, "trailer section too large" },
	{ HTTP_E_BODY_TOO_LARGE, 413, "request body too large" },
	{ HTTP_E_TE_UNSUPPORTED, 501, "unsupported transfer coding" },
	{ HTTP_E_VERSION, 505, "only HTTP/1.0 and HTTP/1.1 are supported" },
};

int http_error_status(int err)
{
	for (size_t i = 0; i < ARRAY_SIZE(http_errors); i++)
		if (http_errors[i].err == err)
			return http_errors[i].status;
	return err == -EINVAL ? 400 : 500;
}

const char *http_error_reason(int err)
{
	for (size_t i = 0; i < ARRAY_SIZE(http_errors); i++)
		if (http_errors[i].err == err)
			return http_errors[i].reason;
	return http_reason(http_error_status(err));
}

static const struct {
	int status;
	const char *reason;
} http_reasons[] = {
	{ 100, "Continue" }, { 101, "Switching Protocols" }, { 200, "OK" },
	{ 201, "Created" }, { 202, "Accepted" }, { 204, "No Content" },
	{ 206, "Partial Content" }, { 301, "Moved Permanently" }, { 304, "Not Modified" },
	{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 402, "Payment Required" },
	{ 403, "Forbidden" }, { 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 408, "Request Timeout" }, { 409, "Conflict" }, { 410, "Gone" },
	{ 411, "Length Required" }, { 413, "Content Too Large" }, { 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" }, { 416, "Range Not Satisfiable" },
	{ 422, "Unprocessable Content" }, { 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" }, { 500, "Internal Server Error" },
	{ 501, "Not Implemented" }, { 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
	{ 507, "Insufficient Storage" },
};

const char *http_reason(int status)
{
	for (size_t i = 0; i < ARRAY_SIZE(http_reasons); i++)
		if (http_reasons[i].status == status)
			return http_reasons[i].reason;
	return "Unknown";
}

/* ------------------------------------------------------------- head parser */

static void limits_get(const struct http_limits *lim, size_t *max_line, size_t *max_hb)
{
	static const struct http_limits deflim = HTTP_LIMITS_DEFAULT;

	if (!lim)
		lim = &deflim;
	*max_line = MIN(lim->max_request_line, HTTP_LIMIT_CLAMP);
	*max_hb = MIN(lim->max_header_bytes, HTTP_LIMIT_CLAMP);
}

/* The end of the region starting at p that may hold at most max bytes. */
static inline const unsigned char *cap_end(const unsigned char *p,
					   const unsigned char *end, size_t max)
{
	return (size_t)(end - p) > max ? p + max : end;
}

/* Before looking at *p: out of bytes (feed me more) or past the limit. */
#define NEED(lim_end, err)                                                     \
	do {                                                                   \
		if (p == (lim_end))                                            \
			return p == end ? HTTP_INCOMPLETE : (err);             \
	} while (0)

static int parse_request_line(const unsigned char **pp, const unsigned char *end,
			      size_t max_line, struct http_request *req)
{
	const unsigned char *p = *pp, *lend, *tok;
	static const char version[] = "HTTP/x.x";

	lend = cap_end(p, end, max_line);
	for (tok = p;; p++) {
		NEED(lend, HTTP_E_URI_TOO_LONG);
		if (*p == ' ')
			break;
		if (!is_tchar(*p))
			return p == tok ? HTTP_E_REQUEST_LINE : HTTP_E_METHOD;
	}
	if (p == tok)
		return HTTP_E_REQUEST_LINE;
	req->method = (const char *)tok;
	req->method_len = (size_t)(p - tok);
	p++;

	for (tok = p;; p++) {
		NEED(lend, HTTP_E_URI_TOO_LONG);
		if (*p == ' ')
			break;
		if (!in_map(target_map, *p))
			return p == tok ? HTTP_E_REQUEST_LINE : HTTP_E_TARGET;
	}
	if (p == tok)
		return HTTP_E_REQUEST_LINE;
	req->target = (const char *)tok;
	req->target_len = (size_t)(p - tok);
	/* origin-form, or "*" for OPTIONS (RFC 9112 §3.2.4) */
	if (tok[0] != '/' &&
	    !(req->target_len == 1 && tok[0] == '*' && req->method_len == 7 &&
	      memcmp(req->method, "OPTIONS", 7) == 0))
		return HTTP_E_TARGET;
	p++;

	/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive */
	for (tok = p; p - tok < 8; p++) {
		size_t i = (size_t)(p - tok);
		bool ok;

		NEED(lend, HTTP_E_URI_TOO_LONG);
		if (version[i] == 'x')
			ok = *p >= '0' && *p <= '9';
		else
			ok = *p == (unsigned char)version[i];
		if (!ok)
			return HTTP_E_VERSION_SYNTAX;
	}
	/* the terminator may sit just past the limit: the limit is on content */
	if (p == end)
		return HTTP_INCOMPLETE;
	if (*p != '\r')
		return *p == '\n' ? HTTP_E_LINE_ENDING : HTTP_E_VERSION_SYNTAX;
	if (++p == end)
		return HTTP_INCOMPLETE;
	if (*p++ != '\n')
		return HTTP_E_LINE_ENDING;
	if (tok[5] != '1' || (tok[7] != '0' && tok[7] != '1'))
		return HTTP_E_VERSION;
	req->minor_version = tok[7] - '0';
	*pp = p;
	return 0;
}

static int parse_headers(const unsigned char **pp, const unsigned char *end,
			 size_t max_hb, struct http_header *hdrs, size_t max_hdrs,
			 size_t *ret_n)
{
	const unsigned char *p = *pp, *hend = cap_end(p, end, max_hb);
	const unsigned char *tok, *last;
	size_t n = 0;

	for (;;) {
		NEED(hend, HTTP_E_HEADERS_TOO_LARGE);
		if (*p == '\r') {
			p++;
			NEED(hend, HTTP_E_HEADERS_TOO_LARGE);
			if (*p++ != '\n')
				return HTTP_E_LINE_ENDING;
			break;
		}
		if (*p == '\n')
			return HTTP_E_LINE_ENDING;
		/* RFC 9112 §5.2: obs-fold; also whitespace after the start line */
		if (*p == ' ' || *p == '\t')
			return HTTP_E_OBS_FOLD;
		if (n == max_hdrs)
			return HTTP_E_TOO_MANY_HEADERS;

		/* field-name ":" with nothing between (RFC 9112 §5.1) */
		for (tok = p;; p++) {
			NEED(hend, HTTP_E_HEADERS_TOO_LARGE);
			if (*p == ':')
				break;
			if (!is_tchar(*p))
				return HTTP_E_HEADER_NAME;
		}
		if (p == tok)
			return HTTP_E_HEADER_NAME;
		hdrs[n].name = (const char *)tok;
		hdrs[n].name_len = (size_t)(p - tok);
		p++;

		for (;; p++) {
			NEED(hend, HTTP_E_HEADERS_TOO_LARGE);
			if (*p != ' ' && *p != '\t')
				break;
		}
		for (tok = last = p;; p++) {
			NEED(hend, HTTP_E_HEADERS_TOO_LARGE);
			if (*p == '\r')
				break;
			if (!is_value_char(*p))
				return *p == '\n' ? HTTP_E_LINE_ENDING : HTTP_E_HEADER_VALUE;
			if (*p != ' ' && *p != '\t')
				last = p + 1;
		}
		p++;
		NEED(hend, HTTP_E_HEADERS_TOO_LARGE);
		if (*p++ != '\n')
			return HTTP_E_LINE_ENDING;
		hdrs[n].value = (const char *)tok;
		hdrs[n].value_len = (size_t)(last - tok);
		n++;
	}
	*ret_n = n;
	*pp = p;
	return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req,
		       struct http_header *hdrs, size_t max_hdrs,
		       const struct http_limits *lim)
{
	const unsigned char *start = (const unsigned char *)buf;
	const unsigned char *p = start, *end = start + len;
	size_t max_line, max_hb, n = 0;
	int r;

	limits_get(lim, &max_line, &max_hb);
	req->headers = hdrs;
	req->num_headers = 0;

	/* RFC 9112 §2.2: ignore one empty line before the request line */
	if (p == end)
		return HTTP_INCOMPLETE;
	if (*p == '\r') {
		if (++p == end)
			return HTTP_INCOMPLETE;
		if (*p++ != '\n')
			return HTTP_E_LINE_ENDING;
	}
	r = parse_request_line(&p, end, max_line, req);
	if (r < 0)
		return r;
	r = parse_headers(&p, end, max_hb, hdrs, max_hdrs, &n);
	if (r < 0)
		return r;
	req->num_headers = n;
	return (int)(p - start);
}

bool http_head_ready(const char *buf, size_t len, size_t last_len,
		     const struct http_limits *lim)
{
	size_t max_line, max_hb, from;

	limits_get(lim, &max_line, &max_hb);
	if (last_len == 0 || last_len >= len)
		return true;
	/* first lengths at which the line limit and every limit are decidable */
	if (last_len < max_line + 3 && len >= max_line + 3)
		return true;
	if (last_len < max_line + max_hb + 5 && len >= max_line + max_hb + 5)
		return true;
	from = last_len < 3 ? 0 : last_len - 3;
	return memmem(buf + from, len - from, "\r\n\r\n", 4) != NULL;
}

/* ---------------------------------------------------------------- framing */

bool http_name_eq(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++)
		if (b[i] == '\0' || lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return b[i] == '\0';
}

int http_header_find(const struct http_request *req, const char *name, size_t from)
{
	for (size_t i = from; i < req->num_headers && i <= INT_MAX; i++)
		if (http_name_eq(req->headers[i].name, req->headers[i].name_len, name))
			return (int)i;
	return -ENOENT;
}

static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Next element of a comma list in [*pp, end): trimmed of OWS, maybe empty.
 * Returns false when the list is exhausted. Quoted strings are not special:
 * none of the lists we read (CL, TE, Connection, Upgrade, Expect) need them. */
static bool list_next(const char **pp, const char *end, const char **el, size_t *el_len)
{
	const char *p = *pp, *e;

	if (!p)
		return false;
	e = memchr(p, ',', (size_t)(end - p));
	*pp = e ? e + 1 : NULL;
	if (!e)
		e = end;
	while (p < e && is_ows(*p))
		p++;
	while (e > p && is_ows(e[-1]))
		e--;
	*el = p;
	*el_len = (size_t)(e - p);
	return true;
}

/* The name part of a list element: up to ';' or OWS. */
static size_t element_name_len(const char *el, size_t n)
{
	size_t i = 0;

	while (i < n && el[i] != ';' && !is_ows(el[i]))
		i++;
	return i;
}

bool http_list_has(const char *value, size_t len, const char *token)
{
	const char *p = len ? value : NULL, *el;
	size_t n;

	while (list_next(&p, value + len, &el, &n))
		if (n && http_name_eq(el, element_name_len(el, n), token))
			return true;
	return false;
}

/* Content-Length: 1#(1*DIGIT) whose elements all agree with *cl. */
static int parse_content_length(const char *v, size_t len, bool *have, uint64_t *cl)
{
	const char *p = len ? v : NULL, *el;
	size_t n;

	if (!len)
		return HTTP_E_CONTENT_LENGTH;
	while (list_next(&p, v + len, &el, &n)) {
		uint64_t x = 0;

		if (n == 0)
			return HTTP_E_CONTENT_LENGTH;
		for (size_t i = 0; i < n; i++) {
			uint64_t dgt = (uint64_t)(el[i] - '0');

			if (el[i] < '0' || el[i] > '9' || x > ((uint64_t)INT64_MAX - dgt) / 10)
				return HTTP_E_CONTENT_LENGTH;
			x = x * 10 + dgt;
		}
		if (*have && x != *cl)
			return HTTP_E_CONTENT_LENGTH;
		*have = true;
		*cl = x;
	}
	return 0;
}

struct te_state {
	unsigned codings;	/* codings seen, all TE headers in order */
	bool chunked_seen, last_chunked, other;
	int err;
};

static void parse_transfer_encoding(const char *v, size_t len, struct te_state *te)
{
	const char *p = len ? v : NULL, *el;
	size_t n, name, k;

	while (list_next(&p, v + len, &el, &n)) {
		if (n == 0)
			continue;	/* empty list elements are ignored (RFC 9110 §5.6.1) */
		te->codings++;
		name = element_name_len(el, n);
		for (size_t i = 0; i < name; i++)
			if (!is_tchar((unsigned char)el[i]))
				te->err = HTTP_E_TRANSFER_ENCODING;
		/* after the name only OWS ";" parameters may follow */
		k = name;
		while (k < n && is_ows(el[k]))
			k++;
		if (name == 0 || (k < n && el[k] != ';'))
			te->err = HTTP_E_TRANSFER_ENCODING;
		if (http_name_eq(el, name, "chunked")) {
			/* chunked exactly once and without parameters */
			if (te->chunked_seen || name != n)
				te->err = HTTP_E_TRANSFER_ENCODING;
			te->chunked_seen = te->last_chunked = true;
		} else {
			te->last_chunked = false;
			te->other = true;
		}
	}
}

int http_request_framing(const struct http_request *req, struct http_framing *out)
{
	struct te_state te = { 0 };
	bool have_cl = false, have_te = false;
	bool c_close = false, c_keep = false, c_upgrade = false, up_ws = false;
	bool expect = false;
	int r;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < req->num_headers; i++) {
		const struct http_header *h = &req->headers[i];

		if (http_name_eq(h->name, h->name_len, "content-length")) {
			r = parse_content_length(h->value, h->value_len, &have_cl,
						 &out->content_length);
			if (r < 0)
				return r;
		} else if (http_name_eq(h->name, h->name_len, "transfer-encoding")) {
			have_te = true;
			parse_transfer_encoding(h->value, h->value_len, &te);
		} else if (http_name_eq(h->name, h->name_len, "host")) {
			if (out->has_host)
				return HTTP_E_HOST;
			for (size_t j = 0; j < h->value_len; j++)
				if (!in_map(host_map, (unsigned char)h->value[j]))
					return HTTP_E_HOST;
			out->has_host = true;
			out->host = h->value;
			out->host_len = h->value_len;
		} else if (http_name_eq(h->name, h->name_len, "connection")) {
			c_close |= http_list_has(h->value, h->value_len, "close");
			c_keep |= http_list_has(h->value, h->value_len, "keep-alive");
			c_upgrade |= http_list_has(h->value, h->value_len, "upgrade");
		} else if (http_name_eq(h->name, h->name_len, "upgrade")) {
			up_ws |= http_list_has(h->value, h->value_len, "websocket");
		} else if (http_name_eq(h->name, h->name_len, "expect")) {
			expect |= http_list_has(h->value, h->value_len, "100-continue");
		}
	}

	/* RFC 9112 §6.1 and §6.3: the smuggling rules */
	if (have_te && have_cl)
		return HTTP_E_CL_AND_TE;
	if (have_te) {
		/* an HTTP/1.0 message with TE has faulty framing: refuse it */
		if (req->minor_version == 0 || te.err || !te.codings || !te.last_chunked)
			return HTTP_E_TRANSFER_ENCODING;
		if (te.other)
			return HTTP_E_TE_UNSUPPORTED;
		out->body = HTTP_BODY_CHUNKED;
	} else if (have_cl) {
		out->body = HTTP_BODY_LENGTH;
	}
	if (req->minor_version == 1 && !out->has_host)
		return HTTP_E_HOST;

	if (req->minor_version == 1)
		out->keep_alive = !c_close;
	else
		out->keep_alive = c_keep && !c_close;
	out->expect_continue = expect && req->minor_version == 1;
	out->upgrade_websocket = req->minor_version == 1 && up_ws && c_upgrade;
	return 0;
}

/* ------------------------------------------------------ target, query, path */

int http_split_target(const char *target, size_t target_len,
		      const char **path, size_t *path_len,
		      const char **query, size_t *query_len)
{
	const char *q;

	if (target_len == 0 || target[0] != '/')
		return -EINVAL;
	q = memchr(target, '?', target_len);
	*path = target;
	*path_len = q ? (size_t)(q - target) : target_len;
	*query = q ? q + 1 : NULL;
	*query_len = q ? target_len - *path_len - 1 : 0;
	return 0;
}

void http_query_iter_init(struct http_query_iter *it, const char *q, size_t qlen)
{
	it->_p = qlen ? q : NULL;
	it->_end = qlen ? q + qlen : NULL;
}

int http_query_next(struct http_query_iter *it, struct http_query_param *ret)
{
	while (it->_p && it->_p < it->_end) {
		const char *p = it->_p, *amp, *eq;
		size_t n;

		amp = memchr(p, '&', (size_t)(it->_end - p));
		n = amp ? (size_t)(amp - p) : (size_t)(it->_end - p);
		it->_p = amp ? amp + 1 : it->_end;
		if (n == 0)
			continue;
		eq = memchr(p, '=', n);
		ret->key = p;
		ret->key_len = eq ? (size_t)(eq - p) : n;
		ret->value = eq ? eq + 1 : p + n;
		ret->value_len = eq ? n - ret->key_len - 1 : 0;
		return 1;
	}
	return 0;
}

/* Decode the byte at s[*i] ("%XX" or itself) and advance: the byte, or -EINVAL. */
static int pct_byte(const char *s, size_t n, size_t *i)
{
	int hi, lo;

	if (s[*i] != '%')
		return (unsigned char)s[(*i)++];
	if (n - *i < 3 || (hi = hexval((unsigned char)s[*i + 1])) < 0 ||
	    (lo = hexval((unsigned char)s[*i + 2])) < 0)
		return -EINVAL;
	*i += 3;
	return hi << 4 | lo;
}

/* A query byte: '+' is a space and %00 is refused (outputs are C strings). */
static int query_byte(const char *s, size_t n, size_t *i)
{
	int c;

	if (s[*i] == '+') {
		(*i)++;
		return ' ';
	}
	c = pct_byte(s, n, i);
	return c == 0 ? -EINVAL : c;
}

ssize_t http_query_decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t i = 0, o = 0;

	while (i < n) {
		int c = query_byte(s, n, &i);

		if (c < 0)
			return c;
		if (o + 1 >= outsz)
			return -ENOBUFS;
		out[o++] = (char)c;
	}
	if (outsz == 0)
		return -ENOBUFS;
	out[o] = '\0';
	return (ssize_t)o;
}

/* 1 if the decoded key equals name, 0 if not, -EINVAL for a bad escape
 * anywhere in the key (checked whole, so the answer never depends on name). */
static int query_key_eq(const char *key, size_t n, const char *name)
{
	size_t i = 0, j = 0;
	bool eq = true;

	while (i < n) {
		int c = query_byte(key, n, &i);

		if (c < 0)
			return c;
		if (eq && (name[j] == '\0' || (unsigned char)name[j] != c))
			eq = false;
		if (eq)
			j++;
	}
	return eq && name[j] == '\0';
}

ssize_t http_query_get(const char *q, size_t qlen, const char *name,
		       char *out, size_t outsz)
{
	struct http_query_iter it;
	struct http_query_param prm;

	http_query_iter_init(&it, q, qlen);
	while (http_query_next(&it, &prm)) {
		int r = query_key_eq(prm.key, prm.key_len, name);

		if (r < 0)
			return r;
		if (r)
			return http_query_decode(prm.value, prm.value_len, out, outsz);
	}
	return -ENOENT;
}

static bool dot_segment(const char *seg, size_t n)
{
	return (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
}

ssize_t http_path_decode(const char *path, size_t len, char *out, size_t outsz)
{
	size_t i = 0, o = 0, seg = 0;

	if (len == 0 || path[0] != '/')
		return -EINVAL;
	while (i < len) {
		bool escaped = path[i] == '%';
		int c = pct_byte(path, len, &i);

		if (c < 0x20 || c == 0x7f || (escaped && c == '/'))
			return -EINVAL;
		if (c == '/') {
			if (dot_segment(out + seg, o - seg))
				return -EINVAL;
			seg = o + 1;
		}
		if (o + 1 >= outsz)
			return -ENOBUFS;
		out[o++] = (char)c;
	}
	if (dot_segment(out + seg, o - seg))
		return -EINVAL;
	out[o] = '\0';
	return (ssize_t)o;
}

/* ---------------------------------------------------------- chunked bodies */

enum {
	CH_SIZE0,	/* first hex digit of a chunk size */
	CH_SIZE,	/* more hex digits */
	CH_BWS,		/* whitespace after the size; ';' must follow */
	CH_EXT,		/* chunk extensions up to CR */
	CH_SIZE_LF,	/* LF ending the size line */
	CH_DATA,
	CH_DATA_CR,	/* CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER0,	/* start of a trailer line, or CR of the final line */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF,	/* LF of the final empty line */
	CH_DONE,
};

/* A fixed framing byte: move to state next if c is want, else fail. */
static int chunk_expect(struct http_chunked *d, unsigned char c, unsigned char want,
			uint32_t next)
{
	d->_state = next;
	return c == want ? 0 : HTTP_E_CHUNK;
}

/* One metadata byte c in the current state: 0 or an HTTP_E_* error. */
static int chunk_meta(struct http_chunked *d, unsigned char c, uint64_t max_body)
{
	int v;

	if (d->_state >= CH_TRAILER0 && ++d->_count > HTTP_CHUNK_MAX_TRAILERS)
		return HTTP_E_TRAILERS_TOO_LARGE;
	switch (d->_state) {
	case CH_SIZE0:
	case CH_SIZE:
		if ((v = hexval(c)) >= 0) {
			if (d->_count++ == 16)
				return HTTP_E_CHUNK;
			d->_left = d->_left << 4 | (uint64_t)v;
			d->_state = CH_SIZE;
			if (d->body_len > max_body || d->_left > max_body - d->body_len)
				return HTTP_E_BODY_TOO_LARGE;
			return 0;
		}
		/* no digits ("+5", " 5", ";x") or a non-hex after them ("0x5") */
		if (d->_state == CH_SIZE0)
			return HTTP_E_CHUNK;
		d->_count = 0;
		if (c == '\r')
			d->_state = CH_SIZE_LF;
		else if (c == ';')
			d->_state = CH_EXT;
		else if (c == ' ' || c == '\t')
			d->_state = CH_BWS;
		else
			return HTTP_E_CHUNK;
		return 0;
	case CH_BWS:
	case CH_EXT:
		if (++d->_count > HTTP_CHUNK_MAX_EXT)
			return HTTP_E_CHUNK;
		if (d->_state == CH_BWS) {
			if (c == ';')
				d->_state = CH_EXT;
			else if (c != ' ' && c != '\t')
				return HTTP_E_CHUNK;
		} else if (c == '\r') {
			d->_state = CH_SIZE_LF;
		} else if (!is_value_char(c)) {
			return HTTP_E_CHUNK;
		}
		return 0;
	case CH_SIZE_LF:
		d->_count = 0;
		return chunk_expect(d, c, '\n', d->_left ? CH_DATA : CH_TRAILER0);
	case CH_DATA_CR:
		return chunk_expect(d, c, '\r', CH_DATA_LF);
	case CH_DATA_LF:
		return chunk_expect(d, c, '\n', CH_SIZE0);
	case CH_TRAILER0:
	case CH_TRAILER_NAME:
		/* a name must start the line: no obs-fold, no empty name */
		if (c == '\r' && d->_state == CH_TRAILER0)
			d->_state = CH_END_LF;
		else if (c == ':' && d->_state == CH_TRAILER_NAME)
			d->_state = CH_TRAILER_VALUE;
		else if (is_tchar(c))
			d->_state = CH_TRAILER_NAME;
		else
			return HTTP_E_CHUNK;
		return 0;
	case CH_TRAILER_VALUE:
		if (c == '\r')
			d->_state = CH_TRAILER_LF;
		else if (!is_value_char(c))
			return HTTP_E_CHUNK;
		return 0;
	case CH_TRAILER_LF:
		return chunk_expect(d, c, '\n', CH_TRAILER0);
	case CH_END_LF:
		return chunk_expect(d, c, '\n', CH_DONE);
	default:
		return HTTP_E_CHUNK;	/* corrupt state: never trust it */
	}
}

int http_chunked_decode(struct http_chunked *d, const char *in, size_t in_len,
			char *out, size_t *ret_out, size_t *ret_consumed,
			uint64_t max_body)
{
	size_t i = 0, o = 0;
	int err = d->_err;

	while (!err && i < in_len && d->_state != CH_DONE) {
		if (d->_state == CH_DATA) {
			size_t n = in_len - i;

			if (n > d->_left)
				n = (size_t)d->_left;
			/* o <= i, so this is safe in place (out == in) */
			memmove(out + o, in + i, n);
			i += n;
			o += n;
			d->_left -= n;
			d->body_len += n;
			if (d->_left == 0)
				d->_state = CH_DATA_CR;
			continue;
		}
		if (++d->overhead > HTTP_CHUNK_OVERHEAD_BASE + d->body_len)
			err = HTTP_E_CHUNK_OVERHEAD;
		else
			err = chunk_meta(d, (unsigned char)in[i], max_body);
		i++;
	}
	*ret_out = o;
	*ret_consumed = i;
	if (err) {
		d->_err = err;
		return err;
	}
	return d->_state == CH_DONE ? 0 : HTTP_INCOMPLETE;
}
