/* dispatch.c - dispatch and cancel requests for providers. */
#include "jobring/dispatch.h"
#include "jobring/presign.h"
#include "jobring/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_TTL_MS (3600 * 1000)	/* beyond the job's own deadline */

int dispatch_upload_prefix(char *out, size_t outsz, const char *job_id, uint32_t attempt)
{
	int n = snprintf(out, outsz, "/blobs/out/%s/%u/", job_id, attempt);
	return n < 0 || (size_t)n >= outsz ? -ENOSPC : 0;
}

static int signed_url(const struct dispatch_ctx *c, char *out, size_t outsz, const char *method,
		      const char *path, int64_t exp)
{
	return presign_url(out, outsz, c->cfg->public_url, method, path, exp, c->signing_key,
			   strlen(c->signing_key));
}

/* inputs {name: {url}|{content}|{job}} → {name: {url}} the provider can GET */
static int write_inputs(const struct dispatch_ctx *c, struct jw *w, const struct job *j,
			int64_t exp)
{
	cJSON *in = j->inputs.n ? cJSON_ParseWithLength(j->inputs.p, j->inputs.n) : NULL;
	const cJSON *it;
	char path[600], url[2600];

	jw_obj_begin(w);
	cJSON_ArrayForEach(it, in) {
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "url");
		const cJSON *jb = cJSON_GetObjectItemCaseSensitive(it, "job");
		url[0] = '\0';
		if (cJSON_IsString(u)) {
			snprintf(url, sizeof(url), "%s", u->valuestring);
		} else if (cJSON_GetObjectItemCaseSensitive(it, "content")) {
			snprintf(path, sizeof(path), "/blobs/in/%s/%s", j->id, it->string);
			signed_url(c, url, sizeof(url), "GET", path, exp);
		} else if (cJSON_IsString(jb)) {
			/* a completed job's output: its first file, resolved by /dl */
			snprintf(path, sizeof(path), "/dl/%.40s/", jb->valuestring);
			signed_url(c, url, sizeof(url), "GET", path, exp);
		}
		jw_key(w, it->string);
		jw_obj_begin(w);
		jw_kv_str(w, "url", url);
		jw_obj_end(w);
	}
	jw_obj_end(w);
	cJSON_Delete(in);
	return 0;
}

static int body_json(const struct dispatch_ctx *c, const struct job *j, uint32_t attempt,
		     struct buf *body)
{
	char token[PRESIGN_TOKEN_LEN + 1], prefix[128], sig[PRESIGN_SIG_LEN + 1], url[2600];
	int64_t deadline = c->now + j->timeout_ms, exp = deadline + URL_TTL_MS;
	struct jw w;
	int r;

	if ((r = presign_callback_token(c->signing_key, strlen(c->signing_key), j->id, attempt,
					token)) < 0 ||
	    (r = dispatch_upload_prefix(prefix, sizeof(prefix), j->id, attempt)) < 0 ||
	    (r = presign_sign(c->signing_key, strlen(c->signing_key), "PUT", prefix, exp, sig)) < 0)
		return r;
	jw_init(&w, body);
	jw_obj_begin(&w);
	jw_kv_str(&w, "jobId", j->id);
	jw_kv_str(&w, "type", j->type);
	jw_key(&w, "params");
	if (j->params.n)
		jw_raw(&w, j->params.p, j->params.n);
	else
		jw_raw(&w, "{}", 2);
	jw_key(&w, "inputs");
	write_inputs(c, &w, j, exp);
	jw_key(&w, "output");
	jw_obj_begin(&w);
	snprintf(url, sizeof(url), "%s%s{path}?exp=%lld&sig=%s", c->cfg->public_url, prefix,
		 (long long)exp, sig);
	jw_kv_str(&w, "uploadUrl", url);
	jw_obj_end(&w);
	snprintf(url, sizeof(url), "%s/provider/jobs/%s/events", c->cfg->callback_url, j->id);
	jw_kv_str(&w, "callbackUrl", url);
	jw_kv_str(&w, "callbackToken", token);
	jw_kv_int(&w, "deadline", deadline);
	jw_kv_int(&w, "timeoutMs", j->timeout_ms);
	jw_kv_uint(&w, "attempt", attempt);
	jw_obj_end(&w);
	return jw_finish(&w);
}

/* {baseUrl}/{path…}: one trailing '/' of the base dropped. */
static void put_base(struct buf *out, const char *base)
{
	size_t n = strlen(base);
	buf_printf(out, "%.*s", (int)(n && base[n - 1] == '/' ? n - 1 : n), base);
}

/* A path segment, percent-encoded: a task id or a provider's run id cannot
 * add segments or a query to the URL. */
static void put_seg(struct buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~')
			buf_putc(out, (char)ch);
		else
			buf_printf(out, "%%%02X", ch);
	}
}

