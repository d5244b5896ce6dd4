/* cli_wait.c - `submit --wait`: follow a job until it is terminal, then
 * print its result.
 *
 * Two sources, one state: a small WebSocket client of our own (RFC 6455
 * over a plain socket) on GET /events/ws/job/{id}, which brings status and
 * progress as they happen, and GET /jobs/{id}. The socket is only an
 * accelerator: a GET is made right after it connects (events before the
 * subscription are not replayed with lastEventId 0) and every few seconds
 * while it is quiet, and whenever the socket cannot be had or drops,
 * polling every ~500 ms carries on alone. https servers are polled (this
 * client speaks no TLS). */
#include "cli_int.h"
#include "jobring/buf.h"
#include "jobring/crypto.h"
#include "jobring/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define POLL_MS 500		/* GET interval without a socket */
#define POLL_MAX_MS 5000	/* after 429s */
#define WS_SAFETY_MS 3000	/* GET interval while the socket is quiet */
#define WS_CONNECT_MS 3000
#define WS_HEAD_MAX 8192
#define WS_MAX_MSG (1u << 20)
#define TICK_MS 250		/* redraw of the elapsed time */
#define MAX_NET_FAILS 20	/* consecutive failed GETs before giving up */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ---- a WebSocket client ------------------------------------------------------------- */

struct ws {
	int fd;
	struct buf in;		/* bytes read, not yet parsed */
	struct buf msg;		/* the message being assembled */
	int msg_op;		/* its opcode, 0 when none */
};

