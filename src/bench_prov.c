/* bench_prov.c - the provider and the webhook receiver of `jobring bench`
 * (served by our httpd on the harness's loop), and the bookkeeping of the
 * hops they share with the client side (bench_run.c).
 *
 * The provider follows DESIGN.md §6: it verifies X-Jobring-Signature,
 * answers 202 at once, then queues `running` and, after --provider-latency,
 * `complete` (or `failed` for the --fail-rate share of the jobs) for the
 * report connections. The job index travels in params.i, so a dispatch is
 * matched to its job even before the client has the 2xx. */
#include "bench_int.h"
#include "jobring/presign.h"
#include "jobring/util.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- queues and hops ----------------------------------------------------------------- */

void bq_push(struct bqueue *q, struct brun *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n++;
}

struct brun *bq_pop(struct bqueue *q)
{
	struct brun *r = q->head;
	if (r) {
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
	}
	return r;
}

void bq_free(struct bqueue *q)
{
	struct brun *r;
	while ((r = bq_pop(q)))
		free(r);
}

void bjob_record(struct bench *b, struct bjob *j, enum bench_hop h, int64_t ns)
{
	if (j->hop_done & (1u << h))
		return;
	j->hop_done |= (uint8_t)(1u << h);
	hist_record(&b->res->hop[h], (uint64_t)MAX(ns, 0));
}

/* A hop whose two ends may arrive in either order is recorded by whichever
 * end comes second. */
void bjob_dispatch_hop(struct bench *b, struct bjob *j)
{
	if (j->t_created && j->t_disp)
		bjob_record(b, j, BENCH_DISPATCH, j->t_disp - j->t_created);
}

void bjob_hook_hop(struct bench *b, struct bjob *j)
{
	if (j->t_done && j->t_hook)
		bjob_record(b, j, BENCH_WEBHOOK, j->t_hook - j->t_done);
}

/* Count a job once it is acknowledged and terminal (and once it also has its
 * webhook): the end-to-end numbers, whatever order the events came in. */
void bjob_settle(struct bench *b, struct bjob *j)
{
	if (!j->acked || !j->terminal)
		return;
	if (!(j->counted & 1)) {
		j->counted |= 1;
		b->acked_terminal++;
		hist_record(&b->win, (uint64_t)MAX(j->t_done - j->t_send, 0));
		if (!b->webhooks)
			hist_record(&b->res->total, (uint64_t)MAX(j->t_done - j->t_send, 0));
	}
	if (j->hooks && !(j->counted & 2)) {
		j->counted |= 2;
		b->acked_hooked++;
		hist_record(&b->res->total, (uint64_t)MAX(j->t_hook - j->t_send, 0));
	}
}

/* ---- the provider and the webhook receiver ------------------------------------------- */

static int url_origin(const char *url, char *host, size_t hostsz, uint16_t *port, const char **path)
{
	const char *h, *colon, *slash;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	h = url + 7;
	slash = strchr(h, '/');
	colon = memchr(h, ':', slash ? (size_t)(slash - h) : strlen(h));
	if (!slash || !colon || (size_t)(colon - h) >= hostsz)
		return -1;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	*port = (uint16_t)atoi(colon + 1);
	*path = slash;
	return *port ? 0 : -1;
}

