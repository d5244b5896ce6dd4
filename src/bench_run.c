/* bench_run.c - the engine of `jobring bench`: one thread, one io_uring loop.
 *
 * On the loop: K client connections (POST /jobs, then GET /jobs/{id} for the
 * crash check), R report connections (the provider's `running` and
 * `complete` to the callbackUrl), and our httpd serving the provider's
 * dispatch endpoint and the webhook receiver (bench_prov.c). Every
 * client connection is keep-alive
 * with one request in flight and at most one io_uring op (a send, then a
 * recv). Completions only record and queue; pump() starts the next requests
 * once per loop turn, so nothing recurses and a turn's sends go to the
 * kernel in one submit.
 *
 * Times are mono_ns(). The job's createdAt (wall-clock ms) is converted to
 * the monotonic clock with the offset taken at start; it has millisecond
 * resolution, so the waiting → dispatched hop starts at the middle of that
 * millisecond, clamped to [client send, client 2xx]. */
#include "bench_int.h"
#include "jobring/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RETRY_NS 100000000LL		/* a failed report is sent again after 100 ms */
#define RETRY_MAX 600			/* ... for at most about a minute */
#define PROGRESS_NS 250000000LL
#define SAMPLE_NS 5000000000LL
#define HOOK_GRACE_NS 10000000000LL	/* webhooks still missing this long after the last
					 * complete: give up on them */

/* ---- HTTP client connections ----------------------------------------------------- */

