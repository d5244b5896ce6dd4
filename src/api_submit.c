/* api_submit.c - POST /jobs: the gate (auth, rate limit, plan, queue limit,
 * credits, schema, inputs), checked before any write transaction, and the
 * turn's checked submissions written together at its end. */
#include "api_int.h"
#include "jobring/lifecycle.h"
#include "jobring/schema.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_INPUTS 32
#define MAX_INLINE_CONTENT 65536

static int input_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static int url_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 8 && n <= 4096 &&
	       (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) &&
	       !strpbrk(s, " \t\r\n");
}

/* Normalise inputs into {name: {url}|{content}|{job}}. Writes a one-line
 * problem into why (path + message) and returns -1 when they are bad. */
static cJSON *normalise_inputs(const cJSON *in, char *path, size_t pathsz, char *why, size_t whysz)
{
	cJSON *out = cJSON_CreateObject();
	const cJSON *it;
	int n = 0;

	if (!in)
		return out;
	if (!cJSON_IsObject(in)) {
		snprintf(path, pathsz, "inputs");
		snprintf(why, whysz, "must be an object of name → source");
		goto bad;
	}
	cJSON_ArrayForEach(it, in) {
		cJSON *src = cJSON_CreateObject();
		snprintf(path, pathsz, "%.200s", it->string);
		cJSON_AddItemToObject(out, it->string, src);
		if (++n > MAX_INPUTS) {
			snprintf(why, whysz, "at most %d inputs", MAX_INPUTS);
			goto bad;
		}
		if (!input_name_ok(it->string)) {
			snprintf(why, whysz, "input names are file names: letters, digits, . _ - (max 128)");
			goto bad;
		}
		if (cJSON_IsString(it)) {
			if (!url_ok(it->valuestring)) {
				snprintf(why, whysz, "must be an http(s) URL");
				goto bad;
			}
			cJSON_AddStringToObject(src, "url", it->valuestring);
			continue;
		}
		if (!cJSON_IsObject(it) || cJSON_GetArraySize(it) != 1) {
			snprintf(why, whysz, "must be a URL, {url}, {content} or {job}");
			goto bad;
		}
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "url");
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
		const cJSON *j = cJSON_GetObjectItemCaseSensitive(it, "job");
		if (u) {
			if (!cJSON_IsString(u) || !url_ok(u->valuestring)) {
				snprintf(why, whysz, "url must be an http(s) URL");
				goto bad;
			}
			cJSON_AddStringToObject(src, "url", u->valuestring);
		} else if (c) {
			if (!cJSON_IsString(c) || strlen(c->valuestring) > MAX_INLINE_CONTENT) {
				snprintf(why, whysz, "content must be text of at most 64 KB");
				goto bad;
			}
			cJSON_AddStringToObject(src, "content", c->valuestring);
		} else if (j) {
			if (!cJSON_IsString(j) || strncmp(j->valuestring, "job_", 4) != 0 ||
			    strlen(j->valuestring) > 40) {
				snprintf(why, whysz, "job must be a job id (job_…)");
				goto bad;
			}
			cJSON_AddStringToObject(src, "job", j->valuestring);
		} else {
			snprintf(why, whysz, "must be a URL, {url}, {content} or {job}");
			goto bad;
		}
	}
	return out;
bad:
	cJSON_Delete(out);
	return NULL;
}

static void validation_error(struct httpd_req *req, MDB_txn *child, const char *path,
			     const char *message)
{
	cJSON *d = cJSON_CreateArray(), *e = cJSON_CreateObject(), *p = cJSON_CreateArray();
	char *s;

	cJSON_AddItemToArray(p, cJSON_CreateString(path));
	cJSON_AddItemToObject(e, "path", p);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddItemToArray(d, e);
	s = cJSON_PrintUnformatted(d);
	store_abort(child);
	api_err(req, 400, "VALIDATION_ERROR", message, s);
	free(s);
	cJSON_Delete(d);
}

static int idem_lookup(struct api *api, MDB_txn *t, const char *org, const char *key,
		       char *job_out)
{
	unsigned char k[ORG_ID_MAX + 1 + MAX_IDEM_KEY];
	size_t on = strlen(org), kn = strlen(key);
	MDB_val v;
	int r;

	memcpy(k, org, on);
	k[on] = 0;
	memcpy(k + on + 1, key, kn);
	if ((r = store_get(api->store, t, DB_IDEM, k, on + 1 + kn, &v)) < 0)
		return r;
	snprintf(job_out, 32, "%.*s", (int)MIN(v.mv_size, 31), (const char *)v.mv_data);
	return 0;
}

