/* ws.c - realtime connections: wslay's event layer for what WebSocket
 * clients send, a queue of shared frames for what we send, io_uring poll
 * readiness for both, ping rounds and a lingering close.
 *
 * Life of a connection: OPEN → CLOSING (no more sends; the queue, ending
 * with the close frame, drains) → LINGER (write side shut; input read and
 * dropped until the peer closes or the timeout) → DEAD (socket shut down,
 * queue dropped). A DEAD connection sits on the dirty list until
 * ws_server_tick() reports it (on_closed) and drops the owner reference; its
 * memory goes when the last poll op in flight completes (refs). The fd is
 * closed only then, so a queued poll SQE can never name a reused fd. */
#include "jobring/ws.h"
#include "jobring/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

#define FRAME_MAX (1u << 30)
#define READ_BUDGET 65536	/* bytes read per readiness (fairness across clients) */
#define STREAM_INPUT_MAX 16384	/* bytes a stream client may send before it is closed */
#define IOV_BATCH 64
#define QUEUE_KEEP 64		/* queue slots kept when the queue empties */

struct ws_frame {
	unsigned refs;
	uint32_t len;
	unsigned char data[];
};

enum { ST_OPEN, ST_CLOSING, ST_LINGER, ST_DEAD };

struct ws_conn {
	struct ws_server *s;
	int fd;
	uint8_t kind, state;
	bool rd_armed, wr_armed, dirty, need_read, notified, ping_out, in_recv, io_err;
	unsigned refs;			/* owner (until on_closed) + polls in flight */
	wslay_event_context_ptr wsl;	/* WebSocket only */
	void *user;
	unsigned char *left;		/* bytes the HTTP server read ahead */
	size_t left_len, left_off;
	size_t budget;			/* bytes left to read this readiness */
	size_t discarded;		/* stream input seen */
	struct ws_frame **q;		/* ring of frames, power-of-two capacity */
	unsigned qhead, qn, qcap, qmax;
	uint32_t qoff;			/* bytes of the head frame already written */
	size_t qbytes;			/* bytes queued and not yet written */
	int64_t deadline;		/* CLOSING/LINGER: abort at this time */
	int64_t progress_ns;		/* queue last moved (or became non-empty) */
	struct loop_op rd_op, wr_op;
	struct ws_conn *prev, *next;	/* s->all (until reported) */
	struct ws_conn *cprev, *cnext;	/* s->closing */
	struct ws_conn *dnext;		/* s->dirty */
};

struct ws_server {
	struct loop *loop;
	struct ws_config cfg;
	struct ws_handlers hd;
	struct ws_conn *all, *closing, *dirty;
	struct ws_frame *ping;		/* stream keep-alive */
	unsigned nconns, nobjs;
	size_t queued;
	int64_t next_round;
	uint64_t closed_slow, closed_ping, frames_sent;
};

/* ---- frames ------------------------------------------------------------ */

static struct ws_frame *frame_new(size_t hdr, size_t n)
{
	struct ws_frame *f;

	if (n > FRAME_MAX)
		return NULL;
	f = xmalloc(sizeof(*f) + hdr + n);
	f->refs = 1;
	f->len = (uint32_t)(hdr + n);
	return f;
}

struct ws_frame *ws_frame_text(const void *p, size_t n)
{
	size_t hdr = n < 126 ? 2 : n < 65536 ? 4 : 10;
	struct ws_frame *f = frame_new(hdr, n);

	if (!f)
		return NULL;
	f->data[0] = 0x80 | WSLAY_TEXT_FRAME;	/* FIN, no mask: server to client */
	if (n < 126) {
		f->data[1] = (unsigned char)n;
	} else if (n < 65536) {
		f->data[1] = 126;
		f->data[2] = (unsigned char)(n >> 8);
		f->data[3] = (unsigned char)n;
	} else {
		f->data[1] = 127;
		for (int i = 0; i < 8; i++)
			f->data[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
	}
	if (n)
		memcpy(f->data + hdr, p, n);
	return f;
}

struct ws_frame *ws_frame_raw(const void *p, size_t n)
{
	struct ws_frame *f = frame_new(0, n);

