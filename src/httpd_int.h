/* httpd_int.h - private glue between httpd.c (accept, connection lifetime,
 * timers, public entry points), httpd_read.c (reading, parsing, the
 * connection state machine) and httpd_send.c (answers, output, files,
 * detach). Not a module surface: only those three files include it.
 *
 * Connection lifetime: c->refs counts the io_uring ops in flight that name
 * the connection (recv, send, file read, watch poll, poll remove) plus one
 * while a handler holds its request. hconn_close() only marks the connection
 * dead and shuts the socket down (which makes a pending recv/send/poll
 * complete); the last hconn_put() frees it. Every entry point that is not an
 * op's own callback (tick, httpd_respond, ...) takes a temporary ref, so a
 * connection never disappears under the code using it: hconn_step() and
 * everything it calls rely on the caller holding one. */
#ifndef JOBRING_HTTPD_INT_H
#define JOBRING_HTTPD_INT_H

#include "jobring/buf.h"
#include "jobring/httpd.h"

#include <stdbool.h>
#include <stddef.h>

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* Timer kinds. Each has a fixed duration, so appending to its list keeps
 * the list sorted by deadline (FIFO): tick pops from the heads. */
enum {
	T_IDLE,		/* keep-alive idle: close silently */
	T_HEAD,		/* head not complete: 408 */
	T_BODY,		/* no body bytes for a while: 408 */
	T_LINGER,	/* after our FIN, waiting for the peer's */
	T_SEND,		/* output made no progress: close */
	T_COUNT,
	T_NONE = -1,
};

struct tnode {
	struct tnode *prev, *next;
	int64_t at;
	int kind;
};

/* Read-side state of a connection (one request at a time). */
enum conn_state {
	ST_READ_HEAD,	/* waiting for (the rest of) a request head */
	ST_READ_BODY,	/* reading the body (buffered or streamed) */
	ST_DELIVER,	/* complete: call the handler */
	ST_WAIT_OUT,	/* upgrade request: deliver once earlier output is sent */
	ST_HANDLING,	/* the handler holds the request */
	ST_FILE,	/* answered with a file that is still being sent */
	ST_CLOSING,	/* send what is queued, then linger */
	ST_LINGER,	/* FIN sent; drain input until the peer's FIN or timeout */
};

struct httpd_conn {
	struct httpd *h;
	struct httpd_conn *prev, *next;	/* h->all */
	struct httpd_conn *ready_next;	/* h->ready */
	int fd;
	enum conn_state state;
	unsigned refs;
	bool dead, hold, counted, reject, in_handler, on_ready, keep, peer_eof;
	bool recv_busy, send_busy, watching;	/* send_busy: a send or file read */
	struct loop_op recv_op, send_op, read_op, watch_op, unwatch_op;
	uint64_t ip;
	/* input: the current request starts at in + in_start */
	char *in;
	size_t in_cap, in_start, in_len;
	size_t last_len;	/* bytes seen by the last incomplete head parse */
	size_t head_len;	/* current request's head */
	size_t req_end;		/* its head + (buffered) body, from in_start */
	bool req_valid;		/* req's pointers point into in */
	/* body */
	enum http_body_kind body_kind;
	bool stream;
	uint64_t body_left;	/* Content-Length bytes still expected */
	uint64_t body_limit;
	size_t body_len;	/* decoded body bytes kept after the head */
	uint64_t streamed;
	struct http_chunked ch;
	struct httpd_req req;
	struct http_header hdrs[HTTPD_MAX_HEADERS];
	/* output: out accumulates answers, wout is what the kernel is sending
	 * (or what a file read fills); they swap when wout is done */
	struct buf out, wout;
	size_t wsent;
	int file_fd;
	off_t file_off;
	size_t file_left;
	struct tnode rt, wt;	/* read-side and send timers */
};

struct iptab_ent {
	uint64_t key;
	uint32_t n;	/* 0: free slot */
};

struct httpd {
	struct loop *loop;
	struct httpd_config cfg;
	struct http_limits lim;
	int listen_fd;
	bool accept_armed, cancel_busy, stopping, freeing;
	int64_t accept_retry_ns;	/* 0 or when to re-arm after EMFILE & co */
	struct loop_op accept_op, cancel_op;
	unsigned nconns, npending, nreject, nfree;
	int64_t tmo_ns[T_COUNT];
	struct tnode timers[T_COUNT];	/* list heads (sentinels) */
	struct httpd_conn all;		/* sentinel of every allocated conn */
	struct httpd_conn *ready;	/* conns with buffered requests to parse */
	struct httpd_conn *freelist;	/* spare conns, buffers kept */
	struct iptab_ent *ipt;
	size_t ipt_cap, ipt_used;
};

#define HTTPD_IN_INIT 8192		/* input buffer of a fresh connection */
#define HTTPD_IN_KEEP (64 * 1024)	/* idle connections shrink back above this */
#define HTTPD_CHUNK (64 * 1024)		/* file read size */
#define HTTPD_OUT_HIGH (256 * 1024)	/* queued output above which we stop parsing */

/* httpd.c */
void hconn_close(struct httpd_conn *c);
void hconn_put(struct httpd_conn *c);
void hconn_unlink(struct httpd_conn *c);
void htimer_set(struct httpd_conn *c, struct tnode *t, int kind);
void htimer_clear(struct tnode *t);

/* httpd_read.c */
void hconn_read_init(struct httpd_conn *c);
void hconn_step(struct httpd_conn *c);
void hconn_finish_request(struct httpd_conn *c);
void hconn_kick(struct httpd_conn *c);

/* httpd_send.c */
void hconn_flush(struct httpd_conn *c);
bool hconn_out_idle(const struct httpd_conn *c);
void hconn_send_error(struct httpd_conn *c, int status, const char *message);
void hconn_release_hold(struct httpd_conn *c);
void hconn_send_init(struct httpd_conn *c);

#endif
