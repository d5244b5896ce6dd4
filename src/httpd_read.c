/* httpd_read.c - the reading half of httpd: recv into the connection's
 * buffer, request heads and bodies (buffered, chunked in place, or streamed
 * to the policy), delivery to the handler, and the per-connection state
 * machine (hconn_step) that also drives output and closing. */
#include "httpd_int.h"
#include "jobring/util.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define IN_ROOM 4096		/* free input space wanted before a recv */
#define IN_BODY_STEP (256 * 1024) /* at most this much room ahead of a body */

static void recv_cb(struct loop_op *op, int res, unsigned flags);
static void watch_cb(struct loop_op *op, int res, unsigned flags);
static void unwatch_cb(struct loop_op *op, int res, unsigned flags);

void hconn_read_init(struct httpd_conn *c)
{
	c->recv_op.cb = recv_cb;
	c->watch_op.cb = watch_cb;
	c->unwatch_op.cb = unwatch_cb;
}

/* ---------------------------------------------------------------- reading */

/* Move the unconsumed input [in_start, in_len) to dst (the start of this
 * buffer or a new one), keeping the request's pointers valid. */
static void in_move(struct httpd_conn *c, char *dst)
{
	const char *src = c->in + c->in_start;
	size_t n = c->in_len - c->in_start;

#define REBASE(p) ((p) = (p) ? dst + ((p) - src) : NULL)
	if (c->req_valid) {
		REBASE(c->req.method);
		REBASE(c->req.path);
		REBASE(c->req.query);
		REBASE(c->req.body);
		for (size_t i = 0; i < c->req.num_headers; i++) {
			REBASE(c->hdrs[i].name);
			REBASE(c->hdrs[i].value);
		}
	}
#undef REBASE
	memmove(dst, src, n);
	c->in_len = n;
	c->in_start = 0;
}

static void in_room(struct httpd_conn *c, size_t want)
{
	size_t used = c->in_len - c->in_start, ncap;
	char *nb;

	if (c->in_cap - c->in_len >= want)
		return;
	if (c->in_start && c->in_cap - used >= want) {
		in_move(c, c->in);
		return;
	}
	ncap = MAX(c->in_cap * 2, used + want);
	nb = xmalloc(ncap);
	in_move(c, nb);
	free(c->in);
	c->in = nb;
	c->in_cap = ncap;
}

static void recv_post(struct httpd_conn *c)
{
	struct io_uring_sqe *sqe;
	size_t want = IN_ROOM, room;

	if (c->recv_busy || c->dead)
		return;
	if (c->state == ST_READ_BODY && !c->stream && c->body_kind == HTTP_BODY_LENGTH) {
		size_t have = c->in_len - c->in_start - c->head_len;
		/* grow with the bytes that arrive, not with what the client claims */
		if (c->body_left > have)
			want = MAX(want, (size_t)MIN(c->body_left - have, (uint64_t)IN_BODY_STEP));
	}
	in_room(c, want);
	room = MIN(c->in_cap - c->in_len, (size_t)1 << 30);
	sqe = loop_sqe(c->h->loop, &c->recv_op);
	io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, room, 0);
	c->recv_busy = true;
	c->refs++;
}

static void recv_cb(struct loop_op *op, int res, unsigned flags)
{
	struct httpd_conn *c = container_of(op, struct httpd_conn, recv_op);

	(void)flags;
	c->recv_busy = false;
	if (c->dead) {
		/* nothing */
	} else if (c->state == ST_CLOSING || c->state == ST_LINGER) {
		/* input after our final answer is discarded */
		if (res <= 0) {
			c->peer_eof = true;
			if (c->state == ST_LINGER || res < 0)
				hconn_close(c);
		}
		hconn_step(c);
	} else if (res <= 0) {
		hconn_close(c);	/* the peer closed or reset: nothing to answer */
	} else {
		c->in_len += (size_t)res;
		if (c->state == ST_READ_BODY)
			htimer_set(c, &c->rt, T_BODY);	/* progress */
		hconn_step(c);
	}
	hconn_put(c);
}

/* POLLRDHUP watch armed while a handler holds a deferred request: the peer
 * going away marks the connection dead (the request stays valid). */
static void watch_post(struct httpd_conn *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->h->loop, &c->watch_op);

	io_uring_prep_poll_add(sqe, c->fd, POLLRDHUP);
	c->watching = true;
	c->refs++;
}

static void watch_cb(struct loop_op *op, int res, unsigned flags)
{
	struct httpd_conn *c = container_of(op, struct httpd_conn, watch_op);

	(void)flags;
	c->watching = false;
	if (!c->dead && res > 0 && c->state == ST_HANDLING)
		hconn_close(c);
	hconn_put(c);
}

static void unwatch_cb(struct loop_op *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	hconn_put(container_of(op, struct httpd_conn, unwatch_op));
}

