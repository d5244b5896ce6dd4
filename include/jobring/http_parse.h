/* http_parse.h - zero-copy HTTP/1.1 request parsing: request line and
 * headers, body framing (Content-Length / chunked), a resumable chunked
 * body decoder, request-target helpers (path, query) and reason phrases.
 *
 * Ownership: nothing here allocates. Every pointer the parser returns points
 * INTO the caller's buffer and is valid only while that buffer is unchanged:
 * copy what you keep before the buffer is reused (an io_uring provided
 * buffer, a compacted connection buffer). Header arrays and output buffers
 * are the caller's.
 *
 * Errors: functions return >= 0 on success and a negative code on failure.
 * The request and body parsers use HTTP_INCOMPLETE (-EAGAIN: "feed me more
 * bytes") and the HTTP_E_* codes below, a reserved range (like LMDB's
 * MDB_* codes) so that http_error_status() can map each one to a status and
 * http_error_reason() to a human sentence. The small helpers (header find,
 * query, path) return -errno (-ENOENT, -EINVAL, -ENOBUFS).
 *
 * Strictness (RFC 9110/9112; the choices are ours, see http_parse.c):
 *  - Lines must end in CRLF. A bare LF is rejected (400), as is a bare CR.
 *    RFC 9112 §2.2 lets a server accept LF alone, but a front proxy that
 *    does not would see different header boundaries than we do (a smuggling
 *    primitive), and every real client sends CRLF.
 *  - obs-fold (a line starting with SP/HTAB), whitespace before ':', NUL
 *    and other controls in names or values are rejected with 400.
 *  - The target is origin-form ("/..."), or "*" for OPTIONS only; absolute-
 *    and authority-form get 400. Target bytes are VCHAR minus '#'.
 *  - The version must be HTTP/1.0 or HTTP/1.1; any other well-formed
 *    HTTP/x.y gets 505 and a malformed one 400.
 */
#ifndef JOBRING_HTTP_PARSE_H
#define JOBRING_HTTP_PARSE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** "The request (or body) is not complete yet: call again with more bytes." */
#define HTTP_INCOMPLETE (-EAGAIN)

/** Parse errors, a reserved range. Each maps to one status (http_error_status). */
enum http_err {
	HTTP_E_REQUEST_LINE = -4000,	/**< 400 malformed request line */
	HTTP_E_METHOD,			/**< 400 method is not a token */
	HTTP_E_TARGET,			/**< 400 bad or non-origin-form target */
	HTTP_E_VERSION_SYNTAX,		/**< 400 malformed HTTP-version */
	HTTP_E_LINE_ENDING,		/**< 400 bare CR or bare LF */
	HTTP_E_HEADER_NAME,		/**< 400 empty/non-token name, space before ':' */
	HTTP_E_HEADER_VALUE,		/**< 400 control character in a value */
	HTTP_E_OBS_FOLD,		/**< 400 continuation line */
	HTTP_E_HOST,			/**< 400 HTTP/1.1 without Host, several Hosts, bad Host */
	HTTP_E_CONTENT_LENGTH,		/**< 400 bad or conflicting Content-Length */
	HTTP_E_TRANSFER_ENCODING,	/**< 400 chunked not final, repeated, or on HTTP/1.0 */
	HTTP_E_CL_AND_TE,		/**< 400 both Content-Length and Transfer-Encoding */
	HTTP_E_CHUNK,			/**< 400 malformed chunked body */
	HTTP_E_CHUNK_OVERHEAD,		/**< 400 chunk metadata out of proportion to data */
	HTTP_E_URI_TOO_LONG,		/**< 414 request line over max_request_line */
	HTTP_E_HEADERS_TOO_LARGE,	/**< 431 header section over max_header_bytes */
	HTTP_E_TOO_MANY_HEADERS,	/**< 431 more header lines than the array holds */
	HTTP_E_TRAILERS_TOO_LARGE,	/**< 431 chunked trailer section over its cap */
	HTTP_E_BODY_TOO_LARGE,		/**< 413 body over the caller's limit */
	HTTP_E_TE_UNSUPPORTED,		/**< 501 a transfer coding other than chunked */
	HTTP_E_VERSION,			/**< 505 HTTP version other than 1.0 / 1.1 */
};

/** Map a parser error (HTTP_E_*) to its status: 400, 413, 414, 431, 501 or
 *  505. -EINVAL (bad query/path escapes) gives 400; anything else 500. */
int http_error_status(int err);

/** A static sentence for an HTTP_E_* error ("obs-fold is not allowed"),
 *  fit for an error body. Unknown codes give the status's reason phrase. */
const char *http_error_reason(int err);

/** Standard reason phrase for the statuses jobring sends ("Not Found");
 *  "Unknown" for any other code. Static storage. */
const char *http_reason(int status);

