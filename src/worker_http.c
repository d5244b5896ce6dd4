/* worker_http.c - the worker's small HTTP/1.1 server: a listening socket
 * and up to WHTTP_MAX_CONNS keep-alive connections driven by the worker's
 * poll() loop. Requests are parsed with http_parse.h (Content-Length and
 * chunked bodies, Expect: 100-continue, pipelining); each complete request
 * goes to the handler, which answers with wconn_respond*(). Limits: 1 MiB
 * bodies, the parser's head limits, 15 s from the first byte of a request
 * to its last, 60 s of keep-alive silence. */
#include "worker_int.h"

#include "jobring/log.h"
#include "jobring/util.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HDRS 64
#define MAX_BODY (1u << 20)
#define CONN_BUF_MAX (32768u + 2 * MAX_BODY)
#define IDLE_NS (60LL * 1000000000LL)	/* keep-alive connection with nothing to say */
#define REQ_NS (15LL * 1000000000LL)	/* first byte to last byte of a request */

struct wconn {
	int fd;
	char *in;
	size_t in_len, in_cap;
	size_t head_len;		/* 0 until the head is parsed */
	size_t last_len;		/* for http_head_ready() */
	struct http_framing fr;
	struct http_chunked ch;
	size_t ch_off;			/* undecoded chunked bytes start here */
	char *body;			/* decoded chunked body */
	size_t body_len;
	char *out;
	size_t out_len, out_off;
	bool close_after;
	int64_t deadline_ns;
};

/* ---- output -------------------------------------------------------------- */

static void conn_queue(struct wconn *c, const char *p, size_t n)
{
	if (c->out_off == c->out_len) {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
		}
		c->out_off = c->out_len = 0;
		if (n == 0)
			return;
	}
	c->out = xrealloc(c->out, c->out_len + n);
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

void wconn_respond(struct wconn *c, int status, const char *json)
{
	size_t len = strlen(json), cap = len + 256;
	char *msg = xmalloc(cap);
	int n;

	/* Head and body in one send: a second small write would wait for the
	 * peer's delayed ACK (Nagle). */
	n = snprintf(msg, cap,
		     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\n%s\r\n",
		     status, http_reason(status), len, c->close_after ? "Connection: close\r\n" : "");
	memcpy(msg + n, json, len);
	conn_queue(c, msg, (size_t)n + len);
	free(msg);
}

void wconn_respond_json(struct wconn *c, int status, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	wconn_respond(c, status, s ? s : "{}");
	free(s);
	cJSON_Delete(o);
}

void wconn_respond_error(struct wconn *c, int status, const char *code, const char *msg)
{
	cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");

	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	wconn_respond_json(c, status, o);
}

/* ---- connections ---------------------------------------------------------- */

static void conn_fail(struct wconn *c, int err)
{
	int status = http_error_status(err);

	c->close_after = true;
	wconn_respond_error(c, status, status == 413 ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST",
			    http_error_reason(err));
}

/* Handle every complete request in c->in, while nothing waits to be sent. */
static void conn_process(struct whttp *h, struct wconn *c)
{
	struct http_header hdrs[MAX_HDRS];
	struct http_request req;
	const char *body;
	size_t blen, end;
	int rc;

	while (!c->close_after && c->out_off == c->out_len) {
		if (c->head_len == 0) {
			if (c->in_len == 0 || !http_head_ready(c->in, c->in_len, c->last_len, NULL)) {
				c->last_len = c->in_len;
				return;
			}
			rc = http_parse_request(c->in, c->in_len, &req, hdrs, MAX_HDRS, NULL);
			if (rc == HTTP_INCOMPLETE) {
				c->last_len = c->in_len;
				return;
			}
			if (rc >= 0) {
				c->head_len = (size_t)rc;
				rc = http_request_framing(&req, &c->fr);
			}
			if (rc < 0) {
				conn_fail(c, rc);
				return;
			}
			if (c->fr.body == HTTP_BODY_LENGTH && c->fr.content_length > MAX_BODY) {
				conn_fail(c, HTTP_E_BODY_TOO_LARGE);
				return;
			}
			if (c->fr.expect_continue && c->fr.body != HTTP_BODY_NONE &&
			    c->in_len == c->head_len) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				conn_queue(c, cont, sizeof(cont) - 1);
			}
			memset(&c->ch, 0, sizeof(c->ch));
			c->ch_off = c->head_len;
			c->body_len = 0;
		}
		if (c->fr.body == HTTP_BODY_NONE) {
			body = NULL;
			blen = 0;
			end = c->head_len;
		} else if (c->fr.body == HTTP_BODY_LENGTH) {
			if (c->in_len - c->head_len < c->fr.content_length)
				return;
			body = c->in + c->head_len;
			blen = (size_t)c->fr.content_length;
			end = c->head_len + blen;
		} else {
			size_t got = 0, used = 0;
			c->body = xrealloc(c->body, c->body_len + (c->in_len - c->ch_off) + 1);
			rc = http_chunked_decode(&c->ch, c->in + c->ch_off, c->in_len - c->ch_off,
						 c->body + c->body_len, &got, &used, MAX_BODY);
			c->ch_off += used;
			c->body_len += got;
			if (rc == HTTP_INCOMPLETE)
				return;
			if (rc < 0) {
				conn_fail(c, rc);
				return;
			}
			body = c->body;
			blen = c->body_len;
			end = c->ch_off;
		}
		/* The head's pointers die when c->in grows: parse it again. */
		http_parse_request(c->in, c->head_len, &req, hdrs, MAX_HDRS, NULL);
		c->close_after = !c->fr.keep_alive;
		h->fn(h->ctx, c, &req, body, blen);
		memmove(c->in, c->in + end, c->in_len - end);
		c->in_len -= end;
		c->head_len = c->last_len = c->body_len = 0;
		c->deadline_ns = mono_ns() + (c->in_len ? REQ_NS : IDLE_NS);
	}
}

