/* curlio.h - HTTP client requests with libcurl's multi interface, driven
 * from an actor's io_uring loop (the dispatcher's provider calls and
 * cancels, the notifier's webhook deliveries).
 *
 * How it runs: curl tells us, per socket, whether it wants to read or write
 * (CURLMOPT_SOCKETFUNCTION); for each such socket curlio keeps one one-shot
 * IORING_OP_POLL_ADD in flight for those events and re-arms it after every
 * completion, which gives the level-triggered readiness curl expects (curl
 * may leave bytes in a socket after an action, so an edge-triggered poll
 * could stall). A completion calls curl_multi_socket_action() for that fd.
 * Curl's one timer (CURLMOPT_TIMERFUNCTION) becomes a deadline the owner
 * folds into its own wait:
 *
 *	for (;;) {
 *		int64_t dl = curlio_next_deadline_ns(c), now = mono_ns();
 *		int64_t ms = dl == INT64_MAX ? -1 : dl <= now ? 0 : (dl - now + 999999) / 1000000;
 *		loop_wait(&loop, ms);
 *		curlio_tick(c, mono_ns());
 *	}
 *
 * Per-socket state is a heap object whose embedded loop_op is the poll's
 * user_data; when curl removes a socket the object is marked dead, its poll
 * is cancelled, and it is freed only once the kernel has returned every op
 * naming it. A completion for a socket that curl has since closed (and
 * whose fd number curl may already use for a new connection) therefore
 * lands on the dead object and is ignored; it can never be mistaken for
 * the new socket, which has its own object.
 *
 * Connections: HTTP/1.1 only, keep-alive and connection reuse on, TCP
 * keepalive on, no redirects followed, only http and https, proxies from
 * the environment ignored. Easy handles are pooled, so the hot path does
 * not create one per request. Nothing here blocks: no curl_easy_perform.
 *
 * Not thread-safe: one owner (the actor) calls everything, from one thread.
 * The loop must outlive the struct curlio. */
#ifndef JOBRING_CURLIO_H
#define JOBRING_CURLIO_H

#include "jobring/loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CURLIO_MAX_HEADERS 64               /* headers per request */
#define CURLIO_MAX_HEADER_LEN 8192          /* bytes per "Name: value" */
#define CURLIO_MAX_URL_LEN 8192
#define CURLIO_DEFAULT_MAX_BODY (64u << 10) /* response bytes kept */
#define CURLIO_MAX_MAX_BODY (16u << 20)     /* largest max_body accepted */
#define CURLIO_MAX_TIMEOUT_MS 3600000u      /* one hour */
#define CURLIO_RETRY_AFTER_MAX 2592000      /* Retry-After clamp: 30 days */

/** Limits and defaults; a zero field takes the default in brackets. */
struct curlio_config {
	unsigned max_connections;      /* open connections in total [64] */
	unsigned max_host_connections; /* open connections per host [32] */
	unsigned max_idle_connections; /* kept in the reuse cache [max_connections] */
	unsigned max_transfers;        /* in flight at once [4096] */
	unsigned connect_timeout_ms;   /* TCP (+TLS) connect [5000] */
	unsigned default_timeout_ms;   /* when a request gives 0 [30000] */
	size_t max_request_body;       /* bytes [1 MiB] */
	const char *user_agent;        /* copied [jobring/<version>] */
	/** Refuse to connect to the reserved addresses of netaddr.h
	 *  (loopback, private, link-local, CGNAT, documentation, multicast,
	 *  unspecified; IPv4, IPv6, v4-mapped and NAT64), checked on the
	 *  resolved address as each socket is opened, so DNS
	 *  rebinding cannot get around it. The transfer fails with curl code
	 *  7 (CURLE_COULDNT_CONNECT) and error "refused: private address". */
	bool deny_private;
};

enum curlio_method {
	CURLIO_GET,
	CURLIO_POST,
	CURLIO_PUT,
};

/** What a finished transfer produced. Every pointer in it is valid only
 *  during the done() call; copy what you keep. */