static int dial(const char *host, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, one = 1;

	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -EINVAL;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	/* blocking: io_uring polls it; a loopback connect does not wait */
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void conn_close(struct hconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_reset(&c->in);
}

static void conn_send(struct hconn *c)
{
	struct io_uring_sqe *sqe = loop_sqe(&c->b->loop, &c->op);
	io_uring_prep_send(sqe, c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
			   MSG_NOSIGNAL);
	c->receiving = 0;
}

static void conn_recv(struct hconn *c)
{
	struct io_uring_sqe *sqe;

	buf_reserve(&c->in, 16384);
	sqe = loop_sqe(&c->b->loop, &c->op);
	io_uring_prep_recv(sqe, c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
	c->receiving = 1;
}

/* Send c->out. A connect that fails is reported through a NOP completion,
 * so that the failure is handled like any other (never re-entrantly). */
static void conn_start(struct hconn *c, int64_t now)
{
	struct bench *b = c->b;

	c->busy = 1;
	c->out_off = 0;
	c->t_send = now;
	if (c->fd < 0) {
		int fd = c->is_report ? dial(b->cb_host, b->cb_port) : dial(b->host, b->port);
		if (fd < 0) {
			struct io_uring_sqe *sqe = loop_sqe(&b->loop, &c->op);
			io_uring_prep_nop(sqe);
			c->receiving = 2;	/* "this completion is a connect error" */
			c->connect_err = fd;
			return;
		}
		c->fd = fd;
	}
	conn_send(c);
}

/* Parse one response head + body at p[0..n): 1 complete (*total bytes, the
 * body at p + *hlen), 0 incomplete, -1 malformed or unsupported. */
static int parse_response(const char *p, size_t n, int *status, size_t *hlen, size_t *blen,
			  int *close_after)
{
	const char *end = memmem(p, n, "\r\n\r\n", 4), *l;
	uint64_t cl = 0;

	if (!end)
		return n > 65536 ? -1 : 0;
	if (end - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return -1;
	*status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	*close_after = p[7] == '0';
	*hlen = (size_t)(end + 4 - p);
	for (l = memchr(p, '\n', (size_t)(end - p)); l && l < end; l = memchr(l, '\n', (size_t)(end - l))) {
		l++;
		if (strncasecmp(l, "content-length:", 15) == 0) {
			cl = strtoull(l + 15, NULL, 10);
		} else if (strncasecmp(l, "connection:", 11) == 0) {
			const char *v = l + 11;
			while (*v == ' ')
				v++;
			if (strncasecmp(v, "close", 5) == 0)
				*close_after = 1;
		} else if (strncasecmp(l, "transfer-encoding:", 18) == 0) {
			return -1;	/* jobring always sends Content-Length */
		}
	}
	if (cl > BENCH_MAX_RESPONSE)
		return -1;
	*blen = (size_t)cl;
	return n >= *hlen + cl ? 1 : 0;
}

static void deliver(struct hconn *c, int status, const char *body, size_t len);

static void conn_done(struct hconn *c, int status, const char *body, size_t len)
{
	struct bench *b = c->b;

	c->busy = 0;
	b->t_last_event = mono_ns();
	deliver(c, status, body, len);
	if (c->is_report) {
		c->next_idle = b->idle_r;
		b->idle_r = c;
	} else {
		c->next_idle = b->idle_c;
		b->idle_c = c;
	}
}

/* A transport error (err: -errno, 0 for EOF, 1 for a malformed answer). The
 * first one of each side is noted: it explains a count in the result. */
static void conn_fail(struct hconn *c, int err)
{
	struct bench *b = c->b;
	int *seen = c->is_report ? &b->report_fail_seen : &b->client_fail_seen;

	if (!*seen && b->verifying >= 0) {
		*seen = 1;
		bench_note(b->res, "first %s transport error: %s", c->is_report ? "report" : "client",
			   err < 0 ? strerror(-err) : err ? "malformed answer" : "the server closed the connection");
	}
	conn_close(c);
	conn_done(c, 0, NULL, 0);
}

static void conn_cb(struct loop_op *op, int res, unsigned flags)
{
	struct hconn *c = (struct hconn *)op;
	size_t hlen, blen;
	int status, close_after, r;
	(void)flags;

	if (c->receiving == 2) {
		conn_fail(c, c->connect_err);
		return;
	}
	if (!c->receiving) {
		if (res < 0) {
			conn_fail(c, res);
			return;
		}
		c->out_off += (size_t)res;
		if (c->out_off < c->out.len)
			conn_send(c);
		else
			conn_recv(c);
		return;
	}
	if (res <= 0) {
		conn_fail(c, res);
		return;
	}
	buf_commit(&c->in, (size_t)res);
	r = parse_response(c->in.data, c->in.len, &status, &hlen, &blen, &close_after);
	if (r == 0) {
		conn_recv(c);
		return;
	}
	if (r < 0) {
		conn_fail(c, 1);
		return;
	}
	/* the body is NUL-terminated in place for the string scans, then dropped */
	{
		char saved = c->in.data[hlen + blen];
		c->in.data[hlen + blen] = '\0';
		conn_done(c, status, c->in.data + hlen, blen);
		c->in.data[hlen + blen] = saved;
	}
	buf_consume(&c->in, hlen + blen);
	if (close_after)
		conn_close(c);
}

static void conns_init(struct bench *b, struct hconn *arr, unsigned n, int is_report)
{
	for (unsigned i = 0; i < n; i++) {
		struct hconn *c = &arr[i];
		c->op.cb = conn_cb;
		c->b = b;
		c->fd = -1;
		c->is_report = is_report;
		buf_init(&c->out);
		buf_init(&c->in);
		buf_set_limit(&c->in, BENCH_MAX_RESPONSE + 65536);
		if (is_report) {
			c->next_idle = b->idle_r;
			b->idle_r = c;
		} else {
			c->next_idle = b->idle_c;
			b->idle_c = c;
		}
	}
}

/* ---- what the answers mean ----------------------------------------------------------- */

static void on_submit(struct bench *b, struct hconn *c, int status, const char *body)
{
	struct bench_result *res = b->res;
	struct bjob *j = &b->jobs[c->job];
	int64_t now = b->t_last_event;
	const char *p;

	b->answered++;
	if (status < 200 || status > 299) {
		if (status == 0) {
			res->errors++;
		} else {
			if (res->rejected++ == 0)
				bench_note(res, "submit refused: %d %.160s", status, body ? body : "");
		}
		return;
	}
	if (!(p = strstr(body, "\"id\":\""))) {
		if (res->rejected++ == 0)
			bench_note(res, "submit answer without an id: %.160s", body);
		return;
	}
	p += 6;
	size_t n = strcspn(p, "\"");
	if (n == 0 || n >= sizeof(j->id)) {
		res->rejected++;
		return;
	}
	memcpy(j->id, p, n);
	j->id[n] = '\0';
	j->acked = 1;
	j->t_ack = now;
	res->acked++;
	b->t_last_ack = now;
	bjob_record(b, j, BENCH_SUBMIT, now - c->t_send);
	if ((p = strstr(body, "\"createdAt\":"))) {
		int64_t created = strtoll(p + 12, NULL, 10) * 1000000 + 500000 - b->wall_off_ns;
		j->t_created = MAX(MIN(created, now), c->t_send);
	} else {
		j->t_created = c->t_send;
	}
	if (b->webhooks)
		strmap_put(&b->ids, j->id, j);
	bjob_dispatch_hop(b, j);
	bjob_settle(b, j);	/* in case the provider was faster than our 2xx */
}

static void on_get(struct bench *b, struct hconn *c, int status, const char *body)
{
	struct bjob *j = &b->jobs[c->job];

	b->verified++;
	if (status == 200 && strstr(body, "\"status\":\"complete\"")) {
		j->got = 1;
		b->res->complete_on_get++;
	} else if (b->get_bad++ == 0) {
		bench_note(b->res, "GET /jobs/%s: %d %.120s", j->id, status, body ? body : "");
	}
}

static void on_report(struct bench *b, struct hconn *c, int status, const char *body)
{
	struct brun *run = c->run;
	struct bjob *j = &b->jobs[run->job];
	int64_t now = b->t_last_event, lat = b->latency_ms * 1000000;

	c->run = NULL;
	if (status == 200) {
		int ignored = body && strstr(body, "\"ignored\"") != NULL;
		if (run->stage == RUN_RUNNING) {
			if (!j->t_run) {
				j->t_run = now;
				if (j->t_disp)
					bjob_record(b, j, BENCH_RUNNING, now - j->t_disp);
			}
			run->stage = RUN_TERMINAL;
			run->tries = 0;
			run->due = now + lat;
			bq_push(lat ? &b->delayed : &b->reports, run);
			return;
		}
		if (!ignored)
			j->ok_completes++;
		if (!j->terminal) {
			j->terminal = 1;
			j->t_done = now;
			b->terminal++;
			b->t_last_done = now;
			if (run->fail) {
				j->failed = 1;
				b->res->failed++;
			} else {
				b->res->completed++;
			}
			if (j->t_run)
				bjob_record(b, j, BENCH_COMPLETE, now - j->t_run - lat);
			bjob_hook_hop(b, j);
			bjob_settle(b, j);
		}
		free(run);
		return;
	}
	if ((status == 0 || status >= 500 || status == 429) && ++run->tries < RETRY_MAX) {
		run->due = now + RETRY_NS;
		bq_push(&b->retry, run);
		return;
	}
	if (b->report_errors++ == 0)
		bench_note(b->res, "a report was refused: %d %.160s", status, body ? body : "");
	free(run);
}

static void deliver(struct hconn *c, int status, const char *body, size_t len)
{
	struct bench *b = c->b;
	(void)len;

	if (b->verifying < 0) {		/* tearing down */
		free(c->run);
		c->run = NULL;
		return;
	}
	if (c->what == REQ_SUBMIT)
		on_submit(b, c, status, body);
	else if (c->what == REQ_GET)
		on_get(b, c, status, body);
	else
		on_report(b, c, status, body);
}

/* ---- starting requests ------------------------------------------------------------------ */

static void start_submit(struct bench *b, struct hconn *c, uint64_t i, int64_t now)
{
	struct bjob *j = &b->jobs[i];
	char body[128];
	int n;

	j->org = (uint16_t)(i % b->orgs);
	j->t_send = now;
	n = snprintf(body, sizeof(body), "{\"type\":\"%s\",\"params\":{\"i\":%llu}}", b->type,
		     (unsigned long long)i);
	buf_reset(&c->out);
	buf_printf(&c->out, "POST /jobs HTTP/1.1\r\nHost: %s:%u\r\n%s"
		   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		   b->host, b->port, b->org[j->org].auth, n, body);
	c->what = REQ_SUBMIT;
	c->job = (uint32_t)i;
	conn_start(c, now);
}

static void start_get(struct bench *b, struct hconn *c, uint64_t i, int64_t now)
{
	struct bjob *j = &b->jobs[i];

	buf_reset(&c->out);
	buf_printf(&c->out, "GET /jobs/%s HTTP/1.1\r\nHost: %s:%u\r\n%s\r\n", j->id, b->host,
		   b->port, b->org[j->org].auth);
	c->what = REQ_GET;
	c->job = (uint32_t)i;
	conn_start(c, now);
}

static void start_report(struct bench *b, struct hconn *c, struct brun *run, int64_t now)
{
	char body[256];
	int n;

	if (run->stage == RUN_RUNNING)
		n = snprintf(body, sizeof(body), "{\"event\":\"running\",\"attempt\":%u}", run->attempt);
	else if (run->fail)
		n = snprintf(body, sizeof(body), "{\"event\":\"failed\",\"attempt\":%u,\"error\":"
			     "{\"code\":\"BENCH_INJECTED\",\"message\":\"--fail-rate\"}}", run->attempt);
	else
		n = snprintf(body, sizeof(body), "{\"event\":\"complete\",\"attempt\":%u,\"output\":"
			     "{\"files\":[],\"data\":{}},\"computeMs\":%lld}", run->attempt,
			     (long long)b->latency_ms);
	buf_reset(&c->out);
	buf_printf(&c->out, "POST %s HTTP/1.1\r\nHost: %s:%u\r\nAuthorization: Bearer %s\r\n"
		   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		   run->path, b->cb_host, b->cb_port, run->token, n, body);
	c->what = REQ_REPORT;
	c->run = run;
	conn_start(c, now);
}

static int64_t submit_due(const struct bench *b, uint64_t i)
{
	return b->rate > 0 ? b->t0 + (int64_t)((double)i * 1e9 / b->rate) : 0;
}

static void pump(struct bench *b, int64_t now)
{
	struct hconn *c;

	while (b->delayed.head && b->delayed.head->due <= now)
		bq_push(&b->reports, bq_pop(&b->delayed));
	while (b->retry.head && b->retry.head->due <= now)
		bq_push(&b->reports, bq_pop(&b->retry));
	while (b->reports.head && (c = b->idle_r)) {
		b->idle_r = c->next_idle;
		start_report(b, c, bq_pop(&b->reports), now);
	}
	if (b->verifying > 0) {
		while (b->verify_next < b->n && (c = b->idle_c)) {
			uint64_t i = b->verify_next++;
			if (!b->jobs[i].acked)
				continue;
			b->idle_c = c->next_idle;
			start_get(b, c, i, now);
		}
		return;
	}
	while (b->next < b->n && (c = b->idle_c) && submit_due(b, b->next) <= now) {
		b->idle_c = c->next_idle;
		if (b->next == 0)
			b->t0 = now;
		start_submit(b, c, b->next++, now);
	}
}

/* ---- the run ----------------------------------------------------------------------------- */

static void progress(struct bench *b, int64_t now, int final)
{
	const struct bench_result *r = b->res;
	double frac = b->mode == MODE_SUBMIT ? (double)b->answered / (double)b->n
		       : (double)(r->completed + r->failed) / (double)b->n;
	double secs = (double)(now - b->t0) / 1e9;
	char bar[41];
	int fill = (int)(frac * 40);

	if (final) {
		fputs("\r\033[K", stderr);
		return;
	}
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = '\0';
	fprintf(stderr, "\r[%s] %3.0f%%  acked %llu/%llu  done %llu  hooks %llu  %.0f jobs/s\033[K",
		bar, frac * 100, (unsigned long long)r->acked, (unsigned long long)b->n,
		(unsigned long long)(r->completed + r->failed), (unsigned long long)r->webhooks,
		secs > 0 ? (double)(b->mode == MODE_SUBMIT ? r->acked : r->completed + r->failed) / secs
			 : 0);
}

static void sample(struct bench *b, int64_t now)
{
	struct bench_result *r = b->res;
	struct bench_sample *s;

	if (r->nsamples >= BENCH_MAX_SAMPLES)
		return;
	s = &r->samples[r->nsamples++];
	s->t_s = (double)(now - b->t0) / 1e9;
	s->acked = r->acked;
	s->p99_ns = hist_count(&b->win) ? hist_quantile(&b->win, 0.99) : 0;
	bsrv_rss(b, &s->rss_kb, &s->anon_kb);
	hist_reset(&b->win);
	if (!b->quiet) {
		char rss[64] = "n/a";
		if (s->rss_kb >= 0)
			snprintf(rss, sizeof(rss), "%.1f MiB (anon %.1f MiB)", (double)s->rss_kb / 1024,
				 (double)s->anon_kb / 1024);
		fprintf(stderr, "  [%6.1fs] acked %llu  done %llu  p99 send→complete %.2f ms  "
			"server RSS %s\n", s->t_s, (unsigned long long)r->acked,
			(unsigned long long)(r->completed + r->failed), (double)s->p99_ns / 1e6, rss);
	}
}

static void crash(struct bench *b)
{
	struct hconn *c;

	b->crashed = 1;
	b->res->killed_at = b->res->acked;
	if (!b->quiet)
		fprintf(stderr, "\njobring bench: kill -9 of the whole server at %llu acknowledged jobs\n",
			(unsigned long long)b->res->acked);
	bsrv_kill9(b);
	/* idle keep-alive connections point at the dead server */
	for (c = b->idle_c; c; c = c->next_idle)
		conn_close(c);
	for (c = b->idle_r; c; c = c->next_idle)
		conn_close(c);
	if (bsrv_restart(b) < 0)
		b->failed_run = 1;
	else if (!b->quiet)
		fprintf(stderr, "jobring bench: restarted on the same data dir\n");
}

/* 1 when the run is over (or cannot go on). */
static int finished(struct bench *b, int64_t now)
{
	struct bench_result *r = b->res;

	if (bench_interrupted) {
		bench_note(r, "interrupted");
		b->failed_run = 1;
		return 1;
	}
	if (b->failed_run)
		return 1;
	if (now - b->t_last_event > (int64_t)b->stall_s * 1000000000LL) {
		bench_note(r, "stalled: nothing happened for %d s (acked %llu, terminal %llu, "
			   "webhooks %llu)", b->stall_s, (unsigned long long)r->acked,
			   (unsigned long long)b->terminal, (unsigned long long)b->hooks_first);
		b->failed_run = 1;
		return 1;
	}
	if (b->answered < b->n)
		return 0;
	if (b->mode == MODE_SUBMIT)
		return 1;
	if (b->verifying > 0)
		return b->verified >= r->acked;
	if (b->acked_terminal < r->acked)
		return 0;
	if (b->webhooks && b->acked_hooked < b->acked_terminal) {
		if (now - MAX(b->t_last_done, b->t_last_hook) < HOOK_GRACE_NS)
			return 0;
		bench_note(r, "%llu webhooks never arrived",
			   (unsigned long long)(b->acked_terminal - b->acked_hooked));
	}
	if (b->mode == MODE_CRASH) {
		b->verifying = 1;
		b->t_last_event = now;
		return 0;
	}
	return 1;
}

static int64_t next_wait_ms(struct bench *b, int64_t now)
{
	int64_t due = now + 250000000LL;

	if (b->delayed.head)
		due = MIN(due, b->delayed.head->due);
	if (b->retry.head)
		due = MIN(due, b->retry.head->due);
	if (b->rate > 0 && b->next < b->n && b->idle_c)
		due = MIN(due, submit_due(b, b->next));
	if (b->http)
		due = MIN(due, httpd_next_deadline(b->http));
	return due <= now ? 0 : (due - now + 999999) / 1000000;
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void teardown(struct bench *b)
{
	unsigned busy;

	b->verifying = -1;
	for (int64_t end = mono_ns() + 3000000000LL;; loop_wait(&b->loop, 10)) {
		busy = 0;
		for (unsigned i = 0; i < b->conns; i++)
			if (b->cc[i].busy && ++busy && b->cc[i].fd >= 0)
				shutdown(b->cc[i].fd, SHUT_RDWR);
		for (unsigned i = 0; i < b->report_conns; i++)
			if (b->rc[i].busy && ++busy && b->rc[i].fd >= 0)
				shutdown(b->rc[i].fd, SHUT_RDWR);
		if (!busy || mono_ns() > end)
			break;
	}
	for (unsigned i = 0; i < b->conns; i++) {
		conn_close(&b->cc[i]);
		buf_free(&b->cc[i].out);
		buf_free(&b->cc[i].in);
	}
	for (unsigned i = 0; i < b->report_conns; i++) {
		conn_close(&b->rc[i]);
		buf_free(&b->rc[i].out);
		buf_free(&b->rc[i].in);
	}
	if (b->http)
		httpd_free(b->http);
	b->http = NULL;
	bq_free(&b->reports);
	bq_free(&b->delayed);
	bq_free(&b->retry);
	free(b->cc);
	free(b->rc);
	loop_fini(&b->loop);
}

int brun_engine(struct bench *b)
{
	struct bench_result *r = b->res;
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	b->wall_off_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - mono_ns();
	if ((rc = loop_init(&b->loop, 4096)) < 0) {
		fprintf(stderr, "jobring bench: io_uring: %s\n", strerror(-rc));
		return -1;
	}
	if (b->listen_fd >= 0) {
		struct httpd_config hc = {
			.listen_fd = b->listen_fd,
			.idle_timeout_ms = 600000,
			.max_body = 1 << 20,
			.server_name = "jobring-bench",
			.handler = bprov_handler,
			.arg = b,
		};
		if ((rc = httpd_init(&b->http, &b->loop, &hc)) < 0) {
			fprintf(stderr, "jobring bench: provider listener: %s\n", strerror(-rc));
			loop_fini(&b->loop);
			return -1;
		}
		b->listen_fd = -1;	/* the httpd owns it */
	}
	b->cc = xcalloc(b->conns, sizeof(*b->cc));
	b->rc = xcalloc(b->report_conns, sizeof(*b->rc));
	conns_init(b, b->cc, b->conns, 0);
	conns_init(b, b->rc, b->report_conns, 1);
	hist_init(&b->win);
	b->t0 = b->t_last_event = b->t_progress = b->t_sample = mono_ns();
	if (b->mode == MODE_CRASH) {
		b->rng = (uint64_t)b->t0 | 1;
		b->crash_at = b->n / 5 + rand_next(&b->rng) % (b->n * 3 / 5 + 1);
	}
	int tty = isatty(2) && !b->quiet && b->mode != MODE_SOAK;
	double cpu0 = bsrv_cpu_s(b), self0 = self_cpu_s();
	for (;;) {
		int64_t now = mono_ns();
		pump(b, now);
		if (b->crash_at && !b->crashed && r->acked >= b->crash_at) {
			crash(b);
			now = mono_ns();
		}
		if (tty && now - b->t_progress >= PROGRESS_NS) {
			b->t_progress = now;
			progress(b, now, 0);
		}
		if (b->mode == MODE_SOAK && now - b->t_sample >= SAMPLE_NS) {
			b->t_sample = now;
			sample(b, now);
		}
		if (finished(b, now))
			break;
		if ((rc = loop_wait(&b->loop, MIN(next_wait_ms(b, now), 250))) < 0 && rc != -EINTR) {
			fprintf(stderr, "jobring bench: io_uring wait: %s\n", strerror(-rc));
			b->failed_run = 1;
			break;
		}
		if (b->http)
			httpd_tick(b->http, mono_ns());
	}
	if (tty)
		progress(b, mono_ns(), 1);
	r->harness_cpu_s = self_cpu_s() - self0;
	r->server_cpu_s = cpu0 >= 0 && !b->crashed && bsrv_cpu_s(b) >= 0 ? bsrv_cpu_s(b) - cpu0 : -1;
	if (b->mode == MODE_SOAK)
		sample(b, mono_ns());
	r->submit_ns = b->t_last_ack > b->t0 ? b->t_last_ack - b->t0 : 0;
	if (b->mode == MODE_SUBMIT)
		r->elapsed_ns = r->submit_ns;
	else
		r->elapsed_ns = MAX(b->webhooks ? MAX(b->t_last_hook, b->t_last_done) : b->t_last_done,
				    b->t0) - b->t0;
	if (b->mode == MODE_CRASH) {
		for (uint64_t i = 0; i < b->n; i++) {
			const struct bjob *j = &b->jobs[i];
			if (j->acked && j->ok_completes > 1)
				r->duplicates++;
		}
		r->missing = r->acked - MIN(r->acked, r->complete_on_get);
	}
	if (b->bad_sigs)
		bench_note(r, "%llu dispatches had a bad signature", (unsigned long long)b->bad_sigs);
	teardown(b);
	return b->failed_run ? -1 : 0;
}
