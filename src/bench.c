/* bench.c - `jobring bench`: options, the server and the orgs it needs, the
 * run (bench_run.c), and the output (bench_out.c). See bench.h. */
#include "bench_int.h"
#include "jobring/util.h"

#include <cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t bench_interrupted;

static const char usage[] =
	"usage: jobring bench [options]\n"
	"\n"
	"Runs jobs through a jobring server and measures each hop of the lifecycle:\n"
	"submit ack, waiting→dispatched, dispatched→running, running→complete,\n"
	"complete→webhook. Without --url it starts its own server (storage.sync=full,\n"
	"a temporary data dir, free loopback ports); the harness is the provider and\n"
	"the webhook receiver, in process.\n"
	"\n"
	"  --mode MODE            lifecycle (default), submit, soak or crash\n"
	"  -n N                   jobs (default 10000; soak: rate x duration)\n"
	"  -c K                   client connections (default 64)\n"
	"  --orgs M               orgs the jobs are spread over (default 4)\n"
	"  --rate R               submit R jobs/s instead of as fast as possible\n"
	"  --duration SECONDS     soak: how long (default 60)\n"
	"  --provider-latency MS  the provider reports complete MS after running\n"
	"  --fail-rate F          the provider reports failed for this fraction\n"
	"  --report-conns R       provider → server connections (default 4K, >= 64)\n"
	"  --no-webhooks          do not measure the webhook hop\n"
	"  --sync full|none       storage.sync of the server we start (default full)\n"
	"  --json                 print the result as JSON (shape: include/jobring/bench.h)\n"
	"  --plot FILE            write an SVG of the latency percentiles per hop\n"
	"  --stall SECONDS        give up when nothing happens this long (default 30)\n"
	"  --quiet                no progress output\n"
	"  --keep                 keep the temporary dir (config, data, server.log)\n"
	"  --url URL              use a running server (http://HOST:PORT) instead;\n"
	"    --admin-token T      its admin token (required)\n"
	"    --provider-listen H:P  where our provider listens (its config must have\n"
	"                         a provider http://H:P/dispatch for the job type)\n"
	"    --provider-secret S  that provider's secret\n"
	"    --data DIR           its data dir (for RSS from DIR/jobring.run)\n"
	"  --type NAME            job type (default bench)\n"
	"  --plan NAME            plan of the orgs (default bench)\n"
	"\n"
	"modes: submit has no provider (the jobs stay waiting); soak prints p99 and\n"
	"the server's RSS every 5 s and says at the end whether they stayed flat;\n"
	"crash kill -9s the whole server at a random moment, restarts it on the same\n"
	"data dir, then checks that every acknowledged job completed exactly once\n"
	"(GET each job) and runs jobring check.\n";

static void on_signal(int sig)
{
	(void)sig;
	bench_interrupted = 1;
}

static int num(const char *opt, const char *s, double lo, double hi, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = s ? strtod(s, &end) : 0;
	if (!s || errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "jobring bench: %s needs a number in [%g, %g]\n", opt, lo, hi);
		return -1;
	}
	*ret = v;
	return 0;
}