/** One header line. name/value point into the request buffer; the value has
 *  leading and trailing SP/HTAB removed and may be empty. */
struct http_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/** A parsed request head; every pointer points into the parsed buffer. */
struct http_request {
	const char *method;	/**< a token, case-sensitive ("GET") */
	size_t method_len;
	const char *target;	/**< "/path?query" or "*" (OPTIONS only) */
	size_t target_len;
	int minor_version;	/**< 0 or 1 (HTTP/1.x) */
	struct http_header *headers; /**< the caller's array (hdrs) */
	size_t num_headers;
};

/** Input-controlled sizes the request parser refuses to exceed. */
struct http_limits {
	size_t max_request_line; /**< request line bytes, CRLF excluded (414) */
	size_t max_header_bytes; /**< bytes after the request line, final CRLF included (431) */
};

/** 8 KiB request line, 16 KiB header section: what lim == NULL means. */
#define HTTP_LIMITS_DEFAULT { .max_request_line = 8192, .max_header_bytes = 16384 }

/**
 * Parse the head (request line + header section) of one request at buf.
 * One leading CRLF is skipped (RFC 9112 §2.2). The parser is stateless:
 * after more bytes arrive, call it again on the whole buffer.
 *
 * @param hdrs, max_hdrs  caller's array for the headers; a request with more
 *                        header lines fails with HTTP_E_TOO_MANY_HEADERS.
 * @param lim             limits, or NULL for HTTP_LIMITS_DEFAULT. Values are
 *                        clamped to 1 MiB each so the result fits an int.
 * @return the head's length in bytes (> 0; the body or the next request
 *         starts there), HTTP_INCOMPLETE, or an HTTP_E_* error. A limit that
 *         the bytes at hand already exceed fails at once, without waiting for
 *         the end of the head; so does a syntax error already in the buffer.
 *         Errors do not depend on how the bytes were split across calls.
 *         On anything but success *req is unspecified.
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req,
		       struct http_header *hdrs, size_t max_hdrs,
		       const struct http_limits *lim);

/**
 * Cheap slowloris guard (picohttpparser's last_len idea): true if buf[0,len)
 * is worth a full http_parse_request() call, given that the previous attempt
 * saw last_len bytes and got HTTP_INCOMPLETE (pass 0 on the first attempt).
 * It looks only at the new bytes (plus 3 before them) for the CRLFCRLF that
 * ends every head, so re-parsing a slowly sent head costs O(len), not
 * O(len^2). It also says yes once when len first reaches max_request_line + 3
 * and once at max_request_line + max_header_bytes + 5, where the parser can
 * surely decide each limit. So it never says no to a complete head. A
 * limit or syntax error may be noticed later than a full parse would notice it,
 * but only up to those bounded lengths, which the caller's buffer must allow
 * for anyway. May say yes to an incomplete buffer.
 */
bool http_head_ready(const char *buf, size_t len, size_t last_len,
		     const struct http_limits *lim);

/** How the body of a request is delimited. */
enum http_body_kind {
	HTTP_BODY_NONE,		/**< no body (no CL, no TE) */
	HTTP_BODY_LENGTH,	/**< exactly content_length bytes (may be 0) */
	HTTP_BODY_CHUNKED,	/**< Transfer-Encoding: chunked; use http_chunked_decode */
};

/** Framing and connection semantics of a parsed request. */
struct http_framing {
	enum http_body_kind body;
	uint64_t content_length;	/**< valid for HTTP_BODY_LENGTH; <= INT64_MAX */
	bool keep_alive;		/**< 1.1 unless "close"; 1.0 only with "keep-alive" */
	bool expect_continue;		/**< Expect: 100-continue (ignored on HTTP/1.0) */
	bool upgrade_websocket;		/**< HTTP/1.1, Upgrade lists "websocket" and Connection lists "upgrade" */
	bool has_host;			/**< a (single) Host header was present */
	const char *host;		/**< its value (into the buffer), or NULL */
	size_t host_len;
};

/**
 * Decide the body framing and connection flags of req (RFC 9112 §6).
 * Content-Length: digits only, <= INT64_MAX; repeated headers or a comma list
 * are accepted only if every value is the same number (RFC 9110 §8.6 lets us
 * pick), else HTTP_E_CONTENT_LENGTH. Transfer-Encoding: the last coding must
 * be "chunked" (case-insensitive, once, no parameters), else
 * HTTP_E_TRANSFER_ENCODING (400, the RFC's MUST); other codings before it
 * are HTTP_E_TE_UNSUPPORTED (501); any TE on HTTP/1.0 is 400. CL with TE is
 * HTTP_E_CL_AND_TE. HTTP/1.1 needs exactly one Host (HTTP_E_HOST).
 * @return 0, or an HTTP_E_* error (out is then unspecified).
 */
int http_request_framing(const struct http_request *req, struct http_framing *out);

