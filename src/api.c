/* api.c - routing, authentication, rate limits, group commit and the job
 * object shared by the client API files. */
#include "api_int.h"
#include "jobring/crypto.h"
#include "jobring/durable.h"
#include "jobring/lifecycle.h"
#include "jobring/metrics.h"
#include "jobring/presign.h"
#include "jobring/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TYPE "application/json"

/* ---- answers ---------------------------------------------------------------- */

static void err_answer(struct httpd_req *req, int status, const char *code, const char *message,
		       const char *details, const char *extra)
{
	struct buf b;
	struct jw w;

	metrics_api_error(code);
	buf_init(&b);
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_key(&w, "error");
	jw_obj_begin(&w);
	jw_kv_str(&w, "code", code);
	jw_kv_str(&w, "message", message);
	if (details) {
		jw_key(&w, "details");
		jw_raw(&w, details, strlen(details));
	}
	jw_obj_end(&w);
	jw_obj_end(&w);
	httpd_respond(req, status, JSON_TYPE, extra, b.data, b.len);
	buf_free(&b);
}

void api_err(struct httpd_req *req, int status, const char *code, const char *message,
	     const char *details_json)
{
	err_answer(req, status, code, message, details_json, NULL);
}

static void wrap_data(struct buf *out, const struct buf *data)
{
	buf_puts(out, "{\"data\":");
	buf_append(out, data->data ? data->data : "null", data->data ? data->len : 4);
	buf_putc(out, '}');
}

void api_ok(struct httpd_req *req, int status, const struct buf *data)
{
	struct buf b;
	buf_init(&b);
	wrap_data(&b, data);
	httpd_respond(req, status, JSON_TYPE, NULL, b.data, b.len);
	buf_free(&b);
}

/* ---- routes ----------------------------------------------------------------- */

int seg_is(const struct route *r, int i, const char *s)
{
	return i < r->nseg && strlen(s) == r->len[i] && memcmp(r->seg[i], s, r->len[i]) == 0;
}

int seg_copy(const struct route *r, int i, char *out, size_t outsz)
{
	if (i >= r->nseg || r->len[i] == 0 || r->len[i] >= outsz)
		return -1;
	for (size_t k = 0; k < r->len[i]; k++) {
		char c = r->seg[i][k];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return -1;
	}
	memcpy(out, r->seg[i], r->len[i]);
	out[r->len[i]] = '\0';
	return 0;
}

int api_split_route(struct httpd_req *req, struct route *r)
{
	const char *p = req->path, *end = req->path + req->path_len;

	memset(r, 0, sizeof(*r));
	while (p < end) {
		while (p < end && *p == '/')
			p++;
		if (p == end)
			break;
		const char *s = p;
		while (p < end && *p != '/')
			p++;
		if (r->nseg == API_MAX_SEGS)
			return -1;
		r->seg[r->nseg] = s;
		r->len[r->nseg++] = (size_t)(p - s);
	}
#define M(x) (req->method_len == strlen(x) && memcmp(req->method, x, req->method_len) == 0)
	r->is_get = M("GET") || M("HEAD");
	r->is_head = M("HEAD");
	r->is_post = M("POST");
	r->is_put = M("PUT");
	r->is_patch = M("PATCH");
	r->is_delete = M("DELETE");
#undef M
	return 0;
}

static void health(struct api *api, struct httpd_req *req)
{
	struct buf b;
	struct jw w;
	(void)api;
	buf_init(&b);
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_kv_str(&w, "status", "ok");
	jw_kv_str(&w, "version", "0.1.0");
	jw_kv_int(&w, "time", now_ms());
	jw_obj_end(&w);
	api_ok(req, 200, &b);
	buf_free(&b);
}