static int64_t ms_now(void)
{
	return mono_ns() / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int64_t left = deadline - ms_now();
	int r;

	if (left < 0)
		left = 0;
	r = poll(&p, 1, (int)left);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

static int send_all(int fd, const void *p, size_t n, int64_t deadline)
{
	const char *s = p;
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read what is there into ws->in, waiting until deadline. 0, or -errno
 * (-ECONNRESET when the peer closed). */
static int ws_fill(struct ws *ws, int64_t deadline)
{
	int r = wait_fd(ws->fd, POLLIN, deadline);
	ssize_t n;

	if (r == -EINTR)
		return -ETIMEDOUT;	/* a signal: let the caller look at it */
	if (r < 0)
		return r;
	if ((r = buf_reserve(&ws->in, 16384)) < 0)
		return r;
	n = recv(ws->fd, ws->in.data + ws->in.len, 16384, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	buf_commit(&ws->in, (size_t)n);
	return 0;
}

/* One masked frame from the client. */
static int ws_send(struct ws *ws, int op, const void *p, size_t n)
{
	unsigned char h[14], mask[4], *f;
	size_t hl = 2;
	int r;

	h[0] = (unsigned char)(0x80 | op);
	if (n < 126) {
		h[1] = (unsigned char)(0x80 | n);
	} else if (n < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	rand_bytes(mask, 4);
	memcpy(h + hl, mask, 4);
	hl += 4;
	f = xmalloc(hl + n);
	memcpy(f, h, hl);
	for (size_t i = 0; i < n; i++)
		f[hl + i] = ((const unsigned char *)p)[i] ^ mask[i & 3];
	r = send_all(ws->fd, f, hl + n, ms_now() + WS_CONNECT_MS);
	free(f);
	return r;
}

static void ws_close(struct ws *ws)
{
	if (ws->fd >= 0)
		close(ws->fd);
	ws->fd = -1;
	buf_free(&ws->in);
	buf_free(&ws->msg);
}

/* Split base ("http://host[:port][/prefix]") into its parts. 0 or -EINVAL
 * (https, or something we cannot read). */
static int split_base(const char *base, char *host, size_t hsz, char *port, size_t psz,
		      char *authority, size_t asz, const char **prefix)
{
	const char *h = base + 7, *end;

	if (strncmp(base, "http://", 7) != 0)
		return -EINVAL;
	*prefix = h + strcspn(h, "/");
	snprintf(authority, asz, "%.*s", (int)(*prefix - h), h);
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || end > *prefix)
			return -EINVAL;
		snprintf(host, hsz, "%.*s", (int)(end - h - 1), h + 1);
		end++;
	} else {
		end = h + strcspn(h, ":/");
		snprintf(host, hsz, "%.*s", (int)(end - h), h);
	}
	if (*end == ':')
		snprintf(port, psz, "%.*s", (int)(*prefix - end - 1), end + 1);
	else
		snprintf(port, psz, "80");
	return host[0] && port[0] ? 0 : -EINVAL;
}

static int tcp_connect(const char *host, const char *port, int64_t deadline)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *a;
	int fd = -1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (a = res; a; a = a->ai_next) {
		int err = 0;
		socklen_t el = sizeof(err);
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if ((connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
		     (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
		      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : -ECONNREFUSED;
}

/* Connect and upgrade; 0 with ws ready, or -errno (ws closed). */
static int ws_open(struct cli *c, const char *id, struct ws *ws)
{
	char host[256], port[16], auth[300], req[2048], key[32], accept[CRYPTO_WS_ACCEPT_LEN + 1];
	unsigned char nonce[16];
	const char *prefix, *eoh;
	int64_t deadline = ms_now() + WS_CONNECT_MS;
	int r;

	memset(ws, 0, sizeof(*ws));
	ws->fd = -1;
	buf_init(&ws->in);
	buf_init(&ws->msg);
	buf_set_limit(&ws->in, WS_MAX_MSG + WS_HEAD_MAX);
	buf_set_limit(&ws->msg, WS_MAX_MSG);
	if (split_base(c->base, host, sizeof(host), port, sizeof(port), auth, sizeof(auth),
		       &prefix) < 0)
		return -EINVAL;
	rand_bytes(nonce, sizeof(nonce));
	base64_encode(nonce, sizeof(nonce), key, sizeof(key));
	crypto_ws_accept(key, strlen(key), accept);
	r = snprintf(req, sizeof(req),
		     "GET %s/events/ws/job/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
		     "Authorization: Bearer %s\r\nUser-Agent: jobring-cli/0.1.0\r\n\r\n",
		     prefix, id, auth, key, c->key);
	if (r < 0 || (size_t)r >= sizeof(req))
		return -E2BIG;
	if ((ws->fd = tcp_connect(host, port, deadline)) < 0) {
		r = ws->fd;
		ws_close(ws);
		return r;
	}
	if ((r = send_all(ws->fd, req, strlen(req), deadline)) < 0)
		goto fail;
	while (!(eoh = ws->in.data ? strstr(buf_cstr(&ws->in), "\r\n\r\n") : NULL)) {
		if (ws->in.len >= WS_HEAD_MAX) {
			r = -E2BIG;
			goto fail;
		}
		if ((r = ws_fill(ws, deadline)) < 0)
			goto fail;
	}
	{
		/* "HTTP/1.1 101 ..." and the right Sec-WebSocket-Accept */
		size_t hn = (size_t)(eoh - ws->in.data) + 4;
		char *head = xstrndup(ws->in.data, hn), *line, *save = NULL;
		int ok = strncmp(head, "HTTP/1.1 101", 12) == 0, acc = 0;
		for (line = strtok_r(head, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
			if (strncasecmp(line, "Sec-WebSocket-Accept:", 21) == 0) {
				char *v = line + 21;
				while (*v == ' ' || *v == '\t')
					v++;
				acc = strcmp(v, accept) == 0;
			}
		}
		free(head);
		buf_consume(&ws->in, hn);
		if (!ok || !acc) {
			r = -EPROTO;
			goto fail;
		}
	}
	{
		static const char init[] = "{\"type\":\"init\",\"lastEventId\":0}";
		if ((r = ws_send(ws, 1, init, sizeof(init) - 1)) < 0)
			goto fail;
	}
	return 0;
fail:
	ws_close(ws);
	return r;
}

/* The next text message, waiting until deadline: 1 with *msg (valid until
 * the next call), 0 at the deadline, -errno when the socket is done. */
static int ws_next(struct ws *ws, int64_t deadline, const char **msg, size_t *len)
{
	for (;;) {
		const unsigned char *p = (const unsigned char *)ws->in.data;
		size_t have = ws->in.len, hl = 2;
		uint64_t n;
		int r;

		if (have >= 2) {
			int fin = p[0] & 0x80, op = p[0] & 0x0f;
			if ((p[0] & 0x70) || (p[1] & 0x80))	/* no extensions; servers do not mask */
				return -EPROTO;
			n = p[1] & 0x7f;
			if (n == 126) {
				hl = 4;
				n = have >= 4 ? (uint64_t)p[2] << 8 | p[3] : 0;
			} else if (n == 127) {
				hl = 10;
				n = 0;
				for (int i = 0; i < 8 && have >= 10; i++)
					n = n << 8 | p[2 + i];
			}
			if (n > WS_MAX_MSG)
				return -EMSGSIZE;
			if (have >= hl && have - hl >= n) {
				const char *pl = (const char *)p + hl;
				if (op >= 8) {		/* control */
					if (!fin || n > 125)
						return -EPROTO;
					if (op == 8) {
						ws_send(ws, 8, pl, MIN(n, 2));
						return -ECONNRESET;
					}
					if (op == 9 && ws_send(ws, 10, pl, n) < 0)
						return -EPIPE;
					buf_consume(&ws->in, hl + n);
					continue;
				}
				if ((op == 0) != (ws->msg_op != 0) || (op != 0 && op != 1 && op != 2))
					return -EPROTO;
				if (op) {
					ws->msg_op = op;
					buf_reset(&ws->msg);
				}
				if (buf_append(&ws->msg, pl, n) < 0)
					return -EMSGSIZE;
				buf_consume(&ws->in, hl + n);
				if (!fin)
					continue;
				op = ws->msg_op;
				ws->msg_op = 0;
				if (op != 1)
					continue;	/* binary: not ours */
				*msg = buf_cstr(&ws->msg);
				*len = ws->msg.len;
				return 1;
			}
		}
		r = ws_fill(ws, deadline);
		if (r == -ETIMEDOUT)
			return 0;
		if (r < 0)
			return r;
	}
}

/* ---- following a job ---------------------------------------------------------------- */

struct follow {
	const char *id;
	char status[16], shown_status[16];
	char step[64], shown_step[64];
	double progress;
	int shown_pct;
	int64_t start;		/* ms, monotonic */
	int drawn;		/* a bar is on the terminal line */
};

static int terminal(const char *st)
{
	return !strcmp(st, "complete") || !strcmp(st, "failed") || !strcmp(st, "cancelled");
}

static void clear_bar(struct follow *f)
{
	if (f->drawn)
		fputs("\r\033[K", stderr);
	f->drawn = 0;
}

static void draw(const struct cli *c, struct follow *f)
{
	int64_t el = (ms_now() - f->start) / 1000;
	int pctv = (int)(f->progress * 100 + 0.5);
	char elapsed[32];

	pctv = pctv < 0 ? 0 : pctv > 100 ? 100 : pctv;
	if (!strcmp(f->status, "complete"))
		pctv = 100;
	if (el >= 3600)
		snprintf(elapsed, sizeof(elapsed), "%lld:%02lld:%02lld", (long long)(el / 3600),
			 (long long)(el / 60 % 60), (long long)(el % 60));
	else
		snprintf(elapsed, sizeof(elapsed), "%lld:%02lld", (long long)(el / 60),
			 (long long)(el % 60));
	if (c->tty) {
		struct winsize wsz;
		int cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &wsz) == 0 && wsz.ws_col ? wsz.ws_col : 80;
		int fixed = (int)strlen(f->id) + 12 + 2 + 5 + 2 + (int)strlen(elapsed) + 4;
		int bw = MIN(40, cols - fixed - 2 - (int)MIN(strlen(f->step), 20));
		char bar[48];
		if (bw < 10)
			bw = 0;
		for (int i = 0; i < bw; i++)
			bar[i] = i < bw * pctv / 100 ? '#' : '.';
		bar[bw] = '\0';
		fprintf(stderr, "\r\033[K%s  %-10s %s%s%s %3d%%  %s  %.20s", f->id, f->status,
			bw ? "[" : "", bar, bw ? "]" : "", pctv, elapsed, f->step);
		f->drawn = 1;
	} else if (!c->json && (strcmp(f->status, f->shown_status) || strcmp(f->step, f->shown_step) ||
				pctv >= f->shown_pct + 10 || (pctv == 100 && f->shown_pct < 100))) {
		fprintf(stderr, "%s: %s %d%%%s%s (%s)\n", f->id, f->status, pctv,
			f->step[0] ? " " : "", f->step, elapsed);
		snprintf(f->shown_status, sizeof(f->shown_status), "%s", f->status);
		snprintf(f->shown_step, sizeof(f->shown_step), "%s", f->step);
		f->shown_pct = pctv;
	}
	fflush(stderr);
}

static void take_job(struct follow *f, const cJSON *j)
{
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(j, "steps"), *s;

	snprintf(f->status, sizeof(f->status), "%s", cli_js(j, "status", f->status));
	f->progress = cli_jn(j, "progress", f->progress);
	cJSON_ArrayForEach(s, steps)
		snprintf(f->step, sizeof(f->step), "%s", cli_js(s, "name", ""));
}

/* A message from the socket: {"type","jobId","status","progress",...}, the
 * same keys also accepted inside "data". */
static void take_event(struct follow *f, const char *m, size_t n)
{
	cJSON *j = cJSON_ParseWithLength(m, n);
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
	const char *type = cli_js(j, "type", "");
	const char *job = cli_js(j, "jobId", cli_js(d, "jobId", NULL));
	const char *st = cli_js(j, "status", cli_js(d, "status", NULL));
	const char *step = cli_js(j, "step", cli_js(d, "step", NULL));
	double p = cli_jn(j, "progress", cli_jn(d, "progress", -1));

	if ((job && strcmp(job, f->id) != 0) ||
	    (strcmp(type, "job.status") && strcmp(type, "job.progress"))) {
		cJSON_Delete(j);
		return;		/* another job's, or not about jobs */
	}
	if (st && strlen(st) < sizeof(f->status))
		snprintf(f->status, sizeof(f->status), "%s", st);
	if (p >= 0 && p <= 1)
		f->progress = p;
	if (step)
		snprintf(f->step, sizeof(f->step), "%s", step);
	cJSON_Delete(j);
}

/* GET the job into *r (replacing it). 0 fresh, 1 try again later (said
 * nothing, or waits out a 429), CLI_FAIL after reporting. */
static int fetch(struct cli *c, struct follow *f, struct cli_resp *r, int *fails, int *interval)
{
	char p[128];

	cli_resp_free(r);
	snprintf(p, sizeof(p), "/jobs/%s", f->id);
	if (cli_request(c, "GET", p, NULL, CLI_AUTH_KEY, r) == 0) {
		*fails = 0;
		take_job(f, cli_data(r));
		return 0;
	}
	if (r->status == 429) {
		*interval = MIN(POLL_MAX_MS, *interval * 2);
		if (r->retry_after)
			*interval = MAX(*interval, (int)MIN(r->retry_after * 1000, POLL_MAX_MS * 6));
		return 1;
	}
	if ((r->status == 0 || r->status >= 500) && ++*fails < MAX_NET_FAILS)
		return 1;
	clear_bar(f);
	cli_report(c, r);
	if (r->status == 0 || r->status >= 500)
		fprintf(stderr, "jobring submit: gave up following %s; it goes on (jobring get %s)\n",
			f->id, f->id);
	return CLI_FAIL;
}

int cli_wait(struct cli *c, const char *id)
{
	struct follow f;
	struct cli_resp r;
	struct ws ws = { .fd = -1 };
	struct sigaction sa, old;
	const char *wt = cli_get(c, "wait-timeout");
	int64_t deadline = INT64_MAX, next_get, t;
	int rc, fails = 0, interval = POLL_MS, have_ws;

	memset(&f, 0, sizeof(f));
	memset(&r, 0, sizeof(r));
	f.id = id;
	f.start = ms_now();
	f.shown_pct = -100;
	snprintf(f.status, sizeof(f.status), "waiting");
	if (wt && parse_i64(wt, 1, INT32_MAX, &t) == 0)
		deadline = f.start + t * 1000;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old);

	have_ws = ws_open(c, id, &ws) == 0;
	if (!c->tty && !c->json)
		fprintf(stderr, "following %s %s\n", id, have_ws ? "over the realtime socket"
								  : "by polling GET /jobs/{id}");
	next_get = ms_now();
	for (;;) {
		if (ms_now() >= next_get) {
			rc = fetch(c, &f, &r, &fails, &interval);
			if (rc == CLI_FAIL)
				goto out;
			if (rc == 0 && terminal(f.status))
				break;
			next_get = ms_now() + (rc == 0 && have_ws ? WS_SAFETY_MS : interval);
		}
		draw(c, &f);
		if (interrupted) {
			clear_bar(&f);
			fprintf(stderr, "stopped waiting; %s goes on (jobring get %s, jobring cancel %s)\n",
				id, id, id);
			rc = 130;
			goto out;
		}
		if (ms_now() >= deadline) {
			clear_bar(&f);
			fprintf(stderr, "jobring submit: %s is still %s after --wait-timeout %s s; it goes "
				"on (jobring get %s)\n", id, f.status, wt, id);
			rc = CLI_FAIL;
			goto out;
		}
		int64_t until = MIN(MIN(next_get, deadline), ms_now() + TICK_MS);
		if (have_ws) {
			const char *m;
			size_t n;
			int got = ws_next(&ws, until, &m, &n);
			if (got > 0) {
				take_event(&f, m, n);
				if (terminal(f.status))
					next_get = ms_now();	/* the outcome, from a GET */
			} else if (got < 0) {
				ws_close(&ws);
				have_ws = 0;
				next_get = MIN(next_get, ms_now() + interval);
			}
		} else if (until > ms_now()) {
			poll(NULL, 0, (int)(until - ms_now()));
		}
	}
	draw(c, &f);		/* the final state stays on the screen */
	if (f.drawn)
		fputc('\n', stderr);
	f.drawn = 0;
	if (c->json) {
		cli_print_raw(&r);
		rc = strcmp(f.status, "complete") ? CLI_FAIL : CLI_OK;
	} else {
		rc = cli_print_result(c, cli_data(&r));
	}
out:
	sigaction(SIGINT, &old, NULL);
	if (ws.fd >= 0)
		ws_close(&ws);
	cli_resp_free(&r);
	return rc;
}

int cli_print_result(const struct cli *c, const cJSON *j)
{
	const char *st = cli_js(j, "status", "?"), *id = cli_js(j, "id", "?");
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "output");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error"), *fl;

	(void)c;
	if (!strcmp(st, "complete")) {
		const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
		int nfiles = 0;
		cJSON_ArrayForEach(fl, cJSON_GetObjectItemCaseSensitive(o, "files")) {
			printf("%s\n", cli_js(fl, "url", "?"));
			nfiles++;
		}
		if (!nfiles && data && !cJSON_IsNull(data)) {
			char *s = cJSON_Print(data);
			printf("%s\n", s);
			free(s);
		} else if (!nfiles) {
			fprintf(stderr, "%s complete (no output)\n", id);
		}
		return CLI_OK;
	}
	if (!strcmp(st, "failed")) {
		fprintf(stderr, "%s failed: %s: %s\n", id, cli_js(e, "code", "?"),
			cli_js(e, "message", ""));
		if (cli_js(e, "detail", NULL))
			fprintf(stderr, "  %s\n", cli_js(e, "detail", ""));
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "retryable")))
			fprintf(stderr, "  (retryable: jobring retry %s)\n", id);
		return CLI_FAIL;
	}
	fprintf(stderr, "%s was %s\n", id, st);
	return CLI_FAIL;
}
