/* httpd.c - the HTTP/1.1 server on io_uring: accepting, connection lifetime,
 * timers, reading and parsing requests, delivering them to the handler.
 * Answers and output are in httpd_send.c.
 *
 * I/O: one multishot accept for the listener; per connection a single-shot
 * recv straight into the connection's input buffer (no provided buffers:
 * the bytes of a request must stay contiguous until it is answered anyway),
 * and one send (or file read) at a time from its output buffer. A request is
 * parsed only after the previous one was answered, and nothing is read
 * while a handler holds a request: pipelined bytes wait in the buffer. */
#include "httpd_int.h"
#include "jobring/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IN_INIT 8192		/* input buffer of a fresh connection */
#define IN_KEEP (64 * 1024)	/* idle connections shrink back above this */
#define IN_ROOM 4096		/* free input space wanted before a recv */
#define MAX_SPARE 64		/* freed connections kept for reuse */
#define MAX_REJECTING 256	/* 503s in flight at once; beyond: plain close */
#define LINGER_MS 2000
#define ACCEPT_RETRY_MS 100
#define MS 1000000LL

static void recv_cb(struct loop_op *op, int res, unsigned flags);
static void watch_cb(struct loop_op *op, int res, unsigned flags);
static void unwatch_cb(struct loop_op *op, int res, unsigned flags);

/* ------------------------------------------------------------------ timers */

void htimer_clear(struct tnode *t)
{
	if (t->kind == T_NONE)
		return;
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->kind = T_NONE;
}

void htimer_set(struct httpd_conn *c, struct tnode *t, int kind)
{
	struct tnode *head = &c->h->timers[kind];

	htimer_clear(t);
	t->kind = kind;
	t->at = mono_ns() + c->h->tmo_ns[kind];
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

/* ------------------------------------------------------- per-IP counting */

static size_t ipt_slot(const struct httpd *h, uint64_t key)
{
	size_t mask = h->ipt_cap - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;

	while (h->ipt[i].n && h->ipt[i].key != key)
		i = (i + 1) & mask;
	return i;
}

static uint32_t ipt_count(const struct httpd *h, uint64_t key)
{
	return h->ipt_cap ? h->ipt[ipt_slot(h, key)].n : 0;
}

static void ipt_inc(struct httpd *h, uint64_t key)
{
	size_t i;

	if ((h->ipt_used + 1) * 2 > h->ipt_cap) {
		struct iptab_ent *old = h->ipt;
		size_t ocap = h->ipt_cap;

		h->ipt_cap = ocap ? ocap * 2 : 64;
		h->ipt = xcalloc(h->ipt_cap, sizeof(*h->ipt));
		for (size_t j = 0; j < ocap; j++)
			if (old[j].n)
				h->ipt[ipt_slot(h, old[j].key)] = old[j];
		free(old);
	}
	i = ipt_slot(h, key);
	if (!h->ipt[i].n) {
		h->ipt[i].key = key;
		h->ipt_used++;
	}
	h->ipt[i].n++;
}

/* Linear probing with backward-shift deletion (no tombstones). */
static void ipt_dec(struct httpd *h, uint64_t key)
{
	size_t mask = h->ipt_cap - 1, i, j, k;

	if (!h->ipt_cap || !h->ipt[i = ipt_slot(h, key)].n || --h->ipt[i].n)
		return;
	h->ipt_used--;
	for (j = i;;) {
		j = (j + 1) & mask;
		if (!h->ipt[j].n)
			break;
		k = (size_t)((h->ipt[j].key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
		/* move j into the hole at i unless its home lies in (i, j] */
		if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
			h->ipt[i] = h->ipt[j];
			h->ipt[j].n = 0;
			i = j;
		}
	}
}

static uint64_t peer_ip(int fd)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} a;
	socklen_t len = sizeof(a);
	uint64_t v = 0;

	if (getpeername(fd, &a.sa, &len) < 0)
		return 0;
	if (a.sa.sa_family == AF_INET)
		return ntohl(a.in4.sin_addr.s_addr);
	if (a.sa.sa_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&a.in6.sin6_addr)) {
		uint32_t v4;
		memcpy(&v4, a.in6.sin6_addr.s6_addr + 12, 4);
		return ntohl(v4);
	}
	for (int i = 0; i < 8; i++)	/* the /64 prefix */
		v = v << 8 | a.in6.sin6_addr.s6_addr[i];
	return v;
}

