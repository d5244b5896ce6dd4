/* httpd.h - the HTTP/1.1 server on io_uring shared by intake (client API)
 * and reporter (provider API). One per actor, driven by the actor's loop.
 *
 * Requests on one connection are handled one at a time and answered in
 * order (pipelined requests wait in the connection's buffer), so a handler
 * may answer later: the intake queues submits of one loop turn, commits them
 * in one LMDB transaction, then answers them all (group commit). Every
 * request gets exactly one answer: httpd_respond*(), or httpd_detach() for
 * an upgrade. Until then the request's pointers (method, path, headers,
 * body) stay valid; after it they are gone.
 *
 * Errors the parser finds (400/408/413/414/431/501/505), policy refusals
 * and connections over the limits (503) are answered by the server itself
 * in the API's error envelope and the connection is closed; the handler
 * never sees those requests.
 *
 * Ownership: httpd_init() takes the listening socket; httpd_free() closes
 * every connection. A request belongs to the server; the handler borrows it
 * until it answers.
 *
 * Deferred answers: a handler may return without answering and call
 * httpd_respond*() later, in the same or a later loop turn. If the client
 * goes away meanwhile (the server watches for its FIN/RST while a request
 * waits, so a client that half-closes after sending counts as gone), the
 * connection is closed and the request marked dead, but the request object
 * and its pointers stay valid until it is answered; answering a dead request
 * just releases it. The request object is reused for the connection's
 * next request, so a request must be answered exactly once (a second
 * answer may hit the next request). httpd_free() drops unanswered
 * requests: never answer one after it.
 *
 * Loop integration: every op's user_data is a struct loop_op inside the
 * server's objects, so the actor's loop_wait() drives it; call httpd_tick()
 * every turn, and compute the next sleep with httpd_next_deadline() after
 * the turn's deferred answers (it is 0 while answered connections have a
 * pipelined request waiting: those are parsed in httpd_tick(), never from
 * inside httpd_respond(), so a caller answering a batch is not re-entered).
 *
 * I/O: multishot accept; a single-shot recv into a per-connection buffer
 * (nothing is read while the handler holds a request); one send at a time,
 * answers of pipelined requests coalesced into one send. Files are streamed
 * by io_uring read into the output buffer, then send, 64 KiB at a time. */
#ifndef JOBRING_HTTPD_H
#define JOBRING_HTTPD_H

#include "jobring/http_parse.h"
#include "jobring/loop.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTPD_MAX_HEADERS 64

struct httpd;
struct httpd_conn;

struct httpd_req {
	struct httpd_conn *conn;
	const char *method;
	size_t method_len;
	const char *path;	/* raw (percent-encoded) path, no query */
	size_t path_len;
	const char *query;	/* after '?', raw; NULL if none */
	size_t query_len;
	struct http_header *headers;
	size_t num_headers;
	const char *body;	/* whole body (buffered mode), decoded if chunked;
				 * NULL when none or streamed (not NUL-terminated) */
	size_t body_len;	/* streamed: the total handed to on_chunk */
	int head;		/* HEAD: the answer is sent without its body */
	int keep_alive;		/* from the framing; clear it before answering
				 * to close the connection after the answer */
	int upgrade_websocket;
	uint64_t peer_ip;	/* IPv4 in host order (for per-IP limits); for
				 * IPv6 its /64 prefix, v4-mapped as IPv4 */
	int64_t started_ns;	/* mono_ns when the head was complete */
	void *user;		/* handler's scratch */
};

/** Called once per complete request (head + body in buffered mode). */
typedef void (*httpd_handler)(struct httpd *h, struct httpd_req *req, void *arg);

/** Streaming request bodies (e.g. a blob upload written to a file as it
 *  arrives). Called after the head with body_len 0 to decide: return > 0 to
 *  stream, 0 to buffer (then limit applies), < 0 to refuse with that HTTP
 *  status (e.g. -413, -404). When streaming, on_chunk gets the decoded body
 *  piece by piece (last = 1 on the final call, possibly with n = 0); return
 *  0 to continue or a negative HTTP status to abort (the server answers it
 *  and closes). After the last chunk the normal handler is called with
 *  body = NULL. decide is only called for requests that have a body
 *  (Content-Length > 0 or chunked), before any 100 Continue is sent; a
 *  refusal is answered in the error envelope and the connection closed.
 *  on_chunk's p is valid during the call only. Neither may answer req. */
