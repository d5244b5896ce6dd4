/* Unit test for httpd: a real server on ephemeral loopback ports, driven by a
 * struct loop in this process, with non-blocking client sockets stepped
 * alongside loop_wait(). */
#include "jobring/buf.h"
#include "jobring/httpd.h"
#include "jobring/util.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS101 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
#define FILE_SIZE (3u << 20)

static struct loop L;
static struct httpd *H, *H2;
static int port1, port2;

static struct httpd_req *g_def[8];	/* deferred requests */
static int g_ndef;
static int g_ws_fd = -1;
static char g_ws_left[64];
static size_t g_ws_left_len;
static uint64_t g_stream_n, g_stream_sum;
static int g_stream_last;
static char g_file_path[64];
static unsigned char *g_file_data;

/* ------------------------------------------------------------- server side */

static int path_is(const struct httpd_req *req, const char *p)
{
	return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static void handler(struct httpd *h, struct httpd_req *req, void *arg)
{
	char body[256];
	int n;

	(void)h;
	(void)arg;
	CHECK(req->started_ns > 0);
	CHECK_EQ(req->peer_ip, 0x7f000001);
	if (path_is(req, "/hello")) {
		n = snprintf(body, sizeof(body), "hello%s%.*s", req->query ? " " : "",
			     req->query ? (int)req->query_len : 0, req->query ? req->query : "");
		httpd_respond(req, 200, "text/plain", "X-Test: 1\r\n", body, (size_t)n);
	} else if (path_is(req, "/echo") || path_is(req, "/big")) {
		httpd_respond(req, 200, "application/octet-stream", NULL, req->body, req->body_len);
	} else if (path_is(req, "/defer")) {
		CHECK(g_ndef < 8);
		g_def[g_ndef++] = req;
	} else if (path_is(req, "/ws")) {
		size_t ln = sizeof(g_ws_left);
		CHECK(req->upgrade_websocket);
		g_ws_fd = httpd_detach(req, WS101, strlen(WS101), g_ws_left, &ln);
		CHECK(g_ws_fd >= 0);
		g_ws_left_len = ln;
	} else if (path_is(req, "/stream")) {
		CHECK(req->body == NULL);
		CHECK_EQ(req->body_len, g_stream_n);
		n = snprintf(body, sizeof(body), "n=%" PRIu64 " sum=%" PRIu64 " last=%d", g_stream_n,
			     g_stream_sum, g_stream_last);
		httpd_respond(req, 200, "text/plain", NULL, body, (size_t)n);
	} else if (path_is(req, "/file")) {
		int fd = open(g_file_path, O_RDONLY | O_CLOEXEC);
		CHECK(fd >= 0);
		httpd_respond_file(req, 200, "application/octet-stream", NULL, fd, 0, FILE_SIZE);
	} else if (path_is(req, "/close")) {
		req->keep_alive = 0;
		httpd_respond(req, 200, "text/plain", NULL, "bye", 3);
	} else {
		httpd_error(req, 404, "NOT_FOUND", "Route not found");
	}
}

static int64_t decide(struct httpd *h, struct httpd_req *req, void *arg)
{
	(void)h;
	(void)arg;
	CHECK(req->body == NULL);
	if (path_is(req, "/stream")) {
		g_stream_n = g_stream_sum = 0;
		g_stream_last = 0;
		return HTTPD_STREAM;
	}
	if (path_is(req, "/refuse"))
		return -413;
	if (path_is(req, "/big"))
		return 1 << 20;
	return 0;
}

static int on_chunk(struct httpd *h, struct httpd_req *req, const char *p, size_t n, int last,
		    void *arg)
{
	(void)h;
	(void)req;
	(void)arg;
	CHECK(!g_stream_last);
	for (size_t i = 0; i < n; i++)
		g_stream_sum += (unsigned char)p[i];
	g_stream_n += n;
	g_stream_last += last;
	return 0;
}

static int listen_on(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	CHECK(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(fd, 128) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void pump(void)
{
	int r = loop_wait(&L, 2);
	CHECK(r >= 0);
	httpd_tick(H, mono_ns());
	httpd_tick(H2, mono_ns());
}

static void pump_ms(int ms)
{
	int64_t end = mono_ns() + ms * 1000000LL;
	while (mono_ns() < end)
		pump();
}

/* ------------------------------------------------------------- client side */

struct cl {
	int fd;
	struct buf in;
};

struct resp {
	int status;
	char *head;
	char *body;
	size_t len;
};

static void cl_open(struct cl *c, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(c->fd >= 0);
	CHECK(connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(fcntl(c->fd, F_SETFL, O_NONBLOCK) == 0);
	buf_init(&c->in);
}

static void cl_close(struct cl *c)
{
	close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
}

static void cl_send(struct cl *c, const void *p, size_t n)
{
	const char *s = p;

	while (n) {
		ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
		if (r > 0) {
			s += r;
			n -= (size_t)r;
		} else {
			CHECK(r < 0 && (errno == EAGAIN || errno == EINTR));
			pump();
		}
	}
}

static void cl_puts(struct cl *c, const char *s)
{
	cl_send(c, s, strlen(s));
}

/* Receive what is there: > 0 bytes, 0 at EOF (or reset), -EAGAIN if none. */
static int cl_fill(struct cl *c)
{
	ssize_t n;

	CHECK(buf_reserve(&c->in, 65536) == 0);
	n = recv(c->fd, c->in.data + c->in.len, 65536, 0);
	if (n > 0) {
		buf_commit(&c->in, (size_t)n);
		return (int)n;
	}
	if (n == 0 || errno == ECONNRESET)
		return 0;
	CHECK(errno == EAGAIN);
	return -EAGAIN;
}

static const char *hdr(const struct resp *r, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
			return p + 3 + n + strspn(p + 3 + n, " ");
	return NULL;
}

/* Read one response (head only if no_body, as for HEAD). */
static void cl_resp(struct cl *c, struct resp *r, int no_body)
{
	int64_t deadline = mono_ns() + 20000000000LL;

	memset(r, 0, sizeof(*r));
	for (;;) {
		char *e = c->in.len ? memmem(c->in.data, c->in.len, "\r\n\r\n", 4) : NULL;
		if (e) {
			size_t hlen = (size_t)(e - c->in.data) + 4, blen = 0;
			const char *cl;
			CHECK(sscanf(c->in.data, "HTTP/1.1 %d ", &r->status) == 1);
			r->head = xstrndup(c->in.data, hlen);
			cl = hdr(r, "Content-Length");
			if (cl && !no_body)
				blen = strtoull(cl, NULL, 10);
			if (c->in.len >= hlen + blen) {
				r->body = xmalloc(blen + 1);
				memcpy(r->body, c->in.data + hlen, blen);
				r->body[blen] = '\0';
				r->len = blen;
				buf_consume(&c->in, hlen + blen);
				return;
			}
			free(r->head);
			r->head = NULL;
		}
		CHECK(mono_ns() < deadline);
		int n = cl_fill(c);
		if (n == 0) {
			fprintf(stderr, "connection closed with %zu bytes: %.*s\n", c->in.len,
				(int)MIN(c->in.len, 200), c->in.data ? c->in.data : "");
			CHECK(!"response incomplete");
		}
		if (n < 0)
			pump();
	}
}

static void resp_free(struct resp *r)
{
	free(r->head);
	free(r->body);
}

/* The server closes: EOF with nothing more to read. */
static void cl_expect_closed(struct cl *c)
{
	int64_t deadline = mono_ns() + 20000000000LL;
	int n;

	CHECK_EQ(c->in.len, 0);
	while ((n = cl_fill(c)) < 0) {
		CHECK(mono_ns() < deadline);
		pump();
	}
	CHECK_EQ(n, 0);
	CHECK_EQ(c->in.len, 0);
}

/* Nothing arrives for a while. */
static void cl_expect_quiet(struct cl *c, int ms)
{
	pump_ms(ms);
	CHECK_EQ(cl_fill(c), -EAGAIN);
}

/* One request, one response, status checked. */
static void roundtrip(struct cl *c, const char *req, int status, const char *body)
{
	struct resp r;

	cl_puts(c, req);
	cl_resp(c, &r, 0);
	CHECK_EQ(r.status, status);
	if (body)
		CHECK_STR(r.body, body);
	resp_free(&r);
}

/* A request the server must refuse with the envelope, then close. */
static void expect_error(int port, const char *req, int status, const char *code)
{
	struct cl c;
	struct resp r;
	char want[64];

	cl_open(&c, port);
	cl_puts(&c, req);
	cl_resp(&c, &r, 0);
	CHECK_EQ(r.status, status);
	CHECK(strstr(hdr(&r, "Content-Type"), "json"));
	CHECK(strncmp(hdr(&r, "Connection"), "close", 5) == 0);
	snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
	if (strncmp(r.body, want, strlen(want)) != 0) {
		fprintf(stderr, "body: %s\n", r.body);
		CHECK(!"envelope");
	}
	resp_free(&r);
	cl_expect_closed(&c);
	cl_close(&c);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* Send p[0,n) in pieces split at random points, pumping in between. */
static void cl_send_split(struct cl *c, const char *p, size_t n)
{
	while (n) {
		size_t k = 1 + rand_next(&rng) % MIN(n, (size_t)7000);
		cl_send(c, p, k);
		p += k;
		n -= k;
		pump();
	}
}

/* Chunked encoding of data with random chunk sizes. */
static void chunked(struct buf *b, const unsigned char *data, size_t n)
{
	while (n) {
		size_t k = 1 + rand_next(&rng) % MIN(n, (size_t)5000);
		buf_printf(b, "%zx\r\n", k);
		buf_append(b, data, k);
		buf_puts(b, "\r\n");
		data += k;
		n -= k;
	}
	buf_puts(b, "0\r\n\r\n");
}

/* ------------------------------------------------------------------ tests */

static void test_keepalive_pipelining(void)
{
	struct cl c;
	struct resp r;
	char want[32];

	cl_open(&c, port1);
	for (int i = 0; i < 5; i++) {
		cl_puts(&c, "GET /hello?i HTTP/1.1\r\nHost: x\r\n\r\n");
		cl_resp(&c, &r, 0);
		CHECK_EQ(r.status, 200);
		CHECK_STR(r.body, "hello i");
		CHECK(strncmp(hdr(&r, "Connection"), "keep-alive", 10) == 0);
		CHECK(strncmp(hdr(&r, "Server"), "test", 4) == 0);
		CHECK(strncmp(hdr(&r, "X-Test"), "1", 1) == 0);
		resp_free(&r);
	}
	CHECK_EQ(httpd_conns(H), 1);
	/* three pipelined requests in one write: three answers, in order */
	cl_puts(&c, "GET /hello?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET /hello?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET /hello?n=3 HTTP/1.1\r\nHost: x\r\n\r\n");
	for (int i = 1; i <= 3; i++) {
		cl_resp(&c, &r, 0);
		snprintf(want, sizeof(want), "hello n=%d", i);
		CHECK_STR(r.body, want);
		resp_free(&r);
	}
	/* 404 through httpd_error keeps the connection */
	roundtrip(&c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL);
	roundtrip(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello");
	/* the handler asks to close */
	roundtrip(&c, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n", 200, "bye");
	cl_expect_closed(&c);
	cl_close(&c);
	printf("keep-alive, pipelining: ok\n");
}

static void test_deferred(void)
{
	struct cl c;
	struct resp r;

	g_ndef = 0;
	cl_open(&c, port1);
	cl_puts(&c, "GET /hello?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET /hello?n=3 HTTP/1.1\r\nHost: x\r\n\r\n");
	cl_resp(&c, &r, 0);
	CHECK_STR(r.body, "hello n=1");
	resp_free(&r);
	while (g_ndef == 0)
		pump();
	CHECK_EQ(httpd_pending(H), 1);
	/* the third waits behind the deferred second */
	cl_expect_quiet(&c, 50);
	httpd_respond(g_def[0], 201, "text/plain", NULL, "later", 5);
	CHECK_EQ(httpd_pending(H), 0);
	cl_resp(&c, &r, 0);
	CHECK_EQ(r.status, 201);
	CHECK_STR(r.body, "later");
	resp_free(&r);
	cl_resp(&c, &r, 0);
	CHECK_STR(r.body, "hello n=3");
	resp_free(&r);

	/* the client leaves while the handler holds the request */
	g_ndef = 0;
	unsigned before = httpd_conns(H);
	cl_puts(&c, "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n");
	while (g_ndef == 0)
		pump();
	cl_close(&c);
	while (httpd_conns(H) == before)
		pump();
	CHECK_EQ(httpd_pending(H), 1);
	CHECK(path_is(g_def[0], "/defer"));	/* still valid */
	pump_ms(20);
	httpd_respond(g_def[0], 200, "text/plain", NULL, "gone", 4);
	CHECK_EQ(httpd_pending(H), 0);
	pump_ms(20);
	printf("deferred answers, client gone meanwhile: ok\n");
}

static void test_bodies(void)
{
	struct cl c;
	struct resp r;
	struct buf b;
	unsigned char data[3000];
	static unsigned char big[300000];
	char req[256];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)rand_next(&rng);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)rand_next(&rng);
	cl_open(&c, port1);
	buf_init(&b);
	for (int round = 0; round < 5; round++) {
		/* Content-Length, split at random points */
		buf_reset(&b);
		buf_printf(&b, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
			   sizeof(data));
		buf_append(&b, data, sizeof(data));
		cl_send_split(&c, b.data, b.len);
		cl_resp(&c, &r, 0);
		CHECK_EQ(r.status, 200);
		CHECK_EQ(r.len, sizeof(data));
		CHECK(memcmp(r.body, data, sizeof(data)) == 0);
		resp_free(&r);
		/* chunked, split at random points, followed by a pipelined GET */
		buf_reset(&b);
		buf_puts(&b, "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
		chunked(&b, big, sizeof(big));
		buf_puts(&b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
		cl_send_split(&c, b.data, b.len);
		cl_resp(&c, &r, 0);
		CHECK_EQ(r.status, 200);
		CHECK_EQ(r.len, sizeof(big));
		CHECK(memcmp(r.body, big, sizeof(big)) == 0);
		resp_free(&r);
		cl_resp(&c, &r, 0);
		CHECK_STR(r.body, "hello");
		resp_free(&r);
		/* streamed to the policy, chunked then Content-Length */
		buf_reset(&b);
		buf_puts(&b, "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
		chunked(&b, big, sizeof(big));
		cl_send_split(&c, b.data, b.len);
		uint64_t sum = 0;
		for (size_t i = 0; i < sizeof(big); i++)
			sum += big[i];
		char want[96];
		snprintf(want, sizeof(want), "n=%zu sum=%" PRIu64 " last=1", sizeof(big), sum);
		cl_resp(&c, &r, 0);
		CHECK_STR(r.body, want);
		resp_free(&r);
		buf_reset(&b);
		buf_printf(&b, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
			   sizeof(big));
		buf_append(&b, big, sizeof(big));
		cl_send_split(&c, b.data, b.len);
		cl_resp(&c, &r, 0);
		CHECK_STR(r.body, want);
		resp_free(&r);
	}
	/* Expect: 100-continue: the interim answer comes before the body */
	cl_puts(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
	cl_resp(&c, &r, 0);
	CHECK_EQ(r.status, 100);
	CHECK_STR(r.head, "HTTP/1.1 100 Continue\r\n\r\n");
	resp_free(&r);
	cl_puts(&c, "abcde");
	cl_resp(&c, &r, 0);
	CHECK_EQ(r.status, 200);
	CHECK_STR(r.body, "abcde");
	resp_free(&r);
	/* HEAD: the GET's Content-Length, no body (the next answer parses) */
	cl_puts(&c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	cl_resp(&c, &r, 1);
	CHECK_EQ(r.status, 200);
	CHECK_EQ(atoi(hdr(&r, "Content-Length")), 5);
	resp_free(&r);
	roundtrip(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello");
	/* HTTP/1.0 with keep-alive stays open */
	cl_puts(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	cl_resp(&c, &r, 0);
	CHECK(strncmp(hdr(&r, "Connection"), "keep-alive", 10) == 0);
	resp_free(&r);
	/* plain HTTP/1.0 closes */
	cl_puts(&c, "GET /hello HTTP/1.0\r\n\r\n");
	cl_resp(&c, &r, 0);
	CHECK(strncmp(hdr(&r, "Connection"), "close", 5) == 0);
	resp_free(&r);
	cl_expect_closed(&c);
	cl_close(&c);

	/* refused before the body: no 100, the refusal, closed */
	snprintf(req, sizeof(req), "POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
				   "Content-Length: 10\r\n\r\n");
	expect_error(port1, req, 413, "PAYLOAD_TOO_LARGE");
	buf_free(&b);
	printf("bodies (CL, chunked, streamed), 100-continue, HEAD, HTTP/1.0: ok\n");
}

static void test_limits(void)
{
	char line[600], *many;
	struct buf b;

	memset(line, 0, sizeof(line));
	strcpy(line, "GET /");
	memset(line + 5, 'a', 300);
	strcat(line, " HTTP/1.1\r\nHost: x\r\n\r\n");
	expect_error(port1, line, 414, "URI_TOO_LONG");
	buf_init(&b);
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 40; i++)
		buf_printf(&b, "X-Pad-%d: %050d\r\n", i, i);
	buf_puts(&b, "\r\n");
	expect_error(port1, b.data, 431, "HEADERS_TOO_LARGE");
	buf_reset(&b);
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < HTTPD_MAX_HEADERS + 1; i++)
		buf_puts(&b, "a:b\r\n");
	buf_puts(&b, "\r\n");
	expect_error(port1, b.data, 431, "HEADERS_TOO_LARGE");
	expect_error(port1, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413,
		     "PAYLOAD_TOO_LARGE");
	buf_reset(&b);
	buf_puts(&b, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	many = xcalloc(1, 5000);
	chunked(&b, (unsigned char *)many, 5000);
	free(many);
	expect_error(port1, b.data, 413, "PAYLOAD_TOO_LARGE");
	expect_error(port1, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
			    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "BAD_REQUEST");
	expect_error(port1, "GET / HTTP/1.1\r\nHost: x\r\n bad\r\n\r\n", 400, "BAD_REQUEST");
	expect_error(port1, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED");
	expect_error(port1, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		     501, "NOT_IMPLEMENTED");
	/* the head does not complete in time */
	expect_error(port1, "GET /hello HTTP/1.1\r\nHost: x\r\n", 408, "REQUEST_TIMEOUT");
	/* the body stops arriving */
	expect_error(port1, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", 408,
		     "REQUEST_TIMEOUT");
	buf_free(&b);
	printf("limits 414/431/413/400/505/501/408: ok\n");
}

static void test_idle_and_max_conns(void)
{
	struct cl c, a[3];
	struct resp r;

	/* idle keep-alive connections are closed silently */
	cl_open(&c, port1);
	roundtrip(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello");
	cl_expect_closed(&c);
	cl_close(&c);

	/* H2 takes 2 connections: the third gets 503 and is closed */
	cl_open(&a[0], port2);
	cl_open(&a[1], port2);
	while (httpd_conns(H2) < 2)
		pump();
	cl_open(&a[2], port2);
	cl_resp(&a[2], &r, 0);
	CHECK_EQ(r.status, 503);
	CHECK(strstr(r.body, "\"SERVICE_UNAVAILABLE\""));
	resp_free(&r);
	cl_expect_closed(&a[2]);
	cl_close(&a[2]);
	roundtrip(&a[0], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello");
	cl_close(&a[1]);
	while (httpd_conns(H2) > 1)
		pump();
	cl_open(&a[1], port2);
	roundtrip(&a[1], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello");
	cl_close(&a[0]);
	cl_close(&a[1]);
	printf("idle close, max_conns 503: ok\n");
}

static void test_file(void)
{
	struct cl c;
	struct resp r;
	int fd;

	g_file_data = xmalloc(FILE_SIZE);
	for (size_t i = 0; i < FILE_SIZE; i++)
		g_file_data[i] = (unsigned char)rand_next(&rng);
	strcpy(g_file_path, "/tmp/httpd_test_XXXXXX");
	fd = mkstemp(g_file_path);
	CHECK(fd >= 0);
	CHECK(write_all(fd, g_file_data, FILE_SIZE) == 0);
	close(fd);
	cl_open(&c, port1);
	for (int i = 0; i < 2; i++) {
		cl_puts(&c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
		cl_resp(&c, &r, 0);
		CHECK_EQ(r.status, 200);
		CHECK_EQ(r.len, FILE_SIZE);
		CHECK(memcmp(r.body, g_file_data, FILE_SIZE) == 0);
		resp_free(&r);
		cl_resp(&c, &r, 0);	/* after the whole file */
		CHECK_STR(r.body, "hello");
		resp_free(&r);
	}
	cl_puts(&c, "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n");
	cl_resp(&c, &r, 1);
	CHECK_EQ(strtoull(hdr(&r, "Content-Length"), NULL, 10), FILE_SIZE);
	resp_free(&r);
	roundtrip(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, "hello");
	cl_close(&c);
	unlink(g_file_path);
	free(g_file_data);
	printf("respond_file 3 MiB: ok\n");
}

static void test_detach(void)
{
	struct cl c;
	char got[256];
	size_t n = 0;

	while (httpd_conns(H))	/* earlier clients' closes seen */
		pump();
	cl_open(&c, port1);
	cl_puts(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
		    "LEFTOVER");
	while (g_ws_fd < 0)
		pump();
	CHECK_EQ(httpd_conns(H), 0);	/* forgotten */
	/* leftover bytes plus whatever was still in the socket */
	memcpy(got, g_ws_left, g_ws_left_len);
	n = g_ws_left_len;
	while (n < 8) {
		ssize_t k = recv(g_ws_fd, got + n, sizeof(got) - n, MSG_DONTWAIT);
		if (k > 0)
			n += (size_t)k;
		else
			pump();
	}
	CHECK(n == 8 && memcmp(got, "LEFTOVER", 8) == 0);
	printf("detach: %zu leftover bytes copied\n", g_ws_left_len);
	CHECK(write_all(g_ws_fd, "pong", 4) == 0);
	close(g_ws_fd);
	/* the client sees the GET's answer, the 101, then our bytes */
	struct resp r;
	cl_resp(&c, &r, 0);
	CHECK_STR(r.body, "hello");
	resp_free(&r);
	cl_resp(&c, &r, 1);
	CHECK_EQ(r.status, 101);
	resp_free(&r);
	while (c.in.len < 4)
		if (cl_fill(&c) < 0)
			pump();
	CHECK(c.in.len == 4 && memcmp(c.in.data, "pong", 4) == 0);
	buf_reset(&c.in);
	cl_expect_closed(&c);
	cl_close(&c);
	printf("detach: ok\n");
}

static void test_drain(void)
{
	struct cl idle, busy, late;
	struct resp r;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port1),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	unsigned before = httpd_conns(H);

	g_ndef = 0;
	cl_open(&idle, port1);
	cl_open(&busy, port1);
	cl_puts(&busy, "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n");
	while (g_ndef == 0 || httpd_conns(H) < before + 2)
		pump();
	httpd_stop_accepting(H);
	cl_expect_closed(&idle);
	cl_close(&idle);
	pump_ms(20);
	late.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(connect(late.fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == ECONNREFUSED);
	close(late.fd);
	httpd_respond(g_def[0], 200, "text/plain", NULL, "done", 4);
	cl_resp(&busy, &r, 0);
	CHECK_STR(r.body, "done");
	CHECK(strncmp(hdr(&r, "Connection"), "close", 5) == 0);
	resp_free(&r);
	cl_expect_closed(&busy);
	cl_close(&busy);
	printf("drain: ok\n");
}

int main(void)
{
	struct httpd_config cfg = {
		.max_conns = 100,
		.header_timeout_ms = 300,
		.idle_timeout_ms = 1000,
		.body_timeout_ms = 300,
		.max_request_line = 256,
		.max_header_bytes = 1024,
		.max_body = 4096,
		.server_name = "test",
		.handler = handler,
		.policy = { .decide = decide, .on_chunk = on_chunk },
	};
	int r;

	signal(SIGPIPE, SIG_IGN);
	r = loop_init(&L, 256);
	if (r < 0) {
		fprintf(stderr, "io_uring unavailable: %s\n", strerror(-r));
		return T_SKIP;
	}
	cfg.listen_fd = listen_on(&port1);
	CHECK_EQ(httpd_init(&H, &L, &cfg), 0);
	cfg.listen_fd = listen_on(&port2);
	cfg.max_conns = 2;
	cfg.max_conns_per_ip = 2;
	CHECK_EQ(httpd_init(&H2, &L, &cfg), 0);

	test_keepalive_pipelining();
	test_deferred();
	test_bodies();
	test_limits();
	test_idle_and_max_conns();
	test_file();
	test_detach();
	test_drain();

	httpd_free(H);
	httpd_free(H2);
	loop_fini(&L);
	return T_PASS;
}
