/* httpd_send.c - the answering half of httpd: response heads, the output
 * queue (io_uring send, short writes, coalescing of pipelined answers),
 * files, upgrades and the error envelope. */
#include "httpd_int.h"
#include "jobring/util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void send_cb(struct loop_op *op, int res, unsigned flags);
static void read_cb(struct loop_op *op, int res, unsigned flags);

void hconn_send_init(struct httpd_conn *c)
{
	c->send_op.cb = send_cb;
	c->read_op.cb = read_cb;
}

/* The envelope code the server uses for a status it answers by itself. */
static const char *status_code(int status)
{
	switch (status) {
	case 401: return "UNAUTHORIZED";
	case 403: return "FORBIDDEN";
	case 404: return "NOT_FOUND";
	case 405: return "METHOD_NOT_ALLOWED";
	case 408: return "REQUEST_TIMEOUT";
	case 411: return "LENGTH_REQUIRED";
	case 413: return "PAYLOAD_TOO_LARGE";
	case 414: return "URI_TOO_LONG";
	case 415: return "UNSUPPORTED_MEDIA_TYPE";
	case 429: return "RATE_LIMITED";
	case 431: return "HEADERS_TOO_LARGE";
	case 501: return "NOT_IMPLEMENTED";
	case 503: return "SERVICE_UNAVAILABLE";
	case 505: return "HTTP_VERSION_NOT_SUPPORTED";
	default: return status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST";
	}
}

static int envelope(struct buf *b, const char *code, const char *message)
{
	struct jw w;

	jw_init(&w, b);
	jw_obj_begin(&w);
	jw_key(&w, "error");
	jw_obj_begin(&w);
	jw_kv_str(&w, "code", code);
	jw_kv_str(&w, "message", message);
	jw_obj_end(&w);
	jw_obj_end(&w);
	return jw_finish(&w);
}

static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

static void head_append(struct httpd_conn *c, int status, const char *ctype, const char *extra,
			size_t len, bool keep)
{
	struct buf *b = &c->out;

	buf_printf(b, "HTTP/1.1 %d %s\r\nServer: %s\r\n", status, http_reason(status),
		   c->h->cfg.server_name);
	if (ctype)
		buf_printf(b, "Content-Type: %s\r\n", ctype);
	if (status_has_body(status))
		buf_printf(b, "Content-Length: %zu\r\n", len);
	buf_puts(b, keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
	if (extra)
		buf_puts(b, extra);
	buf_puts(b, "\r\n");
}

void hconn_send_error(struct httpd_conn *c, int status, const char *message)
{
	char mem[512];
	struct buf b;

	buf_init_fixed(&b, mem, sizeof(mem));
	envelope(&b, status_code(status), message);	/* static messages: fits */
	head_append(c, status, "application/json", NULL, b.len, false);
	if (!(c->req_valid && c->req.head))
		buf_append(&c->out, b.data, b.len);
	c->state = ST_CLOSING;
}

bool hconn_out_idle(const struct httpd_conn *c)
{
	return !c->send_busy && c->wsent == c->wout.len && !c->out.len && c->file_fd < 0;
}

void hconn_flush(struct httpd_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->send_busy || c->dead)
		return;
	if (c->wsent == c->wout.len) {
		buf_reset(&c->wout);
		c->wsent = 0;
		if (c->out.len) {
			struct buf t = c->out;
			c->out = c->wout;
			c->wout = t;
		} else if (c->file_fd >= 0) {
			size_t n = MIN(c->file_left, (size_t)HTTPD_CHUNK);

			buf_reserve(&c->wout, n);
			sqe = loop_sqe(c->h->loop, &c->read_op);
			io_uring_prep_read(sqe, c->file_fd, c->wout.data, (unsigned)n,
					   (uint64_t)c->file_off);
			c->send_busy = true;
			c->refs++;
			return;
		} else {
			htimer_clear(&c->wt);
			return;
		}
	}
	sqe = loop_sqe(c->h->loop, &c->send_op);
	io_uring_prep_send(sqe, c->fd, c->wout.data + c->wsent, c->wout.len - c->wsent,
			   MSG_NOSIGNAL);
	c->send_busy = true;
	c->refs++;
	if (c->wt.kind != T_SEND)
		htimer_set(c, &c->wt, T_SEND);
}

static void send_cb(struct loop_op *op, int res, unsigned flags)
{
	struct httpd_conn *c = container_of(op, struct httpd_conn, send_op);

	(void)flags;
	c->send_busy = false;
	if (c->dead) {
		/* nothing */
	} else if (res <= 0) {
		hconn_close(c);
	} else {
		c->wsent += (size_t)res;	/* a short write resends the rest */
		htimer_set(c, &c->wt, T_SEND);
		hconn_step(c);
	}
	hconn_put(c);
}