struct curlio_result {
	int code;              /* CURLcode: 0 when a whole response arrived (any status) */
	int status;            /* HTTP status of the response, 0 if none */
	const char *body;      /* the kept response bytes, NUL-terminated ("" if none) */
	size_t body_len;       /* bytes kept, <= the request's max_body */
	uint64_t body_total;   /* bytes received; those past body_len were discarded */
	int64_t retry_after_s; /* Retry-After (delta-seconds or HTTP-date) in
				* seconds, clamped to [0, CURLIO_RETRY_AFTER_MAX];
				* -1 if absent or unparseable */
	int64_t total_us;      /* transfer time as curl measured it */
	const char *error;     /* "" when code is 0, else what went wrong */
};

/** Completion callback, called exactly once per started request, from
 *  curlio_tick() or from the loop's dispatch of a poll completion. It may
 *  call curlio_start() (e.g. to send the next request); it must not call
 *  curlio_tick() or curlio_free(). */
typedef void (*curlio_done_fn)(const struct curlio_result *r, void *user);

/** One request. curlio_start() copies everything it needs (url, headers,
 *  body), so the struct and all it points to may be freed when it returns. */
struct curlio_req {
	enum curlio_method method;
	const char *url;            /* http:// or https:// */
	const char *const *headers; /* nheaders "Name: value" strings, no CR/LF */
	unsigned nheaders;          /* <= CURLIO_MAX_HEADERS */
	const void *body;           /* POST/PUT only; copied; GET must have none */
	size_t body_len;            /* <= config max_request_body */
	unsigned timeout_ms;        /* whole transfer; 0: config default */
	unsigned max_body;          /* response bytes kept; 0: CURLIO_DEFAULT_MAX_BODY */
	curlio_done_fn done;        /* required */
	void *user;                 /* passed to done */
};

struct curlio;

/** Create a client on loop (which must outlive it) with cfg (NULL: all
 *  defaults; not kept). Calls curl_global_init(). 0 or -ENOMEM / -EINVAL. */
int curlio_init(struct curlio **ret, struct loop *loop, const struct curlio_config *cfg);

/** Start r. 0 on success: r->done will be called exactly once, never from
 *  inside this call. -EINVAL for a bad request (missing url or done, a
 *  header with CR/LF, a body on GET, a limit exceeded), -EAGAIN when
 *  max_transfers are in flight, -ENOMEM or -EIO if curl refused; on error
 *  done is not called. Errors in the URL itself, DNS, connecting and the
 *  like arrive through done with their curl code. */
int curlio_start(struct curlio *c, const struct curlio_req *r);

/** Transfers started and not yet completed. */
unsigned curlio_active(const struct curlio *c);

/** Of those, the ones waiting for a connection: at most max_host_connections
 *  transfers per "scheme://host:port" run in curl at once, the others wait
 *  in curlio in the order they were started (their timeout starts when
 *  they run). O(waiting); for tests and metrics. */
unsigned curlio_waiting(const struct curlio *c);

/** When curlio_tick() next needs to run: CLOCK_MONOTONIC ns (mono_ns()),
 *  INT64_MAX if curl has no timer. May be in the past (run it now). */
int64_t curlio_next_deadline_ns(const struct curlio *c);

/** Run curl's timer if it is due at now_ns, deliver finished transfers to
 *  their done callbacks, and queue the poll changes curl asked for. Call
 *  once per loop turn (cheap when nothing is due). */
void curlio_tick(struct curlio *c, int64_t now_ns);

/** Abort every transfer in flight WITHOUT calling their done callbacks,
 *  close all connections and free everything. Cancels the polls it has in
 *  flight and runs loop_wait() on the loop until the kernel has returned
 *  them (normally one turn), so other ops' completions on that loop may be
 *  dispatched meanwhile: call it where their callbacks may run (e.g. at
 *  actor shutdown), never from a done callback. NULL is a no-op. */
void curlio_free(struct curlio *c);

#endif