/* ------------------------------------------------------ connection lifetime */

static struct httpd_conn *conn_alloc(struct httpd *h, int fd)
{
	struct httpd_conn *c = h->freelist;
	struct buf out, wout;
	char *in;
	size_t cap;

	if (c) {
		h->freelist = c->next;
		h->nfree--;
		in = c->in;
		cap = c->in_cap;
		out = c->out;
		wout = c->wout;
		buf_reset(&out);
		buf_reset(&wout);
	} else {
		c = xmalloc(sizeof(*c));
		in = xmalloc(IN_INIT);
		cap = IN_INIT;
		buf_init(&out);
		buf_init(&wout);
	}
	memset(c, 0, sizeof(*c));
	c->h = h;
	c->fd = fd;
	c->in = in;
	c->in_cap = cap;
	c->out = out;
	c->wout = wout;
	c->file_fd = -1;
	c->rt.kind = c->wt.kind = T_NONE;
	c->recv_op.cb = recv_cb;
	c->watch_op.cb = watch_cb;
	c->unwatch_op.cb = unwatch_cb;
	hconn_op_init(c);
	c->next = &h->all;
	c->prev = h->all.prev;
	h->all.prev->next = c;
	h->all.prev = c;
	return c;
}

static void conn_free(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	c->prev->next = c->next;
	c->next->prev = c->prev;
	if (c->fd >= 0)
		close(c->fd);
	if (c->file_fd >= 0)
		close(c->file_fd);
	if (c->reject)
		h->nreject--;
	if (h->nfree < MAX_SPARE && !h->freeing) {
		if (c->in_cap > IN_KEEP) {
			free(c->in);
			c->in = xmalloc(IN_INIT);
			c->in_cap = IN_INIT;
		}
		if (c->out.cap > IN_KEEP)
			buf_free(&c->out);
		if (c->wout.cap > IN_KEEP)
			buf_free(&c->wout);
		c->next = h->freelist;
		h->freelist = c;
		h->nfree++;
		return;
	}
	free(c->in);
	buf_free(&c->out);
	buf_free(&c->wout);
	free(c);
}

void hconn_put(struct httpd_conn *c)
{
	if (--c->refs == 0 && c->dead)
		conn_free(c);
}

void hconn_unlink(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	if (c->dead)
		return;
	c->dead = true;
	htimer_clear(&c->rt);
	htimer_clear(&c->wt);
	if (c->counted) {
		c->counted = false;
		h->nconns--;
		if (h->cfg.max_conns_per_ip)
			ipt_dec(h, c->ip);
	}
}

