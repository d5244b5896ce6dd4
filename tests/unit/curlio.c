/* Unit test for curlio.c: libcurl multi on our io_uring loop, against a tiny
 * forked HTTP/1.1 server (plain sockets + poll(), keep-alive):
 *   /ok     200 {"method":M,"len":N,"echo":X-Echo}   /500  500
 *   /slow   never answers                            /retry 503 Retry-After: 7
 *   /retrydate 503 Retry-After: <HTTP-date +60 s>    /big  1 MiB body
 *   /close  200 then closes the connection           /stats accepted connections
 *
 * CURLIO_BENCH=N runs only a throughput measurement of N small POSTs with 64
 * in flight and prints requests/s. */
#include "jobring/curlio.h"
#include "jobring/util.h"
#include "test.h"

#include <curl/curl.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIG_LEN (1u << 20)
#define MAX_CONNS 512
#define SBUF (1u << 17) /* server read buffer per connection */

/* ---- the server (child process) --------------------------------------- */

struct sconn {
	int fd;
	bool slow;		/* saw /slow: ignore until the client closes */
	char *buf;
	size_t len;
};

static unsigned long accepted;

static char big_byte(size_t i)
{
	return (char)('a' + (i * 7) % 26);
}

static void respond(int fd, int status, const char *extra, const char *body, size_t n, bool close_it)
{
	char head[512];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s%s\r\n", status, n,
			 extra ? extra : "", close_it ? "Connection: close\r\n" : "");
	if (write_all(fd, head, (size_t)h) == 0 && n)
		write_all(fd, body, n);
}

static void header_value(const char *hdrs, const char *end, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);

	out[0] = '\0';
	for (const char *p = hdrs; p && p < end; ) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			size_t n = MIN((size_t)(eol - v), outsz - 1);
			memcpy(out, v, n);
			out[n] = '\0';
			return;
		}
		p = eol + 2;
	}
}

/* Handle every complete request in c->buf. Returns -1 to close. */
static int serve(struct sconn *c, const char *big)
{
	while (!c->slow) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		char method[8], path[64], cl[32], echo[128], body[256];
		if (!end)
			return c->len > 65536 ? -1 : 0;
		size_t hlen = (size_t)(end - c->buf) + 4;
		if (sscanf(c->buf, "%7s %63s", method, path) != 2)
			return -1;
		header_value(c->buf, end, "Content-Length", cl, sizeof(cl));
		header_value(c->buf, end, "X-Echo", echo, sizeof(echo));
		size_t blen = cl[0] ? strtoul(cl, NULL, 10) : 0;
		if (blen > SBUF / 2)
			return -1;
		if (c->len < hlen + blen)
			return 0;
		bool close_it = false;
		if (!strcmp(path, "/ok")) {
			int n = snprintf(body, sizeof(body), "{\"method\":\"%s\",\"len\":%zu,\"echo\":\"%s\"}",
					 method, blen, echo);
			respond(c->fd, 200, "Content-Type: application/json\r\n", body, (size_t)n, false);
		} else if (!strcmp(path, "/500")) {
			respond(c->fd, 500, NULL, "boom", 4, false);
		} else if (!strcmp(path, "/slow")) {
			c->slow = true;
		} else if (!strcmp(path, "/retry")) {
			respond(c->fd, 503, "Retry-After: 7\r\n", "later", 5, false);
		} else if (!strcmp(path, "/retrydate")) {
			char extra[96];
			time_t t = time(NULL) + 60;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(extra, sizeof(extra), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
			respond(c->fd, 503, extra, "later", 5, false);
		} else if (!strcmp(path, "/big")) {
			respond(c->fd, 200, NULL, big, BIG_LEN, false);
		} else if (!strcmp(path, "/close")) {
			respond(c->fd, 200, NULL, "bye", 3, true);
			close_it = true;
		} else if (!strcmp(path, "/stats")) {
			int n = snprintf(body, sizeof(body), "%lu", accepted);
			respond(c->fd, 200, NULL, body, (size_t)n, false);
		} else {
			respond(c->fd, 404, NULL, "", 0, false);
		}
		memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
		c->len -= hlen + blen;
		if (close_it)
			return -1;
	}
	return 0;
}