static int hostport(const char *opt, const char *s, char *host, size_t hostsz, uint16_t *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	double p;

	if (!colon || (size_t)(colon - s) >= hostsz || colon == s ||
	    num(opt, colon + 1, 0, 65535, &p) < 0) {
		fprintf(stderr, "jobring bench: %s wants HOST:PORT\n", opt);
		return -1;
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int parse_args(struct bench *b, int argc, char **argv)
{
	int have_n = 0;
	double v;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && (next || (fprintf(stderr, \
			"jobring bench: %s needs a value\n", name), 0)) && ++i)
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 1;
		} else if (ARG("--mode")) {
			if (!strcmp(next, "lifecycle"))
				b->mode = MODE_LIFECYCLE;
			else if (!strcmp(next, "submit"))
				b->mode = MODE_SUBMIT;
			else if (!strcmp(next, "soak"))
				b->mode = MODE_SOAK;
			else if (!strcmp(next, "crash"))
				b->mode = MODE_CRASH;
			else {
				fprintf(stderr, "jobring bench: unknown mode '%s'\n", next);
				return -1;
			}
		} else if (ARG("-n")) {
			if (num(a, next, 1, BENCH_MAX_JOBS, &v) < 0)
				return -1;
			b->n = (uint64_t)v;
			have_n = 1;
		} else if (ARG("-c")) {
			if (num(a, next, 1, BENCH_MAX_CONNS, &v) < 0)
				return -1;
			b->conns = (unsigned)v;
		} else if (ARG("--orgs")) {
			if (num(a, next, 1, BENCH_MAX_ORGS, &v) < 0)
				return -1;
			b->orgs = (unsigned)v;
		} else if (ARG("--rate")) {
			if (num(a, next, 0.1, 1e7, &b->rate) < 0)
				return -1;
		} else if (ARG("--duration")) {
			if (num(a, next, 1, 7 * 86400, &b->duration_s) < 0)
				return -1;
		} else if (ARG("--provider-latency")) {
			if (num(a, next, 0, 3600000, &v) < 0)
				return -1;
			b->latency_ms = (int64_t)v;
		} else if (ARG("--fail-rate")) {
			if (num(a, next, 0, 1, &b->fail_rate) < 0)
				return -1;
		} else if (ARG("--report-conns")) {
			if (num(a, next, 1, BENCH_MAX_CONNS, &v) < 0)
				return -1;
			b->report_conns = (unsigned)v;
		} else if (ARG("--stall")) {
			if (num(a, next, 1, 86400, &v) < 0)
				return -1;
			b->stall_s = (int)v;
		} else if (ARG("--sync")) {
			if (strcmp(next, "full") && strcmp(next, "none")) {
				fprintf(stderr, "jobring bench: --sync is full or none\n");
				return -1;
			}
			b->sync_none = !strcmp(next, "none");
		} else if (ARG("--plot")) {
			b->plot = next;
		} else if (ARG("--url")) {
			b->url = next;
		} else if (ARG("--admin-token")) {
			b->admin_token = next;
		} else if (ARG("--provider-listen")) {
			if (hostport(a, next, b->provider_host, sizeof(b->provider_host),
				     &b->provider_port) < 0)
				return -1;
		} else if (ARG("--provider-secret")) {
			snprintf(b->secret, sizeof(b->secret), "%s", next);
		} else if (ARG("--data")) {
			b->data = next;
		} else if (ARG("--type")) {
			b->type = next;
		} else if (ARG("--plan")) {
			b->plan = next;
		} else if (strcmp(a, "--json") == 0) {
			b->json = 1;
		} else if (strcmp(a, "--quiet") == 0) {
			b->quiet = 1;
		} else if (strcmp(a, "--keep") == 0) {
			b->keep = 1;
		} else if (strcmp(a, "--no-webhooks") == 0) {
			b->webhooks = 0;
		} else {
			fprintf(stderr, "jobring bench: unknown option '%s' (try --help)\n", a);
			return -1;
		}
#undef ARG
	}
	if (b->mode == MODE_SOAK) {
		if (b->rate <= 0) {
			fprintf(stderr, "jobring bench: soak needs --rate\n");
			return -1;
		}
		if (!have_n)
			b->n = (uint64_t)MIN(b->rate * b->duration_s, (double)BENCH_MAX_JOBS);
	}
	if (b->mode == MODE_CRASH) {
		if (b->url) {
			fprintf(stderr, "jobring bench: crash mode starts its own server (no --url)\n");
			return -1;
		}
		b->webhooks = 0;	/* redelivery is the notifier's business, not measured */
		b->fail_rate = 0;
	}
	if (b->mode == MODE_SUBMIT)
		b->webhooks = 0;
	if (b->url && !b->admin_token) {
		fprintf(stderr, "jobring bench: --url needs --admin-token\n");
		return -1;
	}
	/* A provider reports for every job it runs at once; a small pool would
	 * queue reports in the harness and make it the bottleneck. Connections
	 * are opened only when the queue needs them. */
	if (!b->report_conns)
		b->report_conns = MIN(MAX(4 * b->conns, 64u), BENCH_MAX_CONNS);
	if ((uint64_t)b->orgs > b->n)
		b->orgs = (unsigned)b->n;
	if (!strcmp(b->type, "") || strlen(b->type) > 31 || strpbrk(b->type, "\"\\") ||
	    strlen(b->plan) > 31 || strpbrk(b->plan, "\"\\")) {
		fprintf(stderr, "jobring bench: bad --type or --plan\n");
		return -1;
	}
	return 0;
}