void hconn_close(struct httpd_conn *c)
{
	if (c->dead)
		return;
	hconn_unlink(c);
	/* wakes a pending recv, send or poll: their CQEs drop the last refs */
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
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
		if (c->body_left > have)
			want = MAX(want, (size_t)c->body_left - have);
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
	if (n == 0 || n == c->last_len || c->out.len + c->wout.len > HTTPD_OUT_HIGH)
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
		if (c->out.len + c->wout.len > HTTPD_OUT_HIGH) {
			htimer_clear(&c->rt);	/* the send timer watches */
			return;
		}
		if (c->in_len == c->in_start) {
			if (c->in_cap > IN_KEEP && !c->recv_busy) {
				free(c->in);
				c->in = xmalloc(IN_INIT);
				c->in_cap = IN_INIT;
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

/* ----------------------------------------------------------------- accept */

static void accept_cb(struct loop_op *op, int res, unsigned flags);

static void accept_arm(struct httpd *h)
{
	struct io_uring_sqe *sqe = loop_sqe(h->loop, &h->accept_op);

	io_uring_prep_multishot_accept(sqe, h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	h->accept_armed = true;
}

static void conn_new(struct httpd *h, int fd)
{
	const struct httpd_config *cfg = &h->cfg;
	struct httpd_conn *c;
	uint64_t ip = peer_ip(fd);
	int one = 1;
	bool over = (cfg->max_conns && h->nconns >= cfg->max_conns) ||
		    (cfg->max_conns_per_ip && ipt_count(h, ip) >= cfg->max_conns_per_ip);

	if (over && h->nreject >= MAX_REJECTING) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_alloc(h, fd);
	c->ip = ip;
	c->refs = 1;
	if (over) {
		c->reject = true;
		h->nreject++;
		hconn_send_error(c, 503, "too many connections");
	} else {
		c->counted = true;
		h->nconns++;
		if (cfg->max_conns_per_ip)
			ipt_inc(h, ip);
	}
	hconn_step(c);
	hconn_put(c);
}

static void accept_cb(struct loop_op *op, int res, unsigned flags)
{
	struct httpd *h = container_of(op, struct httpd, accept_op);

	if (!(flags & IORING_CQE_F_MORE))
		h->accept_armed = false;
	if (res >= 0) {
		if (h->stopping)
			close(res);
		else
			conn_new(h, res);
	} else if (!h->accept_armed && !h->stopping &&
		   (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM ||
		    res == -EINVAL)) {
		/* out of descriptors or memory: back off instead of spinning */
		h->accept_retry_ns = mono_ns() + ACCEPT_RETRY_MS * MS;
		return;
	}
	if (!h->accept_armed && !h->stopping && !h->accept_retry_ns)
		accept_arm(h);
}

static void cancel_cb(struct loop_op *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	container_of(op, struct httpd, cancel_op)->cancel_busy = false;
}

/* ------------------------------------------------------------- public API */

int httpd_init(struct httpd **ret, struct loop *loop, const struct httpd_config *cfg)
{
	struct httpd *h;

	if (!cfg->handler || cfg->listen_fd < 0)
		return -EINVAL;
	h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->cfg = *cfg;
	h->listen_fd = cfg->listen_fd;
	if (h->cfg.header_timeout_ms <= 0)
		h->cfg.header_timeout_ms = 10000;
	if (h->cfg.idle_timeout_ms <= 0)
		h->cfg.idle_timeout_ms = 60000;
	if (h->cfg.body_timeout_ms <= 0)
		h->cfg.body_timeout_ms = h->cfg.header_timeout_ms;
	if (!h->cfg.max_request_line)
		h->cfg.max_request_line = 8192;
	if (!h->cfg.max_header_bytes)
		h->cfg.max_header_bytes = 16384;
	if (!h->cfg.max_body)
		h->cfg.max_body = 1 << 20;
	if (!h->cfg.server_name)
		h->cfg.server_name = "jobring";
	h->lim.max_request_line = h->cfg.max_request_line;
	h->lim.max_header_bytes = h->cfg.max_header_bytes;
	h->tmo_ns[T_IDLE] = h->cfg.idle_timeout_ms * MS;
	h->tmo_ns[T_HEAD] = h->cfg.header_timeout_ms * MS;
	h->tmo_ns[T_BODY] = h->cfg.body_timeout_ms * MS;
	h->tmo_ns[T_LINGER] = LINGER_MS * MS;
	h->tmo_ns[T_SEND] = h->cfg.idle_timeout_ms * MS;
	for (int k = 0; k < T_COUNT; k++)
		h->timers[k].next = h->timers[k].prev = &h->timers[k];
	h->all.next = h->all.prev = &h->all;
	h->accept_op.cb = accept_cb;
	h->cancel_op.cb = cancel_cb;
	accept_arm(h);
	*ret = h;
	return 0;
}

void httpd_stop_accepting(struct httpd *h)
{
	struct httpd_conn *c, *n;

	if (h->stopping)
		return;
	h->stopping = true;
	h->accept_retry_ns = 0;
	if (h->accept_armed) {
		struct io_uring_sqe *sqe = loop_sqe(h->loop, &h->cancel_op);
		io_uring_prep_cancel(sqe, &h->accept_op, 0);
		h->cancel_busy = true;
	}
	/* the pending accept holds its own reference to the socket */
	close(h->listen_fd);
	h->listen_fd = -1;
	for (c = h->all.next; c != &h->all; c = n) {
		n = c->next;
		if (!c->dead && c->state == ST_READ_HEAD && c->in_len == c->in_start) {
			c->refs++;
			hconn_close(c);
			hconn_put(c);
		}
	}
}

void httpd_free(struct httpd *h)
{
	struct httpd_conn *c, *n;

	if (!h)
		return;
	httpd_stop_accepting(h);
	h->freeing = true;
	for (c = h->all.next; c != &h->all; c = n) {
		n = c->next;
		c->refs++;
		hconn_close(c);
		hconn_release_hold(c);
		hconn_put(c);
	}
	while ((c = h->ready)) {
		h->ready = c->ready_next;
		hconn_put(c);
	}
	/* ops in flight name our memory: wait for their completions (the
	 * shutdowns above end them), running the loop's other callbacks too */
	for (int i = 0; i < 500 && (h->all.next != &h->all || h->accept_armed || h->cancel_busy);
	     i++)
		loop_wait(h->loop, 10);
	if (h->all.next != &h->all || h->accept_armed || h->cancel_busy)
		return;	/* the kernel still owns some of it: leak rather than corrupt */
	while ((c = h->freelist)) {
		h->freelist = c->next;
		free(c->in);
		buf_free(&c->out);
		buf_free(&c->wout);
		free(c);
	}
	free(h->ipt);
	free(h);
}

void httpd_tick(struct httpd *h, int64_t now_ns)
{
	struct httpd_conn *c;

	while ((c = h->ready)) {
		h->ready = c->ready_next;
		c->on_ready = false;
		if (!c->dead && c->state == ST_READ_HEAD)
			hconn_step(c);
		hconn_put(c);
	}
	if (h->accept_retry_ns && now_ns >= h->accept_retry_ns) {
		h->accept_retry_ns = 0;
		if (!h->stopping && !h->accept_armed)
			accept_arm(h);
	}
	for (int k = 0; k < T_COUNT; k++) {
		struct tnode *head = &h->timers[k], *t;

		while ((t = head->next) != head && t->at <= now_ns) {
			c = k == T_SEND ? container_of(t, struct httpd_conn, wt)
					: container_of(t, struct httpd_conn, rt);
			htimer_clear(t);
			c->refs++;
			if (k == T_HEAD || k == T_BODY) {
				hconn_send_error(c, 408, k == T_HEAD ? "the request head took too long"
								     : "the request body took too long");
				hconn_step(c);
			} else {
				hconn_close(c);	/* idle, linger over, or output stuck */
			}
			hconn_put(c);
		}
	}
}

int64_t httpd_next_deadline(struct httpd *h)
{
	int64_t t = INT64_MAX;

	if (h->ready)
		return 0;
	for (int k = 0; k < T_COUNT; k++)
		if (h->timers[k].next != &h->timers[k])
			t = MIN(t, h->timers[k].next->at);
	if (h->accept_retry_ns)
		t = MIN(t, h->accept_retry_ns);
	return t;
}

unsigned httpd_conns(const struct httpd *h)
{
	return h->nconns;
}

unsigned httpd_pending(const struct httpd *h)
{
	return h->npending;
}