static void server_run(int lfd)
{
	static struct pollfd pfd[MAX_CONNS + 1];
	static struct sconn conns[MAX_CONNS];
	unsigned n = 0;
	char *big = xmalloc(BIG_LEN);

	for (size_t i = 0; i < BIG_LEN; i++)
		big[i] = big_byte(i);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		pfd[0] = (struct pollfd){ .fd = lfd, .events = n < MAX_CONNS ? POLLIN : 0 };
		for (unsigned i = 0; i < n; i++)
			pfd[i + 1] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		if (poll(pfd, n + 1, -1) < 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			int fd = accept(lfd, NULL, NULL);
			if (fd >= 0) {
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				accepted++;
				conns[n++] = (struct sconn){ .fd = fd, .buf = xmalloc(SBUF) };
			}
		}
		for (unsigned i = 0; i < n; i++) {
			struct sconn *c = &conns[i];
			if (!pfd[i + 1].revents || pfd[i + 1].fd != c->fd)
				continue;
			ssize_t r = read(c->fd, c->buf + c->len, SBUF - c->len);
			if (r > 0) {
				c->len += (size_t)r;
				if (serve(c, big) == 0)
					continue;
			}
			close(c->fd);
			free(c->buf);
			conns[i] = conns[--n];	/* the moved one is polled next round */
			pfd[i + 1] = pfd[n + 1];
			i--;
		}
	}
}

static pid_t server_start(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(lfd >= 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(lfd, 1024) == 0);
	CHECK(getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
	*port = ntohs(a.sin_port);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		server_run(lfd);
		_exit(0);
	}
	close(lfd);
	return pid;
}

/* A port nothing listens on: bound, then closed. */
static uint16_t closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- client side -------------------------------------------------------- */

static struct loop loop;
static uint16_t port;
static char base[64];

struct got {
	bool done;
	int code, status;
	char *body;
	size_t body_len;
	uint64_t body_total;
	int64_t retry_after, total_us;
	char error[CURL_ERROR_SIZE];
};

static void got_done(const struct curlio_result *r, void *user)
{
	struct got *g = user;

	CHECK(!g->done);
	g->done = true;
	g->code = r->code;
	g->status = r->status;
	g->body = xstrndup(r->body, r->body_len);
	CHECK_EQ(strlen(r->body), r->body_len);	/* NUL-terminated */
	g->body_len = r->body_len;
	g->body_total = r->body_total;
	g->retry_after = r->retry_after_s;
	g->total_us = r->total_us;
	snprintf(g->error, sizeof(g->error), "%s", r->error);
	CHECK(r->code != 0 || r->error[0] == '\0');
	CHECK(r->code == 0 || r->error[0] != '\0');
}

/* One loop turn as an actor runs it. */
static void turn(struct curlio *c)
{
	int64_t dl = curlio_next_deadline_ns(c), now = mono_ns();
	int64_t ms = dl == INT64_MAX ? 1000 : dl <= now ? 0 : (dl - now + 999999) / 1000000;

	CHECK(loop_wait(&loop, MIN(ms, 1000)) >= 0);
	curlio_tick(c, mono_ns());
}

static void run_until_idle(struct curlio *c)
{
	int64_t give_up = mono_ns() + 60 * 1000000000LL;

	while (curlio_active(c)) {
		turn(c);
		CHECK(mono_ns() < give_up);
	}
}

static void fetch(struct curlio *c, enum curlio_method m, const char *path, const char *body,
		  unsigned timeout_ms, unsigned max_body, struct got *g)
{
	char url[128];
	const char *hdrs[] = { "X-Echo: hi", "Content-Type: text/plain" };
	struct curlio_req r = { .method = m, .url = url, .headers = hdrs, .nheaders = 2,
				.body = body, .body_len = body ? strlen(body) : 0,
				.timeout_ms = timeout_ms, .max_body = max_body,
				.done = got_done, .user = g };

	memset(g, 0, sizeof(*g));
	snprintf(url, sizeof(url), "%s%s", path[0] == '/' ? base : "", path);
	CHECK_EQ(curlio_start(c, &r), 0);
	run_until_idle(c);
	CHECK(g->done);
}