void api_handle(struct api *api, struct httpd_req *req)
{
	struct route r;

	if (api_split_route(req, &r) < 0) {
		api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
		return;
	}
	if (r.nseg == 1 && seg_is(&r, 0, "health")) {
		if (!r.is_get)
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
		else
			health(api, req);
		return;
	}
	if (r.nseg == 1 && seg_is(&r, 0, "metrics")) {
		struct buf b;
		if (!r.is_get) {
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
			return;
		}
		buf_init(&b);
		metrics_render(&b, api->cfg, api->store, api->region);
		httpd_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data, b.len);
		buf_free(&b);
		return;
	}
	if (r.nseg == 1 && (seg_is(&r, 0, "dashboard") || seg_is(&r, 0, "openapi.json"))) {
		api_web_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && seg_is(&r, 0, "jobs")) {
		api_jobs_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && seg_is(&r, 0, "admin")) {
		api_admin_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && seg_is(&r, 0, "dl")) {
		api_dl_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && seg_is(&r, 0, "blobs")) {
		api_blobs_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && seg_is(&r, 0, "samples")) {
		api_samples_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && seg_is(&r, 0, "assets")) {
		api_assets_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && (seg_is(&r, 0, "realtime") || seg_is(&r, 0, "events"))) {
		api_realtime_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && (seg_is(&r, 0, "webhooks") || seg_is(&r, 0, "webhook-endpoints"))) {
		api_webhooks_route(api, req, &r);
		return;
	}
	if (r.nseg >= 1 && (seg_is(&r, 0, "orgs") || seg_is(&r, 0, "billing"))) {
		api_account_route(api, req, &r);
		return;
	}
	api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
}

/* ---- auth and limits ---------------------------------------------------------- */

static const char *bearer(struct httpd_req *req, size_t *n)
{
	size_t len;
	const char *v = httpd_header(req, "Authorization", &len);

	if (!v || len < 8 || strncasecmp(v, "Bearer ", 7) != 0)
		return NULL;
	v += 7;
	len -= 7;
	while (len && *v == ' ') {
		v++;
		len--;
	}
	*n = len;
	return v;
}

int api_auth(struct api *api, struct httpd_req *req, MDB_txn *t, struct auth *a)
{
	size_t n = 0;
	const char *tok = bearer(req, &n);

	return api_auth_token(api, req, t, tok, n, a);
}

int api_auth_token(struct api *api, struct httpd_req *req, MDB_txn *t, const char *tok, size_t n,
		   struct auth *a)
{
	int r;

	if (!tok || (r = account_key_lookup(api->store, t, tok, n, &a->key)) < 0 ||
	    org_get(api->store, t, a->key.org, &a->org) < 0) {
		api_err(req, 401, "UNAUTHORIZED", "Invalid or expired authentication", NULL);
		return -1;
	}
	if (a->org.flags & ORG_SUSPENDED) {
		api_err(req, 403, "ORG_SUSPENDED", "This organization is suspended", NULL);
		return -1;
	}
	a->plan = config_plan(api->cfg, a->org.plan);
	if (!a->plan)
		a->plan = config_plan(api->cfg, "free");
	a->test = a->key.test != 0;
	return 0;
}

int api_admin_auth(struct api *api, struct httpd_req *req)
{
	size_t n, want = strlen(api->admin_token);
	const char *tok = bearer(req, &n);

	if (!tok || n != want || !crypto_memeq(tok, api->admin_token, n)) {
		api_err(req, 401, "UNAUTHORIZED", "Invalid admin token", NULL);
		return -1;
	}
	return 0;
}

struct ratebucket {
	char org[ORG_ID_MAX];
	double tokens;
	int64_t last_ns;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Open addressing in a power-of-two table; one entry per org, never removed
 * (its size is bounded by the number of orgs). */
static struct ratebucket *bucket_get(struct api *api, const char *org)
{
	size_t cap = api->nbuckets_cap, i;

	if (api->nbuckets * 10 >= cap * 7) {
		size_t ncap = cap ? cap * 2 : 1024;
		struct ratebucket *nb = xcalloc(ncap, sizeof(*nb));
		for (i = 0; i < cap; i++) {
			if (!api->buckets[i].org[0])
				continue;
			size_t j = hash_str(api->buckets[i].org) & (ncap - 1);
			while (nb[j].org[0])
				j = (j + 1) & (ncap - 1);
			nb[j] = api->buckets[i];
		}
		free(api->buckets);
		api->buckets = nb;
		api->nbuckets_cap = cap = ncap;
	}
	for (i = hash_str(org) & (cap - 1);; i = (i + 1) & (cap - 1)) {
		if (!api->buckets[i].org[0]) {
			snprintf(api->buckets[i].org, ORG_ID_MAX, "%s", org);
			api->buckets[i].tokens = -1;
			api->nbuckets++;
			return &api->buckets[i];
		}
		if (strcmp(api->buckets[i].org, org) == 0)
			return &api->buckets[i];
	}
}

int api_rate(struct api *api, struct httpd_req *req, const struct auth *a)
{
	struct ratebucket *b = bucket_get(api, a->org.id);
	double burst = a->plan->requests_per_minute, per_s = burst / 60.0;
	int64_t now = mono_ns();
	char extra[64];

	if (b->tokens < 0) {
		b->tokens = burst;
		b->last_ns = now;
	}
	b->tokens = fmin(burst, b->tokens + (double)(now - b->last_ns) / 1e9 * per_s);
	b->last_ns = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	snprintf(extra, sizeof(extra), "Retry-After: %d\r\n",
		 (int)MAX(1, ceil((1.0 - b->tokens) / per_s)));
	err_answer(req, 429, "RATE_LIMITED", "Too many requests for this plan; retry later",
		   NULL, extra);
	return -1;
}

/* ---- bodies --------------------------------------------------------------------- */

/* Nesting depth of a JSON text (outside strings); cJSON allows 1000. */
static int json_depth_ok(const char *p, size_t n)
{
	int depth = 0, in_str = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > API_MAX_JSON_DEPTH)
				return 0;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 1;
}