	if (f && n)
		memcpy(f->data, p, n);
	return f;
}

void ws_frame_unref(struct ws_frame *f)
{
	if (f && --f->refs == 0)
		free(f);
}

size_t ws_frame_len(const struct ws_frame *f)
{
	return f->len;
}

/* ---- bookkeeping ----------------------------------------------------------- */

static void mark_dirty(struct ws_conn *c)
{
	if (c->dirty || c->notified)
		return;
	c->dirty = true;
	c->dnext = c->s->dirty;
	c->s->dirty = c;
}

static void queue_clear(struct ws_conn *c)
{
	while (c->qn) {
		ws_frame_unref(c->q[c->qhead]);
		c->qhead = (c->qhead + 1) & (c->qcap - 1);
		c->qn--;
	}
	c->s->queued -= c->qbytes;
	c->qbytes = 0;
	c->qoff = 0;
	c->qhead = 0;
}

static void conn_unref(struct ws_conn *c)
{
	if (--c->refs)
		return;
	queue_clear(c);
	free(c->q);
	if (c->wsl)
		wslay_event_context_free(c->wsl);
	close(c->fd);
	free(c->left);
	c->s->nobjs--;
	free(c);
}

static void closing_unlink(struct ws_conn *c)
{
	struct ws_server *s = c->s;

	if (c->state != ST_CLOSING && c->state != ST_LINGER)
		return;
	if (c->cprev)
		c->cprev->cnext = c->cnext;
	else
		s->closing = c->cnext;
	if (c->cnext)
		c->cnext->cprev = c->cprev;
	c->cprev = c->cnext = NULL;
}

static void poll_cancel(struct ws_conn *c, struct loop_op *op)
{
	/* the remove's own completion needs no callback: NULL user_data */
	struct io_uring_sqe *sqe = loop_sqe(c->s->loop, NULL);
	io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)op);
}

/* Close at once; the report (on_closed) follows from the dirty list. */
static void conn_abort(struct ws_conn *c)
{
	if (c->state == ST_DEAD)
		return;
	closing_unlink(c);
	c->state = ST_DEAD;
	shutdown(c->fd, SHUT_RDWR);	/* also wakes the polls */
	if (c->rd_armed)
		poll_cancel(c, &c->rd_op);
	if (c->wr_armed)
		poll_cancel(c, &c->wr_op);
	queue_clear(c);
	mark_dirty(c);
}

static void arm(struct ws_conn *c, struct loop_op *op, bool *armed, unsigned mask)
{
	struct io_uring_sqe *sqe;

	if (*armed || c->state == ST_DEAD)
		return;
	sqe = loop_sqe(c->s->loop, op);
	io_uring_prep_poll_add(sqe, c->fd, mask);
	*armed = true;
	c->refs++;
}

static void enter_closing(struct ws_conn *c)
{
	struct ws_server *s = c->s;

	if (c->state != ST_OPEN)
		return;
	c->state = ST_CLOSING;
	c->deadline = mono_ns() + (int64_t)s->cfg.close_timeout_ms * 1000000;
	c->cnext = s->closing;
	c->cprev = NULL;
	if (s->closing)
		s->closing->cprev = c;
	s->closing = c;
	mark_dirty(c);
}

static void enter_linger(struct ws_conn *c)
{
	c->state = ST_LINGER;
	c->deadline = mono_ns() + (int64_t)c->s->cfg.close_timeout_ms * 1000000;
	shutdown(c->fd, SHUT_WR);
	arm(c, &c->rd_op, &c->rd_armed, POLLIN | POLLRDHUP);
}

/* ---- the outbound queue ------------------------------------------------------ */

/* Append f (taking over one reference). -ENOBUFS over the bounds. */
static int q_push(struct ws_conn *c, struct ws_frame *f)
{
	struct ws_server *s = c->s;

	if (c->qbytes + f->len > s->cfg.max_queue || c->qn == c->qmax)
		return -ENOBUFS;
	if (c->qn == c->qcap) {
		unsigned ncap = c->qcap ? c->qcap * 2 : 8;
		struct ws_frame **nq = xmalloc(ncap * sizeof(*nq));
		for (unsigned i = 0; i < c->qn; i++)
			nq[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
		free(c->q);
		c->q = nq;
		c->qcap = ncap;
		c->qhead = 0;
	}
	if (!c->qn)
		c->progress_ns = mono_ns();
	c->q[(c->qhead + c->qn) & (c->qcap - 1)] = f;
	c->qn++;
	c->qbytes += f->len;
	s->queued += f->len;
	mark_dirty(c);
	return 0;
}

static void q_consume(struct ws_conn *c, size_t n)
{
	struct ws_server *s = c->s;

	c->progress_ns = mono_ns();
	c->qbytes -= n;
	s->queued -= n;
	while (n) {
		struct ws_frame *f = c->q[c->qhead];
		size_t rest = f->len - c->qoff;
		if (n < rest) {
			c->qoff += (uint32_t)n;
			break;
		}
		n -= rest;
		c->qoff = 0;
		c->qhead = (c->qhead + 1) & (c->qcap - 1);
		c->qn--;
		s->frames_sent++;
		ws_frame_unref(f);
	}
	if (!c->qn) {
		c->qhead = 0;
		if (c->qcap > QUEUE_KEEP) {
			free(c->q);
			c->q = NULL;
			c->qcap = 0;
		}
	}
}

static void conn_flush(struct ws_conn *c)
{
	struct iovec iov[IOV_BATCH];

	while (c->qn && c->state != ST_DEAD && c->state != ST_LINGER) {
		struct msghdr mh = { .msg_iov = iov };
		unsigned k = 0;
		ssize_t n;

		for (; k < c->qn && k < IOV_BATCH; k++) {
			struct ws_frame *f = c->q[(c->qhead + k) & (c->qcap - 1)];
			size_t off = k ? 0 : c->qoff;
			iov[k].iov_base = f->data + off;
			iov[k].iov_len = f->len - off;
		}
		mh.msg_iovlen = k;
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			arm(c, &c->wr_op, &c->wr_armed, POLLOUT);
			return;
		}
		if (n <= 0) {
			conn_abort(c);
			return;
		}
		q_consume(c, (size_t)n);
	}
	if (!c->qn && c->state == ST_CLOSING)
		enter_linger(c);
}