static unsigned long server_conns(struct curlio *c)
{
	struct got g;
	unsigned long n;

	fetch(c, CURLIO_GET, "/stats", NULL, 0, 0, &g);
	CHECK_EQ(g.status, 200);
	n = strtoul(g.body, NULL, 10);
	free(g.body);
	return n;
}

static void test_basics(struct curlio *c)
{
	struct got g;

	fetch(c, CURLIO_POST, "/ok", "hello", 0, 0, &g);
	CHECK_EQ(g.code, 0);
	CHECK_EQ(g.status, 200);
	CHECK_STR(g.body, "{\"method\":\"POST\",\"len\":5,\"echo\":\"hi\"}");
	CHECK_EQ(g.retry_after, -1);
	CHECK(g.total_us > 0);
	free(g.body);

	fetch(c, CURLIO_PUT, "/ok", "abc", 0, 0, &g);
	CHECK_STR(g.body, "{\"method\":\"PUT\",\"len\":3,\"echo\":\"hi\"}");
	free(g.body);
	fetch(c, CURLIO_GET, "/ok", NULL, 0, 0, &g);
	CHECK_STR(g.body, "{\"method\":\"GET\",\"len\":0,\"echo\":\"hi\"}");
	free(g.body);
	fetch(c, CURLIO_POST, "/ok", NULL, 0, 0, &g);	/* empty POST */
	CHECK_STR(g.body, "{\"method\":\"POST\",\"len\":0,\"echo\":\"hi\"}");
	free(g.body);

	fetch(c, CURLIO_POST, "/500", "x", 0, 0, &g);
	CHECK_EQ(g.code, 0);
	CHECK_EQ(g.status, 500);
	CHECK_STR(g.body, "boom");
	free(g.body);
	fetch(c, CURLIO_GET, "/nope", NULL, 0, 0, &g);
	CHECK_EQ(g.status, 404);
	free(g.body);

	fetch(c, CURLIO_POST, "/retry", "x", 0, 0, &g);
	CHECK_EQ(g.status, 503);
	CHECK_EQ(g.retry_after, 7);
	free(g.body);
	fetch(c, CURLIO_POST, "/retrydate", "x", 0, 0, &g);
	CHECK_EQ(g.status, 503);
	printf("Retry-After as HTTP-date (+60 s) parsed to %" PRId64 " s\n", g.retry_after);
	CHECK(g.retry_after >= 50 && g.retry_after <= 61);
	free(g.body);

	/* Truncated at max_body; the rest is read and discarded. */
	fetch(c, CURLIO_GET, "/big", NULL, 0, 65536, &g);
	CHECK_EQ(g.code, 0);
	CHECK_EQ(g.status, 200);
	CHECK_EQ(g.body_len, 65536);
	CHECK_EQ(g.body_total, BIG_LEN);
	for (size_t i = 0; i < g.body_len; i++)
		CHECK(g.body[i] == big_byte(i));
	free(g.body);
	fetch(c, CURLIO_GET, "/big", NULL, 0, 2u << 20, &g);
	CHECK_EQ(g.body_len, BIG_LEN);
	for (size_t i = 0; i < g.body_len; i++)
		CHECK(g.body[i] == big_byte(i));
	free(g.body);
	/* ... and the connection that carried it is still good. */
	fetch(c, CURLIO_POST, "/ok", "hello", 0, 0, &g);
	CHECK_EQ(g.status, 200);
	free(g.body);
}