cJSON *api_body_json(struct httpd_req *req)
{
	cJSON *j;

	if (!req->body || req->body_len == 0) {
		api_err(req, 400, "VALIDATION_ERROR", "A JSON object body is required", NULL);
		return NULL;
	}
	if (!utf8_valid(req->body, req->body_len)) {
		api_err(req, 400, "VALIDATION_ERROR", "The body is not valid UTF-8", NULL);
		return NULL;
	}
	if (!json_depth_ok(req->body, req->body_len)) {
		api_err(req, 400, "VALIDATION_ERROR", "The body nests too deeply", NULL);
		return NULL;
	}
	j = cJSON_ParseWithLength(req->body, req->body_len);
	if (!j) {
		api_err(req, 400, "VALIDATION_ERROR", "The body is not valid JSON", NULL);
		return NULL;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		api_err(req, 400, "VALIDATION_ERROR", "The body must be a JSON object", NULL);
		return NULL;
	}
	return j;
}

/* ---- group commit ----------------------------------------------------------------- */

void api_init(struct api *api, const struct config *cfg, struct store *store,
	      const char *signing_key, const char *admin_token)
{
	memset(api, 0, sizeof(*api));
	api->cfg = cfg;
	api->store = store;
	api->signing_key = signing_key;
	api->admin_token = admin_token;
	api->handoff_fd = -1;
	buf_init(&api->scratch);
	api->fault_lose_messages = getenv("JOBRING_FAULT_LOSE_MESSAGES") != NULL;
}

void api_free(struct api *api)
{
	api_submits_free(api);
	store_abort(api->wtxn);
	for (size_t i = 0; i < api->npending; i++)
		buf_free(&api->pending[i].body);
	free(api->pending);
	free(api->msgs);
	free(api->buckets);
	buf_free(&api->scratch);
	memset(api, 0, sizeof(*api));
}

int api_wtxn(struct api *api, MDB_txn **ret)
{
	int r;
	if (!api->wtxn && (r = store_begin(api->store, 0, &api->wtxn)) < 0)
		return r;
	*ret = api->wtxn;
	return 0;
}

int api_wbegin(struct api *api, MDB_txn **child)
{
	MDB_txn *t;
	int r;
	if ((r = api_wtxn(api, &t)) < 0)
		return r;
	return store_err(mdb_txn_begin(api->store->env, t, 0, child));
}

void api_wabort(struct api *api, int err)
{
	store_abort(api->wtxn);
	api->wtxn = NULL;
	for (size_t i = 0; i < api->npending; i++) {
		api_store_error(api, NULL, api->pending[i].req, err);
		buf_free(&api->pending[i].body);
	}
	api->npending = 0;
	api->nmsgs = 0;
}

void api_wdone(struct api *api, MDB_txn *child, struct httpd_req *req, int status,
	       const struct buf *data_json, const char *extra_headers)
{
	int r = store_commit(child);

	if (r < 0) {
		api_store_error(api, NULL, req, r);
		return;
	}
	api_answer_later(api, req, status, data_json, extra_headers);
}

void api_answer_later(struct api *api, struct httpd_req *req, int status,
		      const struct buf *data_json, const char *extra_headers)
{
	struct api_answer *a;

	if (api->npending == api->cappending) {
		api->cappending = api->cappending ? api->cappending * 2 : 64;
		api->pending = xrealloc(api->pending, api->cappending * sizeof(*api->pending));
	}
	a = &api->pending[api->npending++];
	a->req = req;
	a->status = status;
	a->submit = 0;
	snprintf(a->extra, sizeof(a->extra), "%s", extra_headers ? extra_headers : "");
	buf_init(&a->body);
	wrap_data(&a->body, data_json);
}