/* An idempotent replay: the answer is the first job, whatever the payload;
 * answered after the commit (the first job may be in this batch). Reads
 * only, in the turn's write txn t. */
static void replay(struct api *api, struct httpd_req *req, MDB_txn *t, const char *first,
		   const char *key)
{
	struct job fj;
	int r;

	if ((r = job_get(api->store, t, first, &fj)) < 0) {
		api_store_error(api, NULL, req, r);
		return;
	}
	if (fj.status == JOB_FAILED && strcmp(fj.error_code, "DISPATCH_EXHAUSTED") == 0) {
		char d[96], m[400];
		snprintf(d, sizeof(d), "{\"jobId\":\"%s\"}", fj.id);
		snprintf(m, sizeof(m), "Idempotency key \"%.200s\" is already bound to job %s, "
			 "which failed with a retryable error. Retry with a new "
			 "idempotency key", key, fj.id);
		api_err(req, 409, "CONFLICT", m, d);
		return;
	}
	api_job_data(api, &fj, &api->scratch, 1);
	api_answer_later(api, req, 200, &api->scratch, NULL);
}

/* The gate's org checks (queue limit, credits) against o. 0, or answered. */
static int org_room(struct httpd_req *req, const struct auth *a, const struct org_rec *o,
		    int64_t hold)
{
	if (o->n_waiting + o->n_active >= (uint32_t)a->plan->queue_limit) {
		api_err(req, 429, "QUEUE_FULL", "Too many unfinished jobs for your plan's queue limit",
			NULL);
		return -1;
	}
	if (!a->test && o->balance - o->held < hold) {
		api_err(req, 402, "INSUFFICIENT_CREDITS", "Not enough credits for this job", NULL);
		return -1;
	}
	return 0;
}

static void submit_free(struct api_submit *q)
{
	free(q->inputs);
	free(q->params);
	free(q->callback);
}

/* Write one checked submission in the turn's write transaction: the
 * idempotency key and the org's room are checked again there (they may
 * have changed since the read snapshot, or earlier in this batch). No
 * nested transaction (LMDB's costs ~3 MB of bookkeeping each, and ~15%
 * of submit-only throughput): everything before lc_create only reads, and
 * a failed lc_create aborts the turn's transaction with every answer in it
 * (none was sent: they wait for the commit). */
static void submit_apply(struct api *api, struct api_submit *q)
{
	struct org_rec o;
	struct auth a = { .plan = q->plan, .test = q->test };
	char first[32];
	MDB_txn *t;
	int r;

	if ((r = api_wtxn(api, &t)) < 0) {
		api_store_error(api, NULL, q->req, r);
		return;
	}
	if (q->idem[0] && idem_lookup(api, t, q->j.org, q->idem, first) == 0) {
		replay(api, q->req, t, first, q->idem);
		return;
	}
	if ((r = org_get(api->store, t, q->j.org, &o)) < 0) {
		api_store_error(api, NULL, q->req, r);
		return;
	}
	if (org_room(q->req, &a, &o, q->j.hold) < 0)
		return;
	q->j.created_at = now_ms();
	if ((r = lc_create(api->store, t, &q->j)) < 0) {
		api_wabort(api, r);
		api_store_error(api, NULL, q->req, r);
		return;
	}
	{
		struct msg m;
		api_msg_job(&m, MSG_JOB_WAITING, &q->j);
		m.priority = (int8_t)MAX(-100, MIN(100, q->plan->priority));
		api_post(api, ACTOR_DISPATCHER, &m);
	}
	api_job_data(api, &q->j, &api->scratch, 0);
	api_answer_later(api, q->req, 201, &api->scratch, NULL);
	api->pending[api->npending - 1].submit = 1;
}

void api_submits_apply(struct api *api)
{
	for (size_t i = 0; i < api->nsubmits; i++) {
		submit_apply(api, &api->submits[i]);
		submit_free(&api->submits[i]);
	}
	api->nsubmits = 0;
}

void api_submits_free(struct api *api)
{
	for (size_t i = 0; i < api->nsubmits; i++)
		submit_free(&api->submits[i]);
	free(api->submits);
	api->submits = NULL;
	api->nsubmits = api->capsubmits = 0;
}

/* POST /jobs. Everything that needs no consistent view of the store (the
 * body, the plan, the schema, the inputs) is checked before the write
 * transaction begins: that transaction holds the one LMDB writer lock every
 * actor shares. The gate's order is kept: the org checks run first against
 * the read snapshot (in the gate's order), then again inside the write
 * transaction, which is what decides. The writes of a turn's submissions
 * happen together at its end (api_submits_apply), so the lock is not held
 * while later requests of the same turn are parsed and validated. */