static void read_cb(struct loop_op *op, int res, unsigned flags)
{
	struct httpd_conn *c = container_of(op, struct httpd_conn, read_op);

	(void)flags;
	c->send_busy = false;
	if (c->dead) {
		/* nothing */
	} else if (res <= 0) {
		hconn_close(c);	/* the file is shorter than the Content-Length sent */
	} else {
		buf_commit(&c->wout, (size_t)res);
		c->file_off += res;
		c->file_left -= (size_t)res;
		if (!c->file_left) {
			close(c->file_fd);
			c->file_fd = -1;
		}
		hconn_step(c);
	}
	hconn_put(c);
}

void hconn_release_hold(struct httpd_conn *c)
{
	if (!c->hold)
		return;
	c->hold = false;
	c->h->npending--;
	c->refs--;	/* callers hold their own ref: never the last */
}

static bool answerable(const struct httpd_req *req)
{
	const struct httpd_conn *c = req->conn;

	return c && c->hold && c->state == ST_HANDLING && req == &c->req;
}

static void answered(struct httpd_conn *c, bool keep)
{
	hconn_release_hold(c);
	c->keep = keep;
	if (c->file_fd >= 0)
		c->state = ST_FILE;
	else
		hconn_finish_request(c);
	if (!c->in_handler)
		hconn_kick(c);
}

void httpd_respond(struct httpd_req *req, int status, const char *content_type,
		   const char *extra_headers, const void *body, size_t len)
{
	struct httpd_conn *c = req->conn;
	bool keep;

	if (!answerable(req))
		return;
	c->refs++;
	if (!c->dead) {
		keep = req->keep_alive && !c->h->stopping;
		head_append(c, status, content_type, extra_headers, len, keep);
		if (!req->head && len && status_has_body(status))
			buf_append(&c->out, body, len);
		answered(c, keep);
	} else {
		hconn_release_hold(c);
	}
	hconn_put(c);
}

void httpd_respond_file(struct httpd_req *req, int status, const char *content_type,
			const char *extra_headers, int fd, off_t off, size_t len)
{
	struct httpd_conn *c = req->conn;
	bool keep;

	if (!answerable(req)) {
		close(fd);
		return;
	}
	c->refs++;
	if (!c->dead) {
		keep = req->keep_alive && !c->h->stopping;
		head_append(c, status, content_type, extra_headers, len, keep);
		if (req->head || !len || !status_has_body(status)) {
			close(fd);
		} else {
			c->file_fd = fd;
			c->file_off = off;
			c->file_left = len;
		}
		answered(c, keep);
	} else {
		close(fd);
		hconn_release_hold(c);
	}
	hconn_put(c);
}

int httpd_detach(struct httpd_req *req, const char *head, size_t head_len, void *leftover,
		 size_t *leftover_len)
{
	struct httpd_conn *c = req->conn;
	size_t rest, off = 0;
	int fd, r = 0;

	if (!answerable(req))
		return -EINVAL;
	if (c->dead) {
		c->refs++;
		hconn_release_hold(c);
		hconn_put(c);
		return -ECONNRESET;
	}
	/* no recv may be left to read into our buffer, no send to interleave */
	if (c->recv_busy || !hconn_out_idle(c))
		return -EBUSY;
	rest = c->in_len - c->in_start - c->req_end;
	if (rest > *leftover_len)
		return -ENOBUFS;
	c->refs++;
	while (off < head_len) {
		ssize_t n = send(c->fd, head + off, head_len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EPIPE;
			break;
		}
		off += (size_t)n;
	}
	if (r < 0) {
		hconn_close(c);
		hconn_release_hold(c);
		hconn_put(c);
		return r;
	}
	if (rest)
		memcpy(leftover, c->in + c->in_start + c->req_end, rest);
	*leftover_len = rest;
	fd = c->fd;
	c->fd = -1;	/* the caller's now */
	if (c->watching) {
		struct io_uring_sqe *sqe = loop_sqe(c->h->loop, &c->unwatch_op);
		io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&c->watch_op);
		c->refs++;
	}
	hconn_unlink(c);
	hconn_release_hold(c);
	hconn_put(c);
	return fd;
}

const char *httpd_header(const struct httpd_req *req, const char *name, size_t *len)
{
	for (size_t i = 0; i < req->num_headers; i++) {
		const struct http_header *hd = &req->headers[i];
		if (http_name_eq(hd->name, hd->name_len, name)) {
			if (len)
				*len = hd->value_len;
			return hd->value;
		}
	}
	return NULL;
}

void httpd_error(struct httpd_req *req, int status, const char *code, const char *message)
{
	char mem[1024];
	struct buf b;

	buf_init_fixed(&b, mem, sizeof(mem));
	if (envelope(&b, code, message) < 0) {
		buf_init(&b);
		envelope(&b, code, message);
	}
	httpd_respond(req, status, "application/json", NULL, b.data, b.len);
	buf_free(&b);
}