void api_wfail(struct api *api, MDB_txn *child, struct httpd_req *req, int status,
	       const char *code, const char *message)
{
	(void)api;
	store_abort(child);
	api_err(req, status, code, message, NULL);
}

void api_store_error(struct api *api, MDB_txn *child, struct httpd_req *req, int err)
{
	(void)api;
	store_abort(child);
	if (err == -ENOSPC)
		api_err(req, 507, "STORAGE_FULL", "The job store is full; try again later", NULL);
	else
		api_err(req, 500, "INTERNAL_ERROR", strerror(-err), NULL);
}

void api_post(struct api *api, enum actor_id to, const struct msg *m)
{
	if (api->nmsgs == api->capmsgs) {
		api->capmsgs = api->capmsgs ? api->capmsgs * 2 : 64;
		api->msgs = xrealloc(api->msgs, api->capmsgs * sizeof(*api->msgs));
	}
	api->msgs[api->nmsgs].to = to;
	api->msgs[api->nmsgs].m = *m;
	api->nmsgs++;
}

/* Answer (and release the messages of) a committed batch. */
static void answer_all(struct api *api, struct api_answer *ans, size_t n, struct api_out_msg *msgs,
		       size_t nmsgs, uint64_t seq, int r)
{
	for (size_t i = 0; i < n; i++) {
		struct api_answer *a = &ans[i];
		if (r == 0) {
			if (a->submit)
				metrics_observe_us(MH_SUBMIT,
						   (uint64_t)(mono_ns() - a->req->started_ns) / 1000);
			httpd_respond(a->req, a->status, JSON_TYPE, a->extra[0] ? a->extra : NULL,
				      a->body.data, a->body.len);
		} else if (r == -ENOSPC) {
			api_err(a->req, 507, "STORAGE_FULL", "The job store is full; try again later",
				NULL);
		} else {
			api_err(a->req, 500, "INTERNAL_ERROR", "The commit failed", NULL);
		}
		buf_free(&a->body);
	}
	if ((r == 0 || r == -EIO) && !api->fault_lose_messages) {
		/* committed (even if the fsync failed, the jobs exist): tell the others */
		struct msg ev = { .kind = MSG_EVENTS, .seq = seq, .at = now_ms() };
		for (size_t i = 0; i < nmsgs; i++)
			api->send(api->send_ctx, msgs[i].to, &msgs[i].m);
		api->send(api->send_ctx, ACTOR_NOTIFIER, &ev);
	}
}

/* A batch committed with the meta fsync deferred, waiting for its fdatasync. */
struct api_batch {
	struct api *api;
	struct api_answer *ans;
	size_t nans;
	struct api_out_msg *msgs;
	size_t nmsgs;
	uint64_t seq;
};

static void batch_durable(void *arg, int res)
{
	struct api_batch *b = arg;
	answer_all(b->api, b->ans, b->nans, b->msgs, b->nmsgs, b->seq, res);
	free(b->ans);
	free(b->msgs);
	free(b);
}

int api_commit(struct api *api, void (*send)(void *ctx, enum actor_id to, const struct msg *m),
	       void *ctx)
{
	uint64_t seq = 0;
	int r = 0;

	api->send = send;
	api->send_ctx = ctx;
	api_submits_apply(api);
	if (!api->wtxn)
		return 0;
	store_peek_seq(api->store, api->wtxn, "event", &seq);
	r = store_commit(api->wtxn);
	api->wtxn = NULL;
	api->commits++;
	api->committed_ops += api->npending;
	if (r == 0 && api->store->sync_full == STORE_SYNC_DEFERRED && api->loop) {
		/* Group commit, pipelined: the answers wait for the fdatasync while
		 * the next batch is already being processed. */
		struct api_batch *b = xcalloc(1, sizeof(*b));
		b->api = api;
		b->ans = api->pending;
		b->nans = api->npending;
		b->msgs = api->msgs;
		b->nmsgs = api->nmsgs;
		b->seq = seq;
		api->pending = NULL;
		api->npending = api->cappending = 0;
		api->msgs = NULL;
		api->nmsgs = api->capmsgs = 0;
		durable_after(&api->durable, api->loop, store_fd(api->store), b, batch_durable);
		return 0;
	}
	answer_all(api, api->pending, api->npending, api->msgs, api->nmsgs, seq, r);
	api->npending = 0;
	api->nmsgs = 0;
	return r;
}