/* Answer bytes not yet handed to the kernel: above HTTPD_OUT_HIGH we stop
 * parsing pipelined requests until the client reads. */
static size_t backlog(const struct httpd_conn *c)
{
	return c->out.len + c->wout.len - c->wsent;
}

static int fail(struct httpd_conn *c, int err)
{
	hconn_send_error(c, http_error_status(err), http_error_reason(err));
	return -1;
}

static int refuse(struct httpd_conn *c, int64_t status)
{
	if (status < 400 || status > 599)
		status = 500;
	hconn_send_error(c, (int)status, http_reason((int)status));
	return -1;
}

/* Parse the next request head: 1 if done (state changed), 0 if more bytes
 * are needed, -1 if the connection is answering an error or closed. */
static int read_head(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	const char *p = c->in + c->in_start;
	size_t n = c->in_len - c->in_start;
	struct httpd_req *q = &c->req;
	struct http_request hr;
	struct http_framing fr;
	int r;

	if (n == 0 && h->stopping) {
		hconn_close(c);
		return -1;
	}
	if (n == 0 || n == c->last_len || backlog(c) > HTTPD_OUT_HIGH)
		return 0;
	if (!http_head_ready(p, n, c->last_len, &h->lim)) {
		c->last_len = n;
		return 0;
	}
	r = http_parse_request(p, n, &hr, c->hdrs, HTTPD_MAX_HEADERS, &h->lim);
	if (r == HTTP_INCOMPLETE) {
		c->last_len = n;
		return 0;
	}
	if (r < 0)
		return fail(c, r);
	c->head_len = (size_t)r;
	c->last_len = 0;
	if ((r = http_request_framing(&hr, &fr)) < 0)
		return fail(c, r);

	memset(q, 0, sizeof(*q));
	q->conn = c;
	q->method = hr.method;
	q->method_len = hr.method_len;
	if (http_split_target(hr.target, hr.target_len, &q->path, &q->path_len, &q->query,
			      &q->query_len) < 0) {
		q->path = hr.target;	/* "*" */
		q->path_len = hr.target_len;
	}
	q->headers = c->hdrs;
	q->num_headers = hr.num_headers;
	q->head = hr.method_len == 4 && memcmp(hr.method, "HEAD", 4) == 0;
	q->keep_alive = fr.keep_alive;
	q->upgrade_websocket = fr.upgrade_websocket;
	q->peer_ip = c->ip;
	q->started_ns = mono_ns();
	c->req_valid = true;
	c->body_kind = fr.body;
	c->body_len = 0;
	c->streamed = 0;
	c->stream = false;
	if (fr.body == HTTP_BODY_NONE || (fr.body == HTTP_BODY_LENGTH && !fr.content_length)) {
		c->req_end = c->head_len;
		c->state = ST_DELIVER;
		return 1;
	}

	c->body_limit = h->cfg.max_body;
	if (h->cfg.policy.decide) {
		int64_t d = h->cfg.policy.decide(h, q, h->cfg.arg);
		if (d < 0)
			return refuse(c, -d);
		if (d == HTTPD_STREAM && h->cfg.policy.on_chunk)
			c->stream = true;
		else if (d > 0 && d != HTTPD_STREAM)
			c->body_limit = (uint64_t)d;
	}
	if (c->stream)
		c->body_limit = INT64_MAX;
	if (fr.body == HTTP_BODY_LENGTH && fr.content_length > c->body_limit)
		return fail(c, HTTP_E_BODY_TOO_LARGE);
	c->body_left = fr.content_length;
	memset(&c->ch, 0, sizeof(c->ch));
	/* RFC 9110 §10.1.1: no 100 if some of the body is already here */
	if (fr.expect_continue && n == c->head_len)
		buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
	c->state = ST_READ_BODY;
	return 1;
}

/* Take what the buffer holds of the body: 1 when the body is complete,
 * 0 if more is needed, -1 on an error (being answered). Decoded chunked data
 * is compacted in place right after the head; streamed data is handed to
 * on_chunk and dropped from the buffer. */