struct httpd_body_policy {
	/* decide per request after the head: returns the body limit in bytes for
	 * buffered mode (0 = use the default), HTTPD_STREAM to stream, or a
	 * negative HTTP status to refuse before reading the body */
	int64_t (*decide)(struct httpd *h, struct httpd_req *req, void *arg);
	int (*on_chunk)(struct httpd *h, struct httpd_req *req, const char *p, size_t n,
			int last, void *arg);
};
#define HTTPD_STREAM INT64_MAX

struct httpd_config {
	int listen_fd;
	unsigned max_conns;		/* over it: accept, answer 503, close */
	unsigned max_conns_per_ip;	/* 0 = no limit */
	int header_timeout_ms;		/* head must arrive within this from its
					 * first byte (or from the previous
					 * answer, if pipelined): 408 + close */
	int idle_timeout_ms;		/* keep-alive idle close (silent); also a
					 * send making no progress this long */
	int body_timeout_ms;		/* 408 + close when no body byte arrives
					 * for this long (0: header_timeout_ms) */
	size_t max_request_line;	/* 414 */
	size_t max_header_bytes;	/* 431 */
	size_t max_body;		/* default body limit (413) */
	const char *server_name;	/* "Server:" header value; must outlive h */
	httpd_handler handler;
	struct httpd_body_policy policy;	/* optional */
	void *arg;
};

/* Zero means a default: header 10 s, idle 60 s, request line 8 KiB, header
 * section 16 KiB, body 1 MiB, server "jobring"; max_conns 0: no limit. */

/** Start accepting on cfg->listen_fd (multishot accept). 0 or -errno. */
int httpd_init(struct httpd **ret, struct loop *loop, const struct httpd_config *cfg);
/** Close all connections and the listener (it is owned by httpd). Ops
 *  still in flight name the server's memory, so this runs loop_wait() (and
 *  with it the loop's other callbacks) until their completions are in. */
void httpd_free(struct httpd *h);

/** Answer a request. extra_headers is NULL or complete lines
 *  ("Retry-After: 3\r\n"). The body is copied. Content-Length, Connection and
 *  Server are added by the server. For HEAD the body is left out but
 *  Content-Length says len; 1xx, 204 and 304 get neither. */
void httpd_respond(struct httpd_req *req, int status, const char *content_type,
		   const char *extra_headers, const void *body, size_t len);
/** Answer with len bytes of an open file from offset off; the server owns fd
 *  from now on (closes it when sent or the connection dies). */
void httpd_respond_file(struct httpd_req *req, int status, const char *content_type,
			const char *extra_headers, int fd, off_t off, size_t len);
/** Send "HTTP/1.1 100 Continue" is automatic; this answers an upgrade: send
 *  `head` (the 101 response) and hand over the socket: returns the fd, which
 *  the caller now owns, after the server has forgotten the connection.
 *  Bytes already received after the request head are copied into
 *  leftover (up to *leftover_len; *leftover_len gets the count). The 101 is
 *  written synchronously before returning (the socket is blocking).
 *  Failures that leave the request pending (answer it normally):
 *  -EINVAL not a delivered request, -ENOBUFS leftover too small, -EBUSY
 *  I/O in flight (cannot happen for a request delivered with
 *  upgrade_websocket set: the server delivers those once earlier answers
 *  are sent). Failures that answer it (connection closed, request
 *  released): -ECONNRESET the client is gone, or the write's -errno. */
int httpd_detach(struct httpd_req *req, const char *head, size_t head_len, void *leftover,
		 size_t *leftover_len);

/** Run timeouts (header, idle, slow body). Call every loop turn. */
void httpd_tick(struct httpd *h, int64_t now_ns);
/** The next time httpd_tick has work (mono ns), or INT64_MAX. */
int64_t httpd_next_deadline(struct httpd *h);
/** Stop accepting (drain): existing connections finish their current request
 *  and close. */
void httpd_stop_accepting(struct httpd *h);
/** Open connections and requests waiting for an answer. */
unsigned httpd_conns(const struct httpd *h);
unsigned httpd_pending(const struct httpd *h);

/** Helpers for handlers. */
/** Value of header `name` (case-insensitive) or NULL; *len gets its length. */
const char *httpd_header(const struct httpd_req *req, const char *name, size_t *len);
/** Answer {"error":{"code":code,"message":message}} with the given status. */
void httpd_error(struct httpd_req *req, int status, const char *code, const char *message);

#endif