static void test_errors(struct curlio *c)
{
	struct got g;
	char url[64];
	int64_t t0;

	/* Timeout: /slow never answers, so only our timer can end it. */
	t0 = mono_ns();
	fetch(c, CURLIO_POST, "/slow", "x", 300, 0, &g);
	int64_t ms = (mono_ns() - t0) / 1000000;
	printf("timeout 300 ms: reported after %" PRId64 " ms (curl: %" PRId64 " us): %s\n",
	       ms, g.total_us, g.error);
	CHECK_EQ(g.code, CURLE_OPERATION_TIMEDOUT);
	CHECK_EQ(g.status, 0);
	CHECK(ms >= 290 && ms < 10000);
	free(g.body);

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/ok", closed_port());
	fetch(c, CURLIO_POST, url, "x", 2000, 0, &g);
	printf("refused: code %d: %s\n", g.code, g.error);
	CHECK_EQ(g.code, CURLE_COULDNT_CONNECT);
	CHECK_EQ(g.status, 0);
	CHECK_EQ(g.retry_after, -1);
	free(g.body);

	fetch(c, CURLIO_GET, "ftp://127.0.0.1/x", NULL, 0, 0, &g);
	CHECK_EQ(g.code, CURLE_UNSUPPORTED_PROTOCOL);
	free(g.body);
	fetch(c, CURLIO_GET, "http://[::1", NULL, 0, 0, &g);
	CHECK(g.code != 0);
	free(g.body);

	/* Rejected up front: done is never called. */
	struct curlio_req r = { .method = CURLIO_POST, .url = base, .done = got_done, .user = &g };
	const char *bad_hdr[] = { "X-Evil: a\r\nX-Injected: b" };
	const char *no_colon[] = { "X-Nothing" };
	memset(&g, 0, sizeof(g));
	r.url = NULL;
	CHECK_EQ(curlio_start(c, &r), -EINVAL);
	r.url = base;
	r.done = NULL;
	CHECK_EQ(curlio_start(c, &r), -EINVAL);
	r.done = got_done;
	r.headers = bad_hdr;
	r.nheaders = 1;
	CHECK_EQ(curlio_start(c, &r), -EINVAL);
	r.headers = no_colon;
	CHECK_EQ(curlio_start(c, &r), -EINVAL);
	r.nheaders = CURLIO_MAX_HEADERS + 1;
	CHECK_EQ(curlio_start(c, &r), -EINVAL);
	r.nheaders = 0;
	r.method = CURLIO_GET;
	r.body = "x";
	r.body_len = 1;
	CHECK_EQ(curlio_start(c, &r), -EINVAL);
	r.method = CURLIO_POST;
	r.body_len = (2u << 20);	/* over the 1 MiB default */
	CHECK_EQ(curlio_start(c, &r), -EINVAL);
	r.body_len = 1;
	r.max_body = CURLIO_MAX_MAX_BODY + 1;
	CHECK_EQ(curlio_start(c, &r), -EINVAL);
	CHECK(!g.done);
	CHECK_EQ(curlio_active(c), 0);
}

/* Many requests, `inflight` at a time; each checks its own answer. */
struct many {
	struct curlio *c;
	const char *path;
	unsigned started, completed, total, inflight, errors;
	char *payload;
};

struct one {
	struct many *m;
	unsigned i;
};

static void many_start(struct many *m);

static void many_done(const struct curlio_result *r, void *user)
{
	struct one *o = user;
	struct many *m = o->m;
	char want[128];

	if (!strcmp(m->path, "/ok"))
		snprintf(want, sizeof(want), "{\"method\":\"POST\",\"len\":%u,\"echo\":\"%u\"}",
			 (o->i * 37) % 2000, o->i);
	else
		snprintf(want, sizeof(want), "bye");
	if (r->code != 0 || r->status != 200 || strcmp(r->body, want)) {
		if (m->errors++ < 5)
			fprintf(stderr, "request %u: code %d status %d body %s (%s)\n", o->i,
				r->code, r->status, r->body, r->error);
	}
	free(o);
	m->completed++;
	many_start(m);	/* from inside done, as the dispatcher will */
}