int dispatch_build(const struct dispatch_ctx *c, const struct provider_cfg *p,
		   const struct job *j, uint32_t attempt, struct buf *url, char hdrs[4][512],
		   unsigned *nhdrs, struct buf *body)
{
	int r;

	*nhdrs = 0;
	buf_reset(url);
	buf_reset(body);
	if (strcmp(p->kind, "trigger.dev") == 0) {
		struct buf inner;
		cJSON *opts = p->options ? cJSON_Duplicate(p->options, 1) : cJSON_CreateObject();
		char idem[80], *os;

		buf_init(&inner);
		if ((r = body_json(c, j, attempt, &inner)) < 0) {
			buf_free(&inner);
			cJSON_Delete(opts);
			return r;
		}
		snprintf(idem, sizeof(idem), "%s-%u", j->id, attempt);
		cJSON_DeleteItemFromObjectCaseSensitive(opts, "idempotencyKey");
		cJSON_AddStringToObject(opts, "idempotencyKey", idem);
		os = cJSON_PrintUnformatted(opts);
		buf_printf(body, "{\"payload\":%.*s,\"options\":%s}", (int)inner.len, inner.data, os);
		free(os);
		cJSON_Delete(opts);
		buf_free(&inner);
		/* Trigger.dev REST API: POST /api/v1/tasks/{taskIdentifier}/trigger,
		 * body {payload, context?, options}; answers {"id":"run_…"} */
		put_base(url, p->url);
		buf_puts(url, "/api/v1/tasks/");
		put_seg(url, p->task);
		buf_puts(url, "/trigger");
		snprintf(hdrs[(*nhdrs)++], 512, "Authorization: Bearer %s", p->secret);
	} else {
		char sig[SIG_HEADER_LEN + 1];
		if ((r = body_json(c, j, attempt, body)) < 0)
			return r;
		buf_puts(url, p->url);
		if (*p->secret && (r = sig_header_make(p->secret, body->data, body->len, sig)) == 0)
			snprintf(hdrs[(*nhdrs)++], 512, "X-Jobring-Signature: %s", sig);
	}
	snprintf(hdrs[(*nhdrs)++], 512, "Content-Type: application/json");
	snprintf(hdrs[(*nhdrs)++], 512, "X-Jobring-Attempt: %u", attempt);
	return 0;
}

/* Expand {jobId} and {runId} in a cancelUrl template. */
static void expand(struct buf *out, const char *tpl, const char *job, const char *run)
{
	for (const char *p = tpl; *p;) {
		if (strncmp(p, "{jobId}", 7) == 0) {
			buf_puts(out, job);
			p += 7;
		} else if (strncmp(p, "{runId}", 7) == 0) {
			buf_puts(out, run);
			p += 7;
		} else {
			buf_putc(out, *p++);
		}
	}
}

int dispatch_cancel_build(const struct dispatch_ctx *c, const struct provider_cfg *p,
			  const char *job_id, uint32_t attempt, const char *run_id,
			  struct buf *url, char hdrs[4][512], unsigned *nhdrs, struct buf *body)
{
	struct jw w;

	(void)c;
	*nhdrs = 0;
	buf_reset(url);
	buf_reset(body);
	jw_init(&w, body);
	jw_obj_begin(&w);
	jw_kv_str(&w, "jobId", job_id);
	jw_kv_uint(&w, "attempt", attempt);
	jw_kv_str(&w, "runId", run_id);
	jw_obj_end(&w);
	if (strcmp(p->kind, "trigger.dev") == 0) {
		if (!*run_id)
			return -EINVAL;
		/* POST /api/v2/runs/{runId}/cancel (no body is read) */
		put_base(url, p->url);
		buf_puts(url, "/api/v2/runs/");
		put_seg(url, run_id);
		buf_puts(url, "/cancel");
		snprintf(hdrs[(*nhdrs)++], 512, "Authorization: Bearer %s", p->secret);
	} else {
		char sig[SIG_HEADER_LEN + 1];
		if (p->cancel_url)
			expand(url, p->cancel_url, job_id, run_id);
		else
			buf_printf(url, "%s/%s/cancel", p->url, job_id);
		if (*p->secret && sig_header_make(p->secret, body->data, body->len, sig) == 0)
			snprintf(hdrs[(*nhdrs)++], 512, "X-Jobring-Signature: %s", sig);
	}
	snprintf(hdrs[(*nhdrs)++], 512, "Content-Type: application/json");
	return 0;
}

void dispatch_parse_run_id(const char *body, size_t len, char *out, size_t outsz)
{
	cJSON *j = len ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *r = j ? cJSON_GetObjectItemCaseSensitive(j, "runId") : NULL;

	if (!cJSON_IsString(r) && j)
		r = cJSON_GetObjectItemCaseSensitive(j, "id");
	out[0] = '\0';
	if (cJSON_IsString(r) && strlen(r->valuestring) < outsz && !strpbrk(r->valuestring, "\r\n"))
		snprintf(out, outsz, "%s", r->valuestring);
	cJSON_Delete(j);
}

int64_t dispatch_backoff_ms(const struct config *cfg, unsigned tries, uint64_t *rng)
{
	int64_t d = cfg->dispatch.backoff_ms;

	for (unsigned i = 1; i < tries && d < cfg->dispatch.backoff_max_ms; i++)
		d *= 2;
	if (d > cfg->dispatch.backoff_max_ms)
		d = cfg->dispatch.backoff_max_ms;
	return d + (int64_t)(rand_next(rng) % (uint64_t)(d / 4 + 1));
}