void api_msg_job(struct msg *m, int kind, const struct job *j)
{
	memset(m, 0, sizeof(*m));
	m->kind = (uint8_t)kind;
	m->status = j->status;
	m->attempt = j->attempt;
	m->at = now_ms();
	memcpy(m->job, j->id, sizeof(m->job));
	memcpy(m->org, j->org, sizeof(m->org));
	memcpy(m->provider, j->provider, sizeof(m->provider));
}

/* ---- the job object ------------------------------------------------------------------ */

static void ts_or_null(struct jw *w, const char *k, int64_t v)
{
	if (v)
		jw_kv_int(w, k, v);
	else
		jw_kv_null(w, k);
}

static void raw_or(struct jw *w, const char *k, const struct jstr *s, const char *dflt)
{
	jw_key(w, k);
	if (s->n)
		jw_raw(w, s->p, s->n);
	else if (dflt)
		jw_raw(w, dflt, strlen(dflt));
	else
		jw_null(w);
}

static int code_retryable(const char *code)
{
	return strcmp(code, "DISPATCH_EXHAUSTED") == 0 || strcmp(code, "PROVIDER_TIMEOUT") == 0 ||
	       strcmp(code, "PROVIDER_ERROR") == 0 || strcmp(code, "INPUT_FETCH_FAILED") == 0;
}

static const char *file_kind(const char *path)
{
	static const struct { const char *ext, *kind; } k[] = {
		{ ".mp4", "video" }, { ".mkv", "video" }, { ".webm", "video" }, { ".mov", "video" },
		{ ".avi", "video" }, { ".ts", "video" }, { ".gif", "image" }, { ".png", "image" },
		{ ".jpg", "image" }, { ".jpeg", "image" }, { ".webp", "image" }, { ".mp3", "audio" },
		{ ".wav", "audio" }, { ".flac", "audio" }, { ".ogg", "audio" }, { ".aac", "audio" },
		{ ".opus", "audio" }, { ".m4a", "audio" }, { ".srt", "captions" },
		{ ".vtt", "captions" }, { ".m3u8", "playlist" }, { ".json", "data" },
		{ ".txt", "data" }, { ".csv", "data" },
	};
	const char *dot = strrchr(path, '.');
	if (dot)
		for (size_t i = 0; i < ARRAY_SIZE(k); i++)
			if (strcasecmp(dot, k[i].ext) == 0)
				return k[i].kind;
	return "other";
}

/* output = {data, file, files:[{url,path,type,size}], expiresAt}; the provider
 * reported {files:[{path,size,type}], data}. URLs are signed on every read. */
static void output_json(struct jw *w, const struct api *api, const struct job *j, int64_t now,
			char *first_url, size_t first_url_sz)
{
	cJSON *o = j->output.n ? cJSON_ParseWithLength(j->output.p, j->output.n) : NULL;
	const cJSON *files = o ? cJSON_GetObjectItemCaseSensitive(o, "files") : NULL, *f;
	const cJSON *data = o ? cJSON_GetObjectItemCaseSensitive(o, "data") : NULL;
	int64_t exp = now + 3600 * 1000;
	int nfiles = 0;

	first_url[0] = '\0';
	jw_obj_begin(w);
	jw_key(w, "data");
	if (data) {
		char *d = cJSON_PrintUnformatted(data);
		jw_raw(w, d, strlen(d));
		free(d);
	} else {
		jw_null(w);
	}
	jw_key(w, "files");
	jw_arr_begin(w);
	cJSON_ArrayForEach(f, files) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "path");
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(f, "size");
		const cJSON *ty = cJSON_GetObjectItemCaseSensitive(f, "type");
		char path[512], url[2048];
		if (!cJSON_IsString(p) || strlen(p->valuestring) > 200 || strchr(p->valuestring, '/'))
			continue;
		snprintf(path, sizeof(path), "/dl/%s/%s", j->id, p->valuestring);
		if (presign_url(url, sizeof(url), api->cfg->public_url, "GET", path, exp,
				api->signing_key, strlen(api->signing_key)) < 0)
			continue;
		if (!nfiles++)
			snprintf(first_url, first_url_sz, "%s", url);
		jw_obj_begin(w);
		jw_kv_str(w, "url", url);
		jw_kv_str(w, "path", p->valuestring);
		jw_kv_str(w, "type", cJSON_IsString(ty) ? ty->valuestring : file_kind(p->valuestring));
		jw_kv_int(w, "size", cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : 0);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "file");
	if (nfiles) {
		/* the headline file is the first one */
		jw_obj_begin(w);
		jw_kv_str(w, "url", first_url);
		const cJSON *f0 = cJSON_GetArrayItem(files, 0);
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(f0, "path");
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(f0, "size");
		jw_kv_str(w, "path", cJSON_IsString(p) ? p->valuestring : "");
		jw_kv_str(w, "type", cJSON_IsString(p) ? file_kind(p->valuestring) : "other");
		jw_kv_int(w, "size", cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : 0);
		jw_obj_end(w);
	} else {
		jw_null(w);
	}
	if (nfiles)
		jw_kv_int(w, "expiresAt", exp);
	else
		jw_kv_null(w, "expiresAt");
	jw_obj_end(w);
	cJSON_Delete(o);
}

