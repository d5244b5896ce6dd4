/* httpd.c - the HTTP/1.1 server on io_uring: accepting, connection lifetime,
 * timers, per-IP counts and the public entry points. Reading, parsing and
 * delivering requests is in httpd_read.c, answers and output in
 * httpd_send.c.
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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SPARE 64		/* freed connections kept for reuse */
#define MAX_REJECTING 256	/* 503s in flight at once; beyond: plain close */
#define LINGER_MS 2000
#define ACCEPT_RETRY_MS 100
#define MS 1000000LL

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
		in = xmalloc(HTTPD_IN_INIT);
		cap = HTTPD_IN_INIT;
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
	hconn_read_init(c);
	hconn_send_init(c);
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
		if (c->in_cap > HTTPD_IN_KEEP) {
			free(c->in);
			c->in = xmalloc(HTTPD_IN_INIT);
			c->in_cap = HTTPD_IN_INIT;
		}
		if (c->out.cap > HTTPD_IN_KEEP)
			buf_free(&c->out);
		if (c->wout.cap > HTTPD_IN_KEEP)
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