static void on_dispatch(struct bench *b, struct httpd_req *req)
{
	char sig[SIG_HEADER_LEN + 8], host[64], answer[96];
	const cJSON *id, *att, *cb, *tok, *params, *idx;
	const char *path;
	size_t len;
	const char *v = httpd_header(req, "X-Jobring-Signature", &len);
	uint16_t port;
	cJSON *d;
	struct brun *run;
	struct bjob *j;
	uint64_t i;
	int64_t now = mono_ns();

	if (!v || len >= sizeof(sig) || !req->body) {
		b->bad_sigs++;
		httpd_error(req, 401, "UNAUTHORIZED", "missing signature");
		return;
	}
	memcpy(sig, v, len);
	sig[len] = '\0';
	if (sig_header_verify(b->secret, req->body, req->body_len, sig) != 0) {
		if (b->bad_sigs++ == 0)
			bench_note(b->res, "a dispatch had a bad X-Jobring-Signature");
		httpd_error(req, 401, "UNAUTHORIZED", "bad signature");
		return;
	}
	if (!(d = cJSON_ParseWithLength(req->body, req->body_len))) {
		httpd_error(req, 400, "VALIDATION_ERROR", "bad JSON");
		return;
	}
	id = cJSON_GetObjectItemCaseSensitive(d, "jobId");
	att = cJSON_GetObjectItemCaseSensitive(d, "attempt");
	cb = cJSON_GetObjectItemCaseSensitive(d, "callbackUrl");
	tok = cJSON_GetObjectItemCaseSensitive(d, "callbackToken");
	params = cJSON_GetObjectItemCaseSensitive(d, "params");
	idx = params ? cJSON_GetObjectItemCaseSensitive(params, "i") : NULL;
	if (!cJSON_IsString(id) || !cJSON_IsNumber(att) || !cJSON_IsString(cb) ||
	    !cJSON_IsString(tok) || !cJSON_IsNumber(idx) || idx->valuedouble < 0 ||
	    idx->valuedouble >= (double)b->n || strlen(tok->valuestring) >= BENCH_TOKEN_LEN ||
	    url_origin(cb->valuestring, host, sizeof(host), &port, &path) < 0 ||
	    strlen(path) >= BENCH_PATH_LEN) {
		cJSON_Delete(d);
		httpd_error(req, 400, "VALIDATION_ERROR", "not a dispatch of this bench run");
		return;
	}
	if (!b->cb_port) {
		snprintf(b->cb_host, sizeof(b->cb_host), "%s", host);
		b->cb_port = port;
	} else if (port != b->cb_port || strcmp(host, b->cb_host) != 0) {
		bench_note(b->res, "callbackUrl origin changed to %s:%u; reports keep going to %s:%u",
			   host, port, b->cb_host, b->cb_port);
	}
	i = (uint64_t)idx->valuedouble;
	j = &b->jobs[i];
	run = xcalloc(1, sizeof(*run));
	run->job = (uint32_t)i;
	run->attempt = (uint32_t)att->valuedouble;
	run->stage = RUN_RUNNING;
	/* a fixed fraction fails, spread evenly over the indexes */
	run->fail = b->fail_rate > 0 &&
		    (double)((i * 0x9E3779B97F4A7C15ull) >> 11) / 9007199254740992.0 < b->fail_rate;
	snprintf(run->token, sizeof(run->token), "%s", tok->valuestring);
	snprintf(run->path, sizeof(run->path), "%s", path);
	if (j->dispatches++ == 1)
		b->res->redispatched++;
	if (!j->t_disp) {
		j->t_disp = now;
		bjob_dispatch_hop(b, j);
	}
	b->t_last_event = now;
	len = (size_t)snprintf(answer, sizeof(answer), "{\"runId\":\"bench_%s_%u\"}", id->valuestring,
			       run->attempt);
	cJSON_Delete(d);
	httpd_respond(req, 202, "application/json", NULL, answer, MIN(len, sizeof(answer) - 1));
	bq_push(&b->reports, run);
}

static void on_webhook(struct bench *b, struct httpd_req *req)
{
	cJSON *d = req->body ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
	const cJSON *ev = d ? cJSON_GetObjectItemCaseSensitive(d, "event") : NULL;
	const cJSON *id = d ? cJSON_GetObjectItemCaseSensitive(d, "jobId") : NULL;
	struct bjob *j;

	if (cJSON_IsString(ev) && cJSON_IsString(id) &&
	    (!strcmp(ev->valuestring, "job.completed") || !strcmp(ev->valuestring, "job.failed")) &&
	    (j = strmap_get(&b->ids, id->valuestring))) {
		if (j->hooks++ == 0) {
			j->t_hook = mono_ns();
			b->hooks_first++;
			b->res->webhooks++;
			b->t_last_hook = b->t_last_event = j->t_hook;
			bjob_hook_hop(b, j);
			bjob_settle(b, j);
		}
	}
	cJSON_Delete(d);
	httpd_respond(req, 200, "application/json", NULL, "{\"ok\":true}", 11);
}

void bprov_handler(struct httpd *h, struct httpd_req *req, void *arg)
{
	struct bench *b = arg;
	int post = req->method_len == 4 && memcmp(req->method, "POST", 4) == 0;
	(void)h;

	if (post && req->path_len == 9 && memcmp(req->path, "/dispatch", 9) == 0)
		on_dispatch(b, req);
	else if (post && req->path_len == 8 && memcmp(req->path, "/webhook", 8) == 0)
		on_webhook(b, req);
	else if (post && req->path_len > 16 && memcmp(req->path, "/dispatch/", 10) == 0)
		httpd_respond(req, 200, "application/json", NULL, "{\"ok\":true}", 11);	/* cancel */
	else
		httpd_error(req, 404, "NOT_FOUND", "Route not found");
}