/** Case-insensitive (ASCII) compare of the name a[0,alen) with the C string b. */
bool http_name_eq(const char *a, size_t alen, const char *b);

/** Index of the first header at index >= from whose name equals name
 *  (case-insensitive), or -ENOENT. */
int http_header_find(const struct http_request *req, const char *name, size_t from);

/** True if the comma-separated list value[0,len) has an element equal to
 *  token (case-insensitive, OWS around elements ignored, ";params" ignored). */
bool http_list_has(const char *value, size_t len, const char *token);

/**
 * Split an origin-form target into path and query. *query is NULL when there
 * is no '?', else it points after the '?' (possibly with *query_len 0).
 * @return 0, or -EINVAL if target does not start with '/'.
 */
int http_split_target(const char *target, size_t target_len,
		      const char **path, size_t *path_len,
		      const char **query, size_t *query_len);

/** One raw (still percent-encoded) key=value of a query string. */
struct http_query_param {
	const char *key;
	size_t key_len;
	const char *value;	/**< empty (len 0) for "key" without '=' */
	size_t value_len;
};

/** Iterator over query parameters; init with http_query_iter_init. */
struct http_query_iter {
	const char *_p, *_end;
};

/** Start iterating over q[0,qlen) ('&'-separated; empty pieces skipped). */
void http_query_iter_init(struct http_query_iter *it, const char *q, size_t qlen);

/** Next parameter into *ret (pointers into q): 1, or 0 at the end. */
int http_query_next(struct http_query_iter *it, struct http_query_param *ret);

/**
 * Percent-decode a query key or value into out (NUL-terminated), with '+' as
 * space (application/x-www-form-urlencoded).
 * @return the decoded length, -EINVAL for a bad escape or %00, -ENOBUFS if
 *         out (outsz bytes, NUL included) is too small.
 */
ssize_t http_query_decode(const char *s, size_t n, char *out, size_t outsz);

/**
 * Find parameter name (compared after decoding the key) in query q[0,qlen)
 * and decode its first occurrence's value into out as http_query_decode does.
 * @return the value's length, -ENOENT if absent, -EINVAL (bad escape in the
 *         matched value) or -ENOBUFS.
 */
ssize_t http_query_get(const char *q, size_t qlen, const char *name,
		       char *out, size_t outsz);

/**
 * Percent-decode a path ("/jobs/abc") into out, NUL-terminated. '+' stays.
 * Rejects (-EINVAL) bad escapes, a decoded NUL or other control character,
 * an encoded '/' (%2F, which would change the segments) and any "." or ".."
 * segment, raw or encoded. The path must start with '/'.
 * @return the decoded length, -EINVAL, or -ENOBUFS if out is too small.
 */
ssize_t http_path_decode(const char *path, size_t len, char *out, size_t outsz);

/** Per line cap on chunk extensions ("5;name=value"). */
#define HTTP_CHUNK_MAX_EXT 1024
/** Cap on the trailer section after the last chunk (HTTP_E_TRAILERS_TOO_LARGE). */
#define HTTP_CHUNK_MAX_TRAILERS 8192
/** Chunk metadata (size lines, extensions, CRLFs, trailers) may total at most
 *  this plus the decoded body length so far (HTTP_E_CHUNK_OVERHEAD). */
#define HTTP_CHUNK_OVERHEAD_BASE 65536

/** Resumable chunked-body decoder state. Zero it before the first call. */
struct http_chunked {
	uint64_t body_len;	/**< decoded body bytes so far */
	uint64_t overhead;	/**< metadata bytes so far */
	uint64_t _left;		/* bytes left in the current chunk / chunk size being read */
	uint32_t _state;
	uint32_t _count;	/* hex digits, extension or trailer bytes */
	int _err;		/* sticky error */
};

/**
 * Decode a chunked body from in[0,in_len), appending data bytes to out.
 * out needs room for in_len bytes and may equal in (decoding in place);
 * otherwise it must not overlap in. Trailers are checked and skipped.
 * Chunk sizes are strict: hex digits only (no sign, "0x", or leading
 * whitespace), at most 16 digits, no overflow. Bare LF is rejected.
 *
 * @param ret_out       decoded bytes written to out by this call
 * @param ret_consumed  bytes of in used by this call; after completion the
 *                      rest of in belongs to the next request
 * @param max_body      limit on d->body_len (HTTP_E_BODY_TOO_LARGE, checked
 *                      as soon as a chunk size is read)
 * @return 0 when the last chunk and trailers are done, HTTP_INCOMPLETE when
 *         all of in was used and more is needed, or an HTTP_E_* error (400,
 *         413, 431), which sticks: later calls return it again.
 */
int http_chunked_decode(struct http_chunked *d, const char *in, size_t in_len,
			char *out, size_t *ret_out, size_t *ret_consumed,
			uint64_t max_body);

#endif