/* ---- wslay glue ---------------------------------------------------------------- */

static ssize_t wsl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
			void *ud)
{
	struct ws_conn *c = ud;
	(void)flags;

	if (c->left_off < c->left_len) {
		size_t n = MIN(len, c->left_len - c->left_off);
		memcpy(buf, c->left + c->left_off, n);
		c->left_off += n;
		return (ssize_t)n;
	}
	if (!c->budget) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, MIN(len, c->budget), MSG_DONTWAIT);
		if (n > 0) {
			c->budget -= (size_t)n;
			return n;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
			return -1;
		}
		c->io_err = true;	/* EOF or a reset: wslay fails the connection */
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
}

/* Frames wslay writes (pong, ping, close) go into our queue, behind the data
 * already queued, so frames never interleave. We take every byte. */
static ssize_t wsl_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
			int flags, void *ud)
{
	struct ws_conn *c = ud;
	struct ws_frame *f;
	(void)flags;

	if (c->state == ST_DEAD || !(f = ws_frame_raw(data, len))) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (q_push(c, f) < 0) {
		ws_frame_unref(f);
		c->s->closed_slow++;
		conn_abort(c);
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void wsl_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		    void *ud)
{
	struct ws_conn *c = ud;
	struct ws_server *s = c->s;
	(void)ctx;

	if (arg->opcode == WSLAY_PONG) {
		c->ping_out = false;
	} else if (arg->opcode == WSLAY_TEXT_FRAME && c->state == ST_OPEN) {
		if (s->hd.on_text)
			s->hd.on_text(c, c->user, (const char *)arg->msg, arg->msg_length, s->hd.arg);
	} else if (arg->opcode == WSLAY_BINARY_FRAME && c->state == ST_OPEN) {
		ws_close(c, WSLAY_CODE_UNSUPPORTED_DATA, "text messages only");
	}
}

/* Move what wslay wants to send into our queue. */
static void wsl_pump(struct ws_conn *c)
{
	if (c->state == ST_DEAD || !wslay_event_want_write(c->wsl))
		return;
	if (wslay_event_send(c->wsl) != 0)
		conn_abort(c);
}

/* ---- input -------------------------------------------------------------------- */

static void input_discard(struct ws_conn *c)
{
	char tmp[4096];

	c->left_off = c->left_len;	/* read-ahead bytes are dropped too */
	while (c->budget) {
		ssize_t n = recv(c->fd, tmp, MIN(sizeof(tmp), c->budget), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_abort(c);
			return;
		}
		c->budget -= (size_t)n;
		c->discarded += (size_t)n;
		if (c->state == ST_OPEN && c->discarded > STREAM_INPUT_MAX) {
			conn_abort(c);
			return;
		}
	}
}

static void input_ws(struct ws_conn *c)
{
	int r;

	c->in_recv = true;
	r = wslay_event_recv(c->wsl);
	c->in_recv = false;
	if (c->state == ST_DEAD)
		return;
	if (r != 0 && (c->io_err || r == WSLAY_ERR_NOMEM || c->state != ST_OPEN)) {
		conn_abort(c);	/* EOF, reset, or junk after our close frame */
		return;
	}
	if (r != 0) {
		/* The frame layer refused a frame (a control frame over 125 bytes
		 * or fragmented, a non-minimal or 2^63 length): wslay queued a
		 * close without a code; say 1002 instead. */
		static const unsigned char close1002[] = { 0x88, 0x02, 0x03, 0xea };
		struct ws_frame *f = ws_frame_raw(close1002, sizeof(close1002));
		wslay_event_shutdown_read(c->wsl);
		wslay_event_shutdown_write(c->wsl);
		if (q_push(c, f) < 0) {
			ws_frame_unref(f);
			conn_abort(c);
			return;
		}
		enter_closing(c);
		return;
	}
	wsl_pump(c);
	if (c->state == ST_OPEN &&
	    (!wslay_event_want_read(c->wsl) || !wslay_event_get_write_enabled(c->wsl)))
		enter_closing(c);	/* a close was received or a protocol error found */
}

static void conn_read(struct ws_conn *c)
{
	c->budget = READ_BUDGET;
	if (c->kind == WS_WEBSOCKET && c->state != ST_LINGER && wslay_event_want_read(c->wsl))
		input_ws(c);
	else
		input_discard(c);
	if (c->left && c->left_off == c->left_len) {
		free(c->left);
		c->left = NULL;
		c->left_len = c->left_off = 0;
	}
	if (c->state != ST_DEAD)
		arm(c, &c->rd_op, &c->rd_armed, POLLIN | POLLRDHUP);
}

static void rd_cb(struct loop_op *op, int res, unsigned flags)
{
	struct ws_conn *c = container_of(op, struct ws_conn, rd_op);
	(void)flags;

	c->rd_armed = false;
	if (c->state != ST_DEAD) {
		if (res < 0)
			conn_abort(c);
		else
			conn_read(c);
	}
	conn_unref(c);
}

static void wr_cb(struct loop_op *op, int res, unsigned flags)
{
	struct ws_conn *c = container_of(op, struct ws_conn, wr_op);
	(void)flags;

	c->wr_armed = false;
	if (c->state != ST_DEAD) {
		if (res < 0)
			conn_abort(c);
		else
			conn_flush(c);
	}
	conn_unref(c);
}

/* ---- public ------------------------------------------------------------------------ */

int ws_server_init(struct ws_server **ret, struct loop *loop, const struct ws_config *cfg,
		   const struct ws_handlers *hd)
{
	struct ws_server *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->cfg = *cfg;
	if (!s->cfg.max_message)
		s->cfg.max_message = 4096;
	if (!s->cfg.max_queue)
		s->cfg.max_queue = 1u << 20;
	if (s->cfg.ping_interval_ms <= 0)
		s->cfg.ping_interval_ms = 20000;
	if (s->cfg.close_timeout_ms <= 0)
		s->cfg.close_timeout_ms = 2000;
	if (!s->cfg.stream_ping)
		s->cfg.stream_ping = ": ping\n\n";
	s->hd = *hd;
	s->ping = ws_frame_raw(s->cfg.stream_ping, strlen(s->cfg.stream_ping));
	s->next_round = mono_ns() + (int64_t)s->cfg.ping_interval_ms * 1000000;
	*ret = s;
	return 0;
}

void ws_server_free(struct ws_server *s)
{
	struct ws_conn *c, *next;

	if (!s)
		return;
	/* Say goodbye where the socket takes it at once (1001: reconnect
	 * elsewhere or later), then close everything. */
	for (c = s->all; c; c = c->next) {
		if (c->state == ST_OPEN && c->kind == WS_WEBSOCKET)
			ws_close(c, WSLAY_CODE_GOING_AWAY, "server shutting down");
		if (!c->wr_armed && c->state == ST_CLOSING)
			conn_flush(c);
		conn_abort(c);
	}
	for (c = s->dirty; c; c = c->dnext)
		c->dirty = false;
	s->dirty = NULL;
	for (c = s->all; c; c = next) {
		next = c->next;
		c->notified = true;
		conn_unref(c);
	}
	s->all = NULL;
	s->nconns = 0;
	while (s->nobjs)
		if (loop_wait(s->loop, 100) < 0)
			break;
	ws_frame_unref(s->ping);
	free(s);
}

int ws_adopt(struct ws_server *s, int fd, enum ws_kind kind, const void *leftover, size_t n,
	     void *user, struct ws_conn **ret)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = wsl_recv,
		.send_callback = wsl_send,
		.on_msg_recv_callback = wsl_msg,
	};
	struct ws_conn *c;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->fd = fd;
	c->kind = (uint8_t)kind;
	c->user = user;
	c->refs = 1;
	c->rd_op.cb = rd_cb;
	c->wr_op.cb = wr_cb;
	/* every frame is at least 2 bytes; 1 in 32 of the bound is plenty */
	c->qmax = (unsigned)MIN(s->cfg.max_queue / 32 + 64, 1u << 20);
	c->progress_ns = mono_ns();
	if (kind == WS_WEBSOCKET) {
		if (wslay_event_context_server_init(&c->wsl, &cbs, c) != 0) {
			close(fd);
			free(c);
			return -ENOMEM;
		}
		wslay_event_config_set_max_recv_msg_length(c->wsl, s->cfg.max_message);
	}
	s->nobjs++;
	s->nconns++;
	c->next = s->all;
	if (s->all)
		s->all->prev = c;
	s->all = c;
	if (n) {
		c->left = xmalloc(n);
		memcpy(c->left, leftover, n);
		c->left_len = n;
		c->need_read = true;
		mark_dirty(c);
	}
	arm(c, &c->rd_op, &c->rd_armed, POLLIN | POLLRDHUP);
	if (ret)
		*ret = c;
	return 0;
}