void api_job_json(struct jw *w, const struct api *api, const struct job *j, int64_t now)
{
	char first_url[2048] = "";

	jw_obj_begin(w);
	jw_kv_str(w, "id", j->id);
	jw_kv_str(w, "type", j->type);
	jw_kv_str(w, "status", job_status_name(j->status));
	jw_kv_str(w, "orgId", j->org);
	if (j->client.n) {
		jw_key(w, "client");
		jw_strn(w, j->client.p, j->client.n);
	} else {
		jw_kv_null(w, "client");
	}
	raw_or(w, "inputs", &j->inputs, "{}");
	raw_or(w, "params", &j->params, "{}");
	jw_key(w, "idempotencyKey");
	if (j->idem.n)
		jw_strn(w, j->idem.p, j->idem.n);
	else
		jw_null(w);
	jw_key(w, "progress");
	jw_double(w, j->progress / 1e6);
	jw_key(w, "steps");
	jw_arr_begin(w);
	if (j->step.n) {
		jw_obj_begin(w);
		jw_key(w, "name");
		jw_strn(w, j->step.p, j->step.n);
		jw_kv_str(w, "status", j->status == JOB_COMPLETE ? "complete"
				       : j->status == JOB_RUNNING ? "running" : "pending");
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_kv_int(w, "retryCount", j->retry_count);
	jw_kv_int(w, "attempt", j->attempt);
	jw_kv_int(w, "timeoutMs", j->timeout_ms);
	jw_kv_bool(w, "logsAvailable", (j->flags & JOB_HAS_LOGS) != 0);
	jw_kv_bool(w, "test", (j->flags & JOB_TEST) != 0);
	jw_kv_int(w, "createdAt", j->created_at);
	ts_or_null(w, "dispatchedAt", j->dispatched_at);
	ts_or_null(w, "startedAt", j->started_at);
	ts_or_null(w, "completedAt", j->completed_at);
	jw_key(w, "cost");
	if (j->status == JOB_COMPLETE)
		jw_money(w, j->cost);
	else
		jw_null(w);
	jw_key(w, "output");
	if (j->status == JOB_COMPLETE)
		output_json(w, api, j, now, first_url, sizeof(first_url));
	else
		jw_null(w);
	jw_key(w, "error");
	if (j->status == JOB_FAILED) {
		jw_obj_begin(w);
		jw_kv_str(w, "code", j->error_code);
		jw_key(w, "message");
		jw_strn(w, j->error_message.p ? j->error_message.p : "", j->error_message.n);
		jw_key(w, "detail");
		if (j->error_detail.n)
			jw_strn(w, j->error_detail.p, j->error_detail.n);
		else
			jw_null(w);
		jw_kv_bool(w, "retryable", code_retryable(j->error_code));
		jw_kv_str(w, "failedPhase", j->failed_phase[0] ? j->failed_phase : "processing");
		jw_obj_end(w);
	} else {
		jw_null(w);
	}
	/* legacy fields CLI 1.0.1 reads */
	if (first_url[0])
		jw_kv_str(w, "outputUrl", first_url);
	else
		jw_kv_null(w, "outputUrl");
	if (j->status == JOB_FAILED) {
		jw_key(w, "errorMessage");
		jw_strn(w, j->error_message.p ? j->error_message.p : "", j->error_message.n);
		jw_kv_str(w, "errorCode", j->error_code);
	} else {
		jw_kv_null(w, "errorMessage");
		jw_kv_null(w, "errorCode");
	}
	jw_obj_end(w);
}