/* "http://HOST:PORT" (a trailing slash is fine). */
static int parse_url(struct bench *b)
{
	char hp[128];
	size_t n;

	if (strncmp(b->url, "http://", 7) != 0) {
		fprintf(stderr, "jobring bench: --url must be http://HOST:PORT\n");
		return -1;
	}
	n = strcspn(b->url + 7, "/");
	if (n >= sizeof(hp))
		return -1;
	memcpy(hp, b->url + 7, n);
	hp[n] = '\0';
	snprintf(b->admin, sizeof(b->admin), "%s", b->admin_token);
	return hostport("--url", hp, b->host, sizeof(b->host), &b->port);
}

/* One setup call that must succeed: the `data` object of the answer. */
static cJSON *setup_call(struct bench *b, const char *path, const char *auth, const char *body,
			 int *status)
{
	struct buf resp;
	cJSON *j, *d = NULL;
	int st;

	buf_init(&resp);
	st = bsrv_http(b, "POST", path, auth, body, &resp);
	if (status)
		*status = st;
	if (st >= 200 && st < 300 && (j = cJSON_Parse(buf_cstr(&resp)))) {
		d = cJSON_DetachItemFromObjectCaseSensitive(j, "data");
		cJSON_Delete(j);
	}
	if (!d && !status)
		fprintf(stderr, "jobring bench: POST %s: %d %.300s\n", path, st, buf_cstr(&resp));
	buf_free(&resp);
	return d;
}

static int setup_orgs(struct bench *b)
{
	char path[160], body[256];

	b->org = xcalloc(b->orgs, sizeof(*b->org));
	for (unsigned m = 0; m < b->orgs; m++) {
		struct borg *o = &b->org[m];
		const cJSON *v;
		cJSON *d;

		snprintf(body, sizeof(body), "{\"name\":\"bench-%u\",\"plan\":\"%s\"}", m, b->plan);
		if (!(d = setup_call(b, "/admin/orgs", b->admin, body, NULL)))
			return -1;
		v = cJSON_GetObjectItemCaseSensitive(d, "id");
		if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(o->id)) {
			cJSON_Delete(d);
			return -1;
		}
		snprintf(o->id, sizeof(o->id), "%s", v->valuestring);
		cJSON_Delete(d);
		snprintf(path, sizeof(path), "/admin/orgs/%s/credits", o->id);
		if (!(d = setup_call(b, path, b->admin, "{\"amount\":1000000000000000}", NULL)))
			return -1;
		cJSON_Delete(d);
		snprintf(path, sizeof(path), "/admin/orgs/%s/keys", o->id);
		if (!(d = setup_call(b, path, b->admin, "{\"name\":\"bench\",\"test\":false}", NULL)))
			return -1;
		v = cJSON_GetObjectItemCaseSensitive(d, "key");
		if (!cJSON_IsString(v) || strlen(v->valuestring) > 120) {
			cJSON_Delete(d);
			return -1;
		}
		snprintf(o->auth, sizeof(o->auth), "Authorization: Bearer %s\r\n", v->valuestring);
		cJSON_Delete(d);
	}
	return 0;
}

/* One endpoint per org for job.completed and job.failed; the hop is
 * skipped (with a note) when the server has no endpoint API yet. */
static void setup_webhooks(struct bench *b)
{
	char body[400];
	int st;

	snprintf(body, sizeof(body), "{\"name\":\"bench\",\"url\":\"http://%s:%u/webhook\","
		 "\"subscribedEvents\":[\"job.completed\",\"job.failed\"]}", b->provider_host,
		 b->provider_port);
	for (unsigned m = 0; m < b->orgs && b->webhooks; m++) {
		const char *key = b->org[m].auth + strlen("Authorization: Bearer ");
		char k[130];
		cJSON *d;
		snprintf(k, sizeof(k), "%.*s", (int)strcspn(key, "\r"), key);
		if ((d = setup_call(b, "/webhooks/endpoints", k, body, &st))) {
			cJSON_Delete(d);
			continue;
		}
		b->webhooks = 0;
		if (st == 404)
			bench_note(b->res, "the webhook endpoints API answered 404: "
				   "the complete → webhook hop is skipped");
		else
			bench_note(b->res, "creating a webhook endpoint failed (%d): "
				   "the complete → webhook hop is skipped", st);
	}
}