int ws_send(struct ws_conn *c, struct ws_frame *f)
{
	if (c->state != ST_OPEN)
		return -EPIPE;
	f->refs++;
	if (q_push(c, f) < 0) {
		f->refs--;
		c->s->closed_slow++;
		conn_abort(c);
		return -ENOBUFS;
	}
	return 0;
}

void ws_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	if (c->state != ST_OPEN)
		return;
	if (c->kind == WS_WEBSOCKET) {
		size_t n = reason ? strnlen(reason, 123) : 0;
		wslay_event_queue_close(c->wsl, code, (const uint8_t *)reason, n);
		if (!c->in_recv)	/* else input_ws pumps when wslay returns */
			wsl_pump(c);
	}
	enter_closing(c);
}

void ws_abort(struct ws_conn *c)
{
	conn_abort(c);
}

size_t ws_queued(const struct ws_conn *c)
{
	return c->qbytes;
}

int ws_open(const struct ws_conn *c)
{
	return c->state == ST_OPEN;
}

/* The connection was reported: drop it from the server and the owner ref. */
static void report_closed(struct ws_server *s, struct ws_conn *c)
{
	c->notified = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	if (s->hd.on_closed)
		s->hd.on_closed(c, c->user, s->hd.arg);
	conn_unref(c);
}