static void many_start(struct many *m)
{
	while (m->started < m->total && m->started - m->completed < m->inflight) {
		struct one *o = xmalloc(sizeof(*o));
		char url[96], echo[32];
		const char *hdrs[] = { echo };
		o->m = m;
		o->i = m->started++;
		snprintf(url, sizeof(url), "%s%s", base, m->path);
		snprintf(echo, sizeof(echo), "X-Echo: %u", o->i);
		struct curlio_req r = { .method = CURLIO_POST, .url = url, .headers = hdrs,
					.nheaders = 1, .body = m->payload,
					.body_len = (o->i * 37) % 2000, .done = many_done, .user = o };
		CHECK_EQ(curlio_start(m->c, &r), 0);
	}
}

static double run_many(struct curlio *c, const char *path, unsigned total, unsigned inflight)
{
	struct many m = { .c = c, .path = path, .total = total, .inflight = inflight };
	int64_t t0 = mono_ns();

	m.payload = xmalloc(2000);
	memset(m.payload, 'p', 2000);
	many_start(&m);
	run_until_idle(c);
	double secs = (double)(mono_ns() - t0) / 1e9;
	free(m.payload);
	CHECK_EQ(m.errors, 0);
	CHECK_EQ(m.completed, total);
	return total / secs;
}

static void test_many(struct curlio *c)
{
	unsigned long before = server_conns(c), after;

	run_many(c, "/ok", 1000, 64);
	after = server_conns(c);
	printf("1000 POSTs, 64 in flight: server accepted %lu connections\n", after - before);
	CHECK(after - before <= 128);	/* reused: at most ~one per concurrent transfer */

	/* The server closes each connection: curl closes its fd and often gets
	 * the same number back for the next connection while the old poll's
	 * cancellation is still in flight. */
	before = after;
	run_many(c, "/close", 300, 16);
	after = server_conns(c);
	printf("300 POSTs to /close, 16 in flight: %lu connections\n", after - before);
	/* Each idle connection of the previous run (at most 32 per host) can
	 * carry one of these; every other one needs a new connection. */
	CHECK(after - before >= 300 - 32);
}

/* Timeouts close connections whose polls are armed while new connections
 * open (and take the lowest free fd numbers) in the same turns: stale poll
 * completions for closed fds must never reach the new sockets. */
struct mix {
	struct curlio *c;
	unsigned started, completed, total, timeouts, errors;
};

static void mix_start(struct mix *m);

struct mixone {
	struct mix *m;
	unsigned i;
};

static void mixone_done(const struct curlio_result *r, void *user)
{
	struct mixone *o = user;
	struct mix *m = o->m;
	bool ok;

	switch (o->i % 4) {
	case 0:
		ok = r->code == CURLE_OPERATION_TIMEDOUT && r->status == 0;
		m->timeouts++;
		break;
	case 1:
		ok = r->code == 0 && r->status == 200 && !strcmp(r->body, "bye");
		break;
	default:
		ok = r->code == 0 && r->status == 200 && strstr(r->body, "\"len\":5,") != NULL;
		break;
	}
	if (!ok && m->errors++ < 5)
		fprintf(stderr, "mix %u: code %d status %d body %s (%s)\n", o->i, r->code,
			r->status, r->body, r->error);
	free(o);
	m->completed++;
	mix_start(m);
}

static void mix_start(struct mix *m)
{
	static const char *paths[] = { "/slow", "/close", "/ok", "/ok" };

	while (m->started < m->total && m->started - m->completed < 48) {
		struct mixone *o = xmalloc(sizeof(*o));
		char url[96];
		o->m = m;
		o->i = m->started++;
		snprintf(url, sizeof(url), "%s%s", base, paths[o->i % 4]);
		struct curlio_req r = { .method = CURLIO_POST, .url = url, .body = "hello",
					.body_len = 5, .done = mixone_done, .user = o,
					.timeout_ms = o->i % 4 ? 10000 : 20 + (o->i % 7) * 15 };
		CHECK_EQ(curlio_start(m->c, &r), 0);
	}
}