static int write_out(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "we");
	int ok;

	if (!f) {
		fprintf(stderr, "jobring bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ok = fwrite(b->data, 1, b->len, f) == b->len;
	ok &= fclose(f) == 0;
	return ok ? 0 : -1;
}

static void report(struct bench *b)
{
	struct buf out;

	buf_init(&out);
	if (b->json)
		bench_json(b->res, &out);
	else
		bench_table(b->res, &out);
	fwrite(out.data, 1, out.len, stdout);
	fflush(stdout);
	if (b->plot) {
		buf_reset(&out);
		if (bench_svg(b->res, 900, 480, &out) == 0 && write_out(b->plot, &out) == 0 &&
		    !b->quiet)
			fprintf(stderr, "jobring bench: wrote %s\n", b->plot);
	}
	buf_free(&out);
}

static const char *const mode_names[] = { "lifecycle", "submit", "soak", "crash" };

int bench_main(int argc, char **argv)
{
	struct bench *b = xcalloc(1, sizeof(*b));
	struct bench_result *r = xcalloc(1, sizeof(*r));
	struct sigaction sa;
	int rc = 1;

	b->n = 10000;
	b->conns = 64;
	b->orgs = 4;
	b->duration_s = 60;
	b->webhooks = 1;
	b->stall_s = 30;
	b->type = "bench";
	b->plan = "bench";
	b->listen_fd = -1;
	b->res = r;
	snprintf(b->provider_host, sizeof(b->provider_host), "127.0.0.1");
	if ((rc = parse_args(b, argc, argv)) != 0) {
		rc = rc > 0 ? 0 : 2;
		goto out;
	}
	rc = 1;
	if (!b->secret[0]) {
		uint8_t raw[16];
		rand_bytes(raw, sizeof(raw));
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(b->secret + 2 * i, 3, "%02x", raw[i]);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	r->mode = mode_names[b->mode];
	r->jobs = b->n;
	r->conns = b->conns;
	r->orgs = b->orgs;
	r->rate = b->rate;
	r->provider_latency_ms = b->latency_ms;
	r->fail_rate = b->fail_rate;
	r->crash = b->mode == MODE_CRASH;
	for (int i = 0; i < BENCH_NHOPS; i++)
		hist_init(&r->hop[i]);
	hist_init(&r->total);

	if (b->mode != MODE_SUBMIT) {
		int fd = net_listen(b->provider_host, b->provider_port, &b->provider_port);
		if (fd < 0) {
			fprintf(stderr, "jobring bench: cannot listen on %s:%u: %s\n",
				b->provider_host, b->provider_port, strerror(-fd));
			goto out;
		}
		b->listen_fd = fd;
	}
	if (b->url) {
		if (parse_url(b) < 0)
			goto out;
	} else {
		if (bsrv_start(b) < 0)
			goto out;
		r->sync = b->sync_none ? "none" : "full";
	}
	if (setup_orgs(b) < 0) {
		fprintf(stderr, "jobring bench: cannot set up the orgs\n");
		goto out;
	}
	if (b->webhooks)
		setup_webhooks(b);
	r->webhooks_on = b->webhooks;
	r->hop_on[BENCH_SUBMIT] = true;
	if (b->mode != MODE_SUBMIT)
		r->hop_on[BENCH_DISPATCH] = r->hop_on[BENCH_RUNNING] = r->hop_on[BENCH_COMPLETE] = true;
	r->hop_on[BENCH_WEBHOOK] = b->webhooks;
	b->jobs = xcalloc(b->n, sizeof(*b->jobs));
	strmap_init(&b->ids);
	if (!b->quiet && !b->json)
		fprintf(stderr, "jobring bench: %s, %llu jobs over %u connections and %u orgs "
			"against %s:%u%s\n", r->mode, (unsigned long long)b->n, b->conns, b->orgs,
			b->host, b->port, b->url ? "" : " (our own server)");
	rc = brun_engine(b) < 0 ? 1 : 0;
	if (b->mode == MODE_CRASH) {
		bsrv_stop(b);
		r->check_exit = bsrv_check(b);
		if (!bench_crash_ok(r))
			rc = 1;
	}
	if (r->acked == 0)
		rc = 1;
	report(b);
out:
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	bsrv_stop(b);
	if (rc != 0 && b->tmp[0] && !b->keep && !bench_interrupted) {
		char *log = NULL;
		size_t len = 0;
		if (read_file(b->logpath, &log, &len) == 0 && len)
			fprintf(stderr, "---- the server's log (tail) ----\n%s",
				log + (len > 4000 ? len - 4000 : 0));
		free(log);
	}
	bsrv_cleanup(b);
	strmap_free(&b->ids);
	free(b->jobs);
	free(b->org);
	free(b);
	free(r);
	return rc;
}