void api_submit(struct api *api, struct httpd_req *req)
{
	struct auth a;
	MDB_txn *rt = NULL, *t = NULL;
	cJSON *body = NULL, *inputs = NULL, *params = NULL;
	const cJSON *type_j, *idem_j, *cb_j, *params_j;
	const struct jobtype_cfg *type;
	struct schema_errors errs;
	struct job j;
	char path[256], why[256], first[32];
	char *inputs_s = NULL, *params_s = NULL, *cb_s = NULL;
	int64_t timeout_s, hold;
	int r;

	/* 1. auth, 2. rate limit */
	if ((r = store_begin(api->store, 1, &rt)) < 0) {
		api_store_error(api, NULL, req, r);
		return;
	}
	if (api_auth(api, req, rt, &a) < 0 || api_rate(api, req, &a) < 0)
		goto out;
	if (!(body = api_body_json(req)))
		goto out;
	{
		static const char *const known[] = { "type", "inputs", "params", "idempotencyKey",
						     "callback", "metadata", NULL };
		const cJSON *it;
		cJSON_ArrayForEach(it, body) {
			int ok = 0;
			for (const char *const *k = known; *k; k++)
				ok |= strcmp(*k, it->string) == 0;
			if (!ok) {
				validation_error(req, NULL, it->string, "is not a known field");
				goto out;
			}
		}
	}
	type_j = cJSON_GetObjectItemCaseSensitive(body, "type");
	if (!cJSON_IsString(type_j)) {
		validation_error(req, NULL, "type", "is required and must be a string");
		goto out;
	}
	type = config_type(api->cfg, strcmp(type_j->valuestring, "raw.ffmpeg") == 0
				     ? "ffmpeg" : type_j->valuestring);
	if (!type) {
		api_err(req, 400, "INVALID_JOB_TYPE", "Unknown job type", NULL);
		goto out;
	}
	idem_j = cJSON_GetObjectItemCaseSensitive(body, "idempotencyKey");
	if (idem_j && !cJSON_IsNull(idem_j) &&
	    (!cJSON_IsString(idem_j) || !*idem_j->valuestring ||
	     strlen(idem_j->valuestring) > MAX_IDEM_KEY)) {
		validation_error(req, NULL, "idempotencyKey", "must be a string of 1 to 255 characters");
		goto out;
	}
	if (idem_j && !cJSON_IsString(idem_j))
		idem_j = NULL;

	/* An idempotent replay returns the first job, whatever the payload. */
	if (idem_j && idem_lookup(api, rt, a.org.id, idem_j->valuestring, first) == 0) {
		store_abort(rt);
		rt = NULL;
		if ((r = api_wtxn(api, &t)) < 0) {
			api_store_error(api, NULL, req, r);
			goto out;
		}
		replay(api, req, t, first, idem_j->valuestring);
		goto out;
	}
	/* 3. plan */
	if (!config_plan_allows(a.plan, type->name)) {
		api_err(req, 403, "PLAN_LIMIT", "Your plan does not include this job type", NULL);
		goto out;
	}
	params_j = cJSON_GetObjectItemCaseSensitive(body, "params");
	if (params_j && !cJSON_IsObject(params_j)) {
		validation_error(req, NULL, "params", "must be an object");
		goto out;
	}
	timeout_s = MIN(type->max_execution_seconds, a.plan->max_job_timeout);
	{
		const cJSON *to = params_j ? cJSON_GetObjectItemCaseSensitive(params_j, "timeout") : NULL;
		if (cJSON_IsNumber(to) && to->valuedouble > a.plan->max_job_timeout) {
			api_err(req, 403, "PLAN_LIMIT", "params.timeout is over your plan's maxJobTimeout",
				NULL);
			goto out;
		}
	}
	/* queue limit, 4. credits (a.org was read in rt) */
	hold = a.test ? 0 : config_estimate(type);
	if (org_room(req, &a, &a.org, hold) < 0)
		goto out;
	store_abort(rt);
	rt = NULL;
	/* 5. schema */
	params = params_j ? cJSON_Duplicate(params_j, 1) : cJSON_CreateObject();
	memset(&errs, 0, sizeof(errs));
	if (schema_validate(type->schema, params, &errs) != 0) {
		cJSON *d = schema_errors_to_json(&errs);
		char *ds = cJSON_PrintUnformatted(d);
		const char *msg = errs.n ? errs.e[0].message : "params do not match the schema";
		char m[300];
		snprintf(m, sizeof(m), "Invalid params: %s", msg);
		api_err(req, 400, "VALIDATION_ERROR", m, ds);
		free(ds);
		cJSON_Delete(d);
		schema_errors_free(&errs);
		goto out;
	}
	schema_errors_free(&errs);
	schema_apply_defaults(type->schema, params);
	{
		/* a `timeout` param (with its schema default) shortens the limit */
		const cJSON *to = cJSON_GetObjectItemCaseSensitive(params, "timeout");
		if (cJSON_IsNumber(to) && to->valuedouble >= 1)
			timeout_s = MIN(timeout_s, (int64_t)to->valuedouble);
	}
	inputs = normalise_inputs(cJSON_GetObjectItemCaseSensitive(body, "inputs"), path,
				  sizeof(path), why, sizeof(why));
	if (!inputs) {
		char full[300];
		snprintf(full, sizeof(full), "inputs.%s", path);
		validation_error(req, NULL, full, why);
		goto out;
	}
	cb_j = cJSON_GetObjectItemCaseSensitive(body, "callback");
	if (cb_j && !cJSON_IsNull(cb_j)) {
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(cb_j, "url");
		const cJSON *h = cJSON_GetObjectItemCaseSensitive(cb_j, "headers"), *hv;
		if (!cJSON_IsObject(cb_j) || !cJSON_IsString(u) || !url_ok(u->valuestring)) {
			validation_error(req, NULL, "callback.url", "must be an http(s) URL");
			goto out;
		}
		if (h && !cJSON_IsObject(h)) {
			validation_error(req, NULL, "callback.headers", "must be an object");
			goto out;
		}
		cJSON_ArrayForEach(hv, h) {
			if (!cJSON_IsString(hv) || strncasecmp(hv->string, "x-rendobar-", 11) == 0 ||
			    strpbrk(hv->string, ":\r\n ") || strpbrk(hv->valuestring, "\r\n")) {
				validation_error(req, NULL, "callback.headers",
						 "header names must be plain and not X-Rendobar-*");
				goto out;
			}
		}
		cb_s = cJSON_PrintUnformatted(cb_j);
	}

	memset(&j, 0, sizeof(j));
	id_new_sorted(j.id, sizeof(j.id), "job_", 20);
	snprintf(j.org, sizeof(j.org), "%s", a.org.id);
	snprintf(j.type, sizeof(j.type), "%s", type->name);
	j.hold = hold;
	j.timeout_ms = timeout_s * 1000;
	j.flags = a.test ? JOB_TEST : 0;
	inputs_s = cJSON_PrintUnformatted(inputs);
	params_s = cJSON_PrintUnformatted(params);
	j.inputs.p = inputs_s;
	j.inputs.n = (uint32_t)strlen(inputs_s);
	j.params.p = params_s;
	j.params.n = (uint32_t)strlen(params_s);
	if (idem_j) {
		j.idem.p = idem_j->valuestring;
		j.idem.n = (uint32_t)strlen(idem_j->valuestring);
	}
	if (cb_s) {
		j.callback.p = cb_s;
		j.callback.n = (uint32_t)strlen(cb_s);
	}
	{
		size_t cl;
		const char *c = httpd_header(req, "X-Rendobar-Client", &cl);
		if (c && cl <= 64 && utf8_valid(c, cl)) {
			j.client.p = c;
			j.client.n = (uint32_t)cl;
		}
	}

	/* Written with the turn's other submissions (api_submits_apply). */
	{
		struct api_submit *q;
		size_t kn = idem_j ? strlen(idem_j->valuestring) : 0;
		if (api->nsubmits == api->capsubmits) {
			api->capsubmits = api->capsubmits ? api->capsubmits * 2 : 64;
			api->submits = xrealloc(api->submits, api->capsubmits * sizeof(*api->submits));
		}
		q = &api->submits[api->nsubmits++];
		q->req = req;
		q->j = j;
		q->plan = a.plan;
		q->test = a.test;
		q->inputs = inputs_s;
		q->params = params_s;
		q->callback = cb_s;
		inputs_s = params_s = cb_s = NULL;	/* q owns them */
		memcpy(q->idem, kn ? idem_j->valuestring : "", kn + 1);
		q->j.idem.p = kn ? q->idem : NULL;
		memcpy(q->client, j.client.p ? j.client.p : "", j.client.n);
		q->client[j.client.n] = '\0';
		q->j.client.p = j.client.n ? q->client : NULL;
	}
out:
	store_abort(rt);
	free(inputs_s);
	free(params_s);
	free(cb_s);
	cJSON_Delete(inputs);
	cJSON_Delete(params);
	cJSON_Delete(body);
}