static void conn_close(struct whttp *h, size_t i)
{
	struct wconn *c = h->conns[i];

	close(c->fd);
	free(c->in);
	free(c->body);
	free(c->out);
	free(c);
	h->conns[i] = h->conns[--h->nconns];
}

/* Read what is there. false when the connection is done for. */
static bool conn_read(struct whttp *h, struct wconn *c)
{
	for (;;) {
		ssize_t r;

		if (c->in_cap - c->in_len < 4096) {
			if (c->in_cap >= CONN_BUF_MAX) {
				conn_fail(c, HTTP_E_BODY_TOO_LARGE);
				return true;
			}
			c->in_cap = MIN(MAX(c->in_cap * 2, (size_t)16384), (size_t)CONN_BUF_MAX);
			c->in = xrealloc(c->in, c->in_cap);
		}
		r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		if (r == 0)
			return false;
		if (c->in_len == 0 && c->head_len == 0)
			c->deadline_ns = mono_ns() + REQ_NS;
		c->in_len += (size_t)r;
		conn_process(h, c);
		if (c->close_after || c->out_off != c->out_len)
			return true;
	}
}

static bool conn_flush(struct wconn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		c->out_off += (size_t)r;
	}
	c->out_off = c->out_len = 0;
	return true;
}

static void accept_all(struct whttp *h)
{
	while (h->nconns < WHTTP_MAX_CONNS) {
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct wconn *c;

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->deadline_ns = mono_ns() + IDLE_NS;
		h->conns[h->nconns++] = c;
	}
}

/* ---- the listener -------------------------------------------------------- */

int whttp_listen(struct whttp *h, const char *spec)
{
	char host[256], port[16], shown[300];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1;

	if (!colon || colon == spec || strlen(colon + 1) >= sizeof(port) ||
	    (size_t)(colon - spec) >= sizeof(host)) {
		log_error("--listen wants HOST:PORT, got '%s'", spec);
		return -EINVAL;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		log_error("--listen: cannot resolve '%s'", spec);
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		log_error("cannot listen on %s: %s", spec, strerror(errno));
		return -EADDRINUSE;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
		if (strchr(host, ':'))
			snprintf(shown, sizeof(shown), "[%s]:%s", host, port);
		else
			snprintf(shown, sizeof(shown), "%s:%s", host, port);
		log_info("listening on http://%s", shown);
	}
	h->lfd = fd;
	return 0;
}

size_t whttp_pollfds(struct whttp *h, struct pollfd *pfd)
{
	size_t n = 0;

	pfd[n++] = (struct pollfd){ .fd = h->nconns < WHTTP_MAX_CONNS ? h->lfd : -1,
				    .events = POLLIN };
	for (size_t i = 0; i < h->nconns; i++) {
		struct wconn *c = h->conns[i];
		pfd[n++] = (struct pollfd){
			.fd = c->fd,
			.events = c->out_off != c->out_len ? POLLOUT : POLLIN,
		};
	}
	return n;
}

void whttp_handle(struct whttp *h, const struct pollfd *pfd, size_t n)
{
	/* Walk backwards: conn_close() moves the last connection into i, and
	 * that one has been seen already. */
	for (size_t i = n - 1; i-- > 0;) {
		struct wconn *c = h->conns[i];
		short ev = pfd[1 + i].revents;
		bool keep = true;

		if (!ev)
			continue;
		if (ev & POLLOUT) {
			keep = conn_flush(c);
			if (keep && c->out_off == c->out_len) {
				if (c->close_after)
					keep = false;
				else
					conn_process(h, c);
			}
		} else if (ev & (POLLIN | POLLHUP | POLLERR)) {
			keep = conn_read(h, c);
			if (keep && c->close_after && c->out_off == c->out_len)
				keep = false;
		}
		if (!keep)
			conn_close(h, i);
	}
	if (pfd[0].revents)
		accept_all(h);
}

int64_t whttp_expire(struct whttp *h, int64_t now)
{
	int64_t next = now + IDLE_NS;

	for (size_t i = 0; i < h->nconns;) {
		if (h->conns[i]->deadline_ns <= now) {
			conn_close(h, i);
			continue;
		}
		next = MIN(next, h->conns[i]->deadline_ns);
		i++;
	}
	return next;
}

void whttp_close(struct whttp *h)
{
	while (h->nconns)
		conn_close(h, h->nconns - 1);
	if (h->lfd >= 0)
		close(h->lfd);
	h->lfd = -1;
}