static void test_churn(struct curlio *c)
{
	struct mix m = { .c = c, .total = 600 };

	mix_start(&m);
	run_until_idle(c);
	printf("churn: %u requests, %u timed out, all answered correctly\n", m.completed, m.timeouts);
	CHECK_EQ(m.errors, 0);
	CHECK_EQ(m.completed, m.total);
	CHECK_EQ(m.timeouts, m.total / 4);
}

static void test_deny_private(void)
{
	struct curlio_config cfg = { .deny_private = true };
	struct curlio *c;
	struct got g;

	CHECK_EQ(curlio_init(&c, &loop, &cfg), 0);
	fetch(c, CURLIO_POST, "/ok", "x", 2000, 0, &g);
	printf("deny_private: code %d: %s\n", g.code, g.error);
	CHECK_EQ(g.code, CURLE_COULDNT_CONNECT);
	CHECK_STR(g.error, "refused: private address");
	free(g.body);

	static const char *refused[] = {
		"http://10.1.2.3/", "http://172.16.0.1/", "http://172.31.255.255/",
		"http://192.168.1.1/", "http://169.254.169.254/", "http://100.64.0.1/",
		"http://0.0.0.0/", "http://224.0.0.1/", "http://[::1]/", "http://[::]/",
		"http://[fe80::1]/", "http://[fd00::1]/", "http://[ff02::1]/",
		"http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/", "http://[64:ff9b::a00:1]/",
	};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		fetch(c, CURLIO_GET, refused[i], NULL, 2000, 0, &g);
		if (strcmp(g.error, "refused: private address"))
			fprintf(stderr, "%s: %s\n", refused[i], g.error);
		CHECK_STR(g.error, "refused: private address");
		free(g.body);
	}
	/* Tests talk only to loopback: that public addresses pass the check is
	 * not exercised here (it would send packets off this machine). */
	curlio_free(c);
}

static unsigned never_calls;

static void must_not_run(const struct curlio_result *r, void *user)
{
	(void)r;
	(void)user;
	never_calls++;
}

static void test_limits_and_free(void)
{
	struct curlio_config cfg = { .max_transfers = 40, .max_connections = 16 };
	struct curlio *c;
	char url[3][96];
	const char *paths[] = { "/slow", "/big", "/ok" };

	CHECK_EQ(curlio_init(&c, &loop, &cfg), 0);
	for (int k = 0; k < 3; k++)
		snprintf(url[k], sizeof(url[k]), "%s%s", base, paths[k]);
	for (int i = 0; i < 40; i++) {
		struct curlio_req r = { .method = CURLIO_GET, .url = url[i % 3],
					.done = must_not_run, .timeout_ms = 30000 };
		CHECK_EQ(curlio_start(c, &r), 0);
	}
	struct curlio_req r = { .method = CURLIO_GET, .url = url[0], .done = must_not_run };
	CHECK_EQ(curlio_start(c, &r), -EAGAIN);
	CHECK_EQ(curlio_active(c), 40);
	/* Let connections open and some polls get armed, but don't finish. */
	for (int i = 0; i < 3; i++) {
		CHECK(loop_wait(&loop, 0) >= 0);
		curlio_tick(c, mono_ns());
	}
	never_calls = 0;
	curlio_free(c);		/* ASan: nothing may leak; no callbacks */
	CHECK_EQ(never_calls, 0);
	CHECK(loop_wait(&loop, 0) >= 0);	/* the loop is still fine */
	curlio_free(NULL);
}

/* At most max_host_connections transfers per host run in curl; the rest
 * wait in curlio (FIFO) and run as slots free up, whatever the URL's
 * spelling of the same host; another host does not wait behind them. */