static int read_body(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	char *base = c->in + c->in_start + c->head_len;
	char *raw = base + c->body_len;
	size_t rawn = c->in_len - (size_t)(raw - c->in), out, used;
	int r;

	if (c->body_kind == HTTP_BODY_LENGTH && !c->stream) {
		if (rawn < c->body_left)
			return 0;
		c->body_len = (size_t)c->body_left;
		goto done;
	}
	if (c->body_kind == HTTP_BODY_LENGTH) {
		out = used = (size_t)MIN((uint64_t)rawn, c->body_left);
		c->body_left -= out;
		r = c->body_left ? HTTP_INCOMPLETE : 0;
	} else {
		if (rawn == 0)
			return 0;
		r = http_chunked_decode(&c->ch, raw, rawn, raw, &out, &used, c->body_limit);
		if (r < 0 && r != HTTP_INCOMPLETE)
			return fail(c, r);
	}
	if (c->stream) {
		if (out || r == 0) {
			int s = h->cfg.policy.on_chunk(h, &c->req, raw, out, r == 0, h->cfg.arg);
			c->streamed += out;
			if (s < 0)
				return refuse(c, -(int64_t)s);
		}
		memmove(raw, raw + used, rawn - used);
		c->in_len -= used;
	} else {
		memmove(raw + out, raw + used, rawn - used);
		c->in_len -= used - out;
		c->body_len += out;
	}
	if (r == HTTP_INCOMPLETE)
		return 0;
done:
	c->req_end = c->head_len + (c->stream ? 0 : c->body_len);
	c->req.body = c->stream ? NULL : base;
	c->req.body_len = c->stream ? (size_t)c->streamed : c->body_len;
	c->state = ST_DELIVER;
	return 1;
}

static void deliver(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	/* an upgrade hands the socket over: earlier answers must be out first */
	if (c->req.upgrade_websocket && !hconn_out_idle(c)) {
		c->state = ST_WAIT_OUT;
		return;
	}
	c->state = ST_HANDLING;
	c->hold = true;
	c->refs++;
	h->npending++;
	c->in_handler = true;
	h->cfg.handler(h, &c->req, h->cfg.arg);
	c->in_handler = false;
	if (!c->dead && c->state == ST_HANDLING && !c->watching)
		watch_post(c);
}

void hconn_finish_request(struct httpd_conn *c)
{
	c->req_valid = false;
	if (!c->keep) {
		c->state = ST_CLOSING;
		return;
	}
	c->in_start += c->req_end;
	if (c->in_start >= c->in_len && !c->recv_busy)
		c->in_start = c->in_len = 0;
	c->req_end = c->head_len = c->last_len = 0;
	c->state = ST_READ_HEAD;
}

/* After an answer given outside the handler: never call the handler from
 * here (the caller may be iterating its own batch), so a buffered next
 * request waits for httpd_tick. */
void hconn_kick(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	if (c->state == ST_READ_HEAD && c->in_len > c->in_start) {
		if (!c->on_ready) {
			c->on_ready = true;
			c->refs++;
			c->ready_next = h->ready;
			h->ready = c;
		}
		hconn_flush(c);
		return;
	}
	hconn_step(c);
}

static void linger_start(struct httpd_conn *c)
{
	if (c->peer_eof) {
		hconn_close(c);
		return;
	}
	/* our FIN goes after the answer; reading on until the peer's FIN keeps
	 * unread input from turning the close into a RST that eats the answer */
	shutdown(c->fd, SHUT_WR);
	c->state = ST_LINGER;
}

/* Post the recv and set the read timer the state needs. */
static void conn_arm(struct httpd_conn *c)
{
	switch (c->state) {
	case ST_READ_HEAD:
		if (backlog(c) > HTTPD_OUT_HIGH) {
			htimer_clear(&c->rt);	/* the send timer watches */
			return;
		}
		if (c->in_len == c->in_start) {
			if (c->in_cap > HTTPD_IN_KEEP && !c->recv_busy) {
				free(c->in);
				c->in = xmalloc(HTTPD_IN_INIT);
				c->in_cap = HTTPD_IN_INIT;
				c->in_start = c->in_len = 0;
			}
			if (c->rt.kind != T_IDLE)
				htimer_set(c, &c->rt, T_IDLE);
		} else if (c->rt.kind != T_HEAD) {
			htimer_set(c, &c->rt, T_HEAD);
		}
		recv_post(c);
		break;
	case ST_READ_BODY:
		if (c->rt.kind != T_BODY)
			htimer_set(c, &c->rt, T_BODY);
		recv_post(c);
		break;
	case ST_LINGER:
		if (c->rt.kind != T_LINGER)
			htimer_set(c, &c->rt, T_LINGER);
		recv_post(c);
		break;
	default:
		htimer_clear(&c->rt);
		break;
	}
}

void hconn_step(struct httpd_conn *c)
{
	int r;

	for (;;) {
		if (c->dead)
			return;
		switch (c->state) {
		case ST_READ_HEAD:
			r = read_head(c);
			break;
		case ST_READ_BODY:
			r = read_body(c);
			break;
		case ST_DELIVER:
			deliver(c);
			r = 1;
			break;
		default:
			r = 0;
			break;
		}
		if (r > 0)
			continue;
		if (c->dead)
			return;
		hconn_flush(c);
		if (hconn_out_idle(c)) {
			if (c->state == ST_WAIT_OUT) {
				c->state = ST_DELIVER;
				continue;
			}
			if (c->state == ST_FILE) {
				hconn_finish_request(c);
				continue;
			}
			if (c->state == ST_CLOSING)
				linger_start(c);
		}
		if (!c->dead)
			conn_arm(c);
		return;
	}
}