static void ping_round(struct ws_server *s, int64_t now)
{
	int64_t stuck = 2 * (int64_t)s->cfg.ping_interval_ms * 1000000;

	for (struct ws_conn *c = s->all; c; c = c->next) {
		if (c->state != ST_OPEN)
			continue;
		if (c->qn && now - c->progress_ns > stuck) {
			s->closed_slow++;
			conn_abort(c);
		} else if (c->kind == WS_WEBSOCKET) {
			struct wslay_event_msg m = { WSLAY_PING, (const uint8_t *)"jobring", 7 };
			if (c->ping_out) {
				s->closed_ping++;
				conn_abort(c);
				continue;
			}
			c->ping_out = true;
			if (wslay_event_queue_msg(c->wsl, &m) == 0)
				wsl_pump(c);
		} else {
			ws_send(c, s->ping);
		}
	}
}

void ws_server_tick(struct ws_server *s, int64_t now)
{
	struct ws_conn *c, *next;

	for (c = s->closing; c; c = next) {
		next = c->cnext;
		if (now >= c->deadline)
			conn_abort(c);
	}
	if (now >= s->next_round) {
		ping_round(s, now);
		s->next_round = now + (int64_t)s->cfg.ping_interval_ms * 1000000;
	}
	/* Connections dirtied while this runs go on a fresh list (next turn). */
	c = s->dirty;
	s->dirty = NULL;
	for (; c; c = next) {
		next = c->dnext;
		c->dnext = NULL;
		c->dirty = false;
		if (c->state == ST_DEAD) {
			report_closed(s, c);
			continue;
		}
		if (c->need_read) {
			c->need_read = false;
			c->refs++;	/* on_text may abort it; keep it for the flush */
			conn_read(c);
			if (c->state != ST_DEAD && !c->wr_armed)
				conn_flush(c);
			conn_unref(c);
			continue;
		}
		if (!c->wr_armed)
			conn_flush(c);
	}
}

int64_t ws_server_next_deadline(const struct ws_server *s)
{
	int64_t d = s->next_round;

	if (s->dirty)
		return 0;
	for (const struct ws_conn *c = s->closing; c; c = c->cnext)
		d = MIN(d, c->deadline);
	return d;
}

void ws_server_stats(const struct ws_server *s, struct ws_stats *st)
{
	st->conns = s->nconns;
	st->queued = s->queued;
	st->closed_slow = s->closed_slow;
	st->closed_ping = s->closed_ping;
	st->frames_sent = s->frames_sent;
}