static void test_host_queue(void)
{
	struct curlio_config cfg = { .max_connections = 8, .max_host_connections = 2 };
	struct curlio *c;
	struct got g[7];
	char url[3][128];

	CHECK_EQ(curlio_init(&c, &loop, &cfg), 0);
	snprintf(url[0], sizeof(url[0]), "http://127.0.0.1:%u/slow", port);
	snprintf(url[1], sizeof(url[1]), "HTTP://u:p@127.0.0.1:%u/slow#x", port);
	snprintf(url[2], sizeof(url[2]), "http://localhost:%u/ok", port);
	memset(g, 0, sizeof(g));
	for (int i = 0; i < 6; i++) {
		struct curlio_req r = { .method = CURLIO_GET, .url = url[i % 2], .timeout_ms = 300,
					.done = got_done, .user = &g[i] };
		CHECK_EQ(curlio_start(c, &r), 0);
	}
	CHECK_EQ(curlio_active(c), 6);
	CHECK_EQ(curlio_waiting(c), 4);
	{
		struct curlio_req r = { .method = CURLIO_GET, .url = url[2], .done = got_done,
					.user = &g[6] };
		CHECK_EQ(curlio_start(c, &r), 0);
		CHECK_EQ(curlio_waiting(c), 4);
	}
	int64_t t0 = mono_ns();
	run_until_idle(c);
	for (int i = 0; i < 6; i++) {
		CHECK(g[i].done);
		CHECK_EQ(g[i].code, 28);	/* CURLE_OPERATION_TIMEDOUT */
		free(g[i].body);
	}
	CHECK_EQ(g[6].status, 200);
	free(g[6].body);
	/* three rounds of two: each waiting one got its own 300 ms */
	CHECK(mono_ns() - t0 >= 850 * 1000000LL);
	CHECK_EQ(curlio_waiting(c), 0);
	curlio_free(c);
}

/* CURLIO_BENCH=N [CURLIO_BENCH_INFLIGHT=K] [CURLIO_BENCH_CONNS=H]: N POSTs,
 * K in flight (64) over at most H connections (K). */
static int bench(unsigned n)
{
	struct curlio *c;
	const char *ki = getenv("CURLIO_BENCH_INFLIGHT"), *hc = getenv("CURLIO_BENCH_CONNS");
	unsigned k = ki ? (unsigned)atoi(ki) : 64, h = hc ? (unsigned)atoi(hc) : k;
	struct curlio_config cfg = { .max_connections = h, .max_host_connections = h };
	struct rusage u0, u1;

	CHECK_EQ(curlio_init(&c, &loop, &cfg), 0);
	unsigned long before = server_conns(c);
	getrusage(RUSAGE_SELF, &u0);
	double rps = run_many(c, "/ok", n, k);
	getrusage(RUSAGE_SELF, &u1);
	double cpu = (double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec + u1.ru_stime.tv_sec -
			      u0.ru_stime.tv_sec) +
		     (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec + u1.ru_stime.tv_usec -
			      u0.ru_stime.tv_usec) / 1e6;
	printf("bench: %u POSTs (0-2000 B bodies), %u in flight: %.0f requests/s over %lu "
	       "connections, client CPU %.1f us/request\n", n, k, rps, server_conns(c) - before,
	       cpu / n * 1e6);
	curlio_free(c);
	return T_PASS;
}

int main(void)
{
	struct curlio *c;
	pid_t pid;
	int r;

	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	pid = server_start(&port);	/* fork before io_uring and curl */
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
	if ((r = loop_init(&loop, 256)) < 0) {
		fprintf(stderr, "io_uring unavailable (%s): skip\n", strerror(-r));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return T_SKIP;
	}
	if (getenv("CURLIO_BENCH")) {
		r = bench((unsigned)strtoul(getenv("CURLIO_BENCH"), NULL, 10));
	} else {
		struct curlio_config bad = { .connect_timeout_ms = CURLIO_MAX_TIMEOUT_MS + 1 };
		CHECK_EQ(curlio_init(&c, &loop, &bad), -EINVAL);
		CHECK_EQ(curlio_init(&c, &loop, NULL), 0);
		CHECK_EQ(curlio_next_deadline_ns(c), INT64_MAX);
		test_basics(c);
		test_errors(c);
		test_many(c);
		test_churn(c);
		curlio_free(c);
		test_deny_private();
		test_limits_and_free();
		test_host_queue();
		r = T_PASS;
	}
	loop_fini(&loop);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return r;
}
