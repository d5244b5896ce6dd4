/* api_jobs.c - /jobs: get, list, cancel, retry, logs, and the public type
 * catalogue (POST /jobs, the gate, is api_submit.c). */
#include "api_int.h"
#include "jobring/lifecycle.h"
#include "jobring/schema.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- types ------------------------------------------------------------------ */

static const char *accepts_media(const char *type)
{
	if (!strcmp(type, "ffmpeg") || !strcmp(type, "ffprobe"))
		return "[\"video\",\"image\",\"audio\"]";
	return "[]";
}

static void types_list(struct api *api, struct httpd_req *req)
{
	struct buf b;
	struct jw w;

	buf_init(&b);
	jw_init(&w, &b);
	jw_arr_begin(&w);
	for (int i = 0; i < api->cfg->ntypes; i++) {
		const struct jobtype_cfg *t = &api->cfg->types[i];
		if (t->hidden)
			continue;
		jw_obj_begin(&w);
		jw_kv_str(&w, "type", t->name);
		jw_kv_str(&w, "tag", t->tag);
		jw_kv_str(&w, "summary", t->summary);
		jw_key(&w, "acceptsMedia");
		jw_raw(&w, accepts_media(t->name), strlen(accepts_media(t->name)));
		jw_kv_int(&w, "maxExecutionSeconds", t->max_execution_seconds);
		jw_key(&w, "price");
		jw_obj_begin(&w);
		jw_kv_int(&w, "base", t->price.base);
		jw_kv_int(&w, "perSecond", t->price.per_second);
		jw_key(&w, "estimate");
		jw_money(&w, config_estimate(t));
		jw_obj_end(&w);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	api_ok(req, 200, &b);
	buf_free(&b);
}

static void type_schema(struct api *api, struct httpd_req *req, struct route *r)
{
	char name[CONFIG_NAME_MAX];
	const struct jobtype_cfg *t;
	struct buf b;
	struct jw w;
	char *fields, *schema;
	cJSON *f;

	if (seg_copy(r, 2, name, sizeof(name)) < 0 || !(t = config_type(api->cfg, name))) {
		api_err(req, 404, "NOT_FOUND", "Unknown job type", NULL);
		return;
	}
	f = schema_fields(t->schema);
	fields = cJSON_PrintUnformatted(f);
	schema = cJSON_PrintUnformatted(t->schema);
	buf_init(&b);
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_kv_str(&w, "type", t->name);
	jw_key(&w, "fields");
	jw_raw(&w, fields, strlen(fields));
	jw_key(&w, "jsonSchema");
	jw_raw(&w, schema, strlen(schema));
	jw_obj_end(&w);
	api_ok(req, 200, &b);
	buf_free(&b);
	free(fields);
	free(schema);
	cJSON_Delete(f);
}

/* ---- the job object ---------------------------------------------------------- */

/* The answer for an existing job (replay, cancel of a cancelled job, ...). */
void api_job_data(struct api *api, const struct job *j, struct buf *b, int idempotent)
{
	struct jw w;
	buf_reset(b);
	jw_init(&w, b);
	api_job_json(&w, api, j, now_ms());
	if (idempotent && b->len > 0) {
		b->len--;	/* reopen the object: add "idempotent": true */
		buf_puts(b, ",\"idempotent\":true}");
	}
}

/* ---- one job ---------------------------------------------------------------------- */

/* Load job `id` of the authenticated org in txn t; 404 answered → -1. */
static int own_job(struct api *api, struct httpd_req *req, MDB_txn *t, const struct auth *a,
		   const struct route *r, struct job *j)
{
	char id[40];
	if (seg_copy(r, 1, id, sizeof(id)) < 0 || job_get(api->store, t, id, j) < 0 ||
	    strcmp(j->org, a->org.id) != 0) {
		api_err(req, 404, "NOT_FOUND", "Job not found", NULL);
		return -1;
	}
	return 0;
}

static void get_job(struct api *api, struct httpd_req *req, struct route *r)
{
	struct auth a;
	struct job j;
	MDB_txn *t;
	int rc;

	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (api_auth(api, req, t, &a) == 0 && api_rate(api, req, &a) == 0 &&
	    own_job(api, req, t, &a, r, &j) == 0) {
		api_job_data(api, &j, &api->scratch, 0);
		api_ok(req, 200, &api->scratch);
	}
	store_abort(t);
}

static void logs(struct api *api, struct httpd_req *req, struct route *r)
{
	struct auth a;
	struct job j;
	MDB_txn *t;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned char key[48];
	size_t kn;
	int rc, n = 0;
	struct jw w;

	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (api_auth(api, req, t, &a) < 0 || api_rate(api, req, &a) < 0 ||
	    own_job(api, req, t, &a, r, &j) < 0)
		goto out;
	kn = strlen(j.id);
	memcpy(key, j.id, kn);
	key[kn++] = 0;
	buf_reset(&api->scratch);
	jw_init(&w, &api->scratch);
	jw_arr_begin(&w);
	mdb_cursor_open(t, api->store->dbi[DB_LOGS], &cur);
	k.mv_data = key;
	k.mv_size = kn;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size >= kn && memcmp(k.mv_data, key, kn) == 0 && n < 10000;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), n++)
		jw_raw(&w, v.mv_data, v.mv_size);
	mdb_cursor_close(cur);
	jw_arr_end(&w);
	if (n == 0)
		api_err(req, 404, "NOT_FOUND", "No logs for this job", NULL);
	else
		api_ok(req, 200, &api->scratch);
out:
	store_abort(t);
}

static void cancel_or_retry(struct api *api, struct httpd_req *req, struct route *r, int retry)
{
	struct auth a;
	struct job j, after;
	MDB_txn *t, *rt;
	struct lc_move m;
	int rc, prev;

	if ((rc = store_begin(api->store, 1, &rt)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	rc = api_auth(api, req, rt, &a);
	store_abort(rt);
	if (rc < 0 || api_rate(api, req, &a) < 0)
		return;
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (own_job(api, req, t, &a, r, &j) < 0) {
		store_abort(t);
		return;
	}
	prev = j.status;
	memset(&m, 0, sizeof(m));
	m.op = retry ? LC_RETRY : LC_CANCEL;
	m.job_id = j.id;
	m.at = now_ms();
	if (retry) {
		const struct jobtype_cfg *type = config_type(api->cfg, j.type);
		struct org_rec o;
		m.hold = type && !(j.flags & JOB_TEST) ? config_estimate(type) : 0;
		if (j.status == JOB_FAILED && org_get(api->store, t, j.org, &o) == 0 &&
		    o.balance - o.held < m.hold) {
			api_wfail(api, t, req, 402, "INSUFFICIENT_CREDITS",
				  "Not enough credits to retry this job");
			return;
		}
	}
	rc = lc_apply(api->store, t, &m, &after);
	if (rc == -ESTALE) {
		if (!retry && prev == JOB_CANCELLED) {
			/* cancelling a cancelled job settles to the same state */
			api_job_data(api, &j, &api->scratch, 0);
			store_abort(t);
			api_ok(req, 200, &api->scratch);
			return;
		}
		api_wfail(api, t, req, 409, "CONFLICT",
			  retry ? "Only a failed job can be retried"
				: "The job already finished and cannot be cancelled");
		return;
	}
	if (rc < 0) {
		api_store_error(api, t, req, rc);
		return;
	}
	{
		struct msg msg;
		if (retry) {
			api_msg_job(&msg, MSG_JOB_WAITING, &after);
			api_post(api, ACTOR_DISPATCHER, &msg);
		} else if (JOB_BIT(prev) & JOB_ACTIVE_MASK) {
			api_msg_job(&msg, MSG_JOB_CANCEL, &after);
			api_post(api, ACTOR_DISPATCHER, &msg);
			api_msg_job(&msg, MSG_TIMER_CANCEL, &after);
			msg.timer_kind = TIMER_EXEC;
			api_post(api, ACTOR_TIMER, &msg);
		}
	}
	api_job_data(api, &after, &api->scratch, 0);
	api_wdone(api, t, req, 200, &api->scratch, NULL);
}

/* ---- list --------------------------------------------------------------------------- */

struct listq {
	int status;
	char type[CONFIG_NAME_MAX];
	char client[72];
	int64_t from, to;
	int64_t limit, offset;
	int sort;		/* 0 created, 1 cost, 2 duration */
	int asc;
};

static int qget(struct httpd_req *req, const char *key, char *out, size_t outsz)
{
	if (!req->query)
		return -ENOENT;
	return http_query_get(req->query, req->query_len, key, out, outsz);
}

static int parse_list(struct httpd_req *req, struct listq *q)
{
	char v[128];
	int r;

	memset(q, 0, sizeof(q[0]));
	q->limit = 50;
	q->to = INT64_MAX;
	if (qget(req, "status", v, sizeof(v)) >= 0 && !(q->status = job_status_parse(v, strlen(v)))) {
		api_err(req, 400, "VALIDATION_ERROR", "status must be one of waiting dispatched "
			"running complete failed cancelled", NULL);
		return -1;
	}
	if (qget(req, "type", q->type, sizeof(q->type)) < 0)
		q->type[0] = '\0';
	if ((r = qget(req, "client", q->client, sizeof(q->client))) < 0 && r != -ENOENT) {
		api_err(req, 400, "VALIDATION_ERROR", "client is too long", NULL);
		return -1;
	}
	if (r < 0)
		q->client[0] = '\0';
	if (qget(req, "limit", v, sizeof(v)) >= 0 && parse_i64(v, 1, 100, &q->limit) < 0) {
		api_err(req, 400, "VALIDATION_ERROR", "limit must be an integer from 1 to 100", NULL);
		return -1;
	}
	if (qget(req, "offset", v, sizeof(v)) >= 0 && parse_i64(v, 0, 10000000, &q->offset) < 0) {
		api_err(req, 400, "VALIDATION_ERROR", "offset must be an integer from 0 to 10000000",
			NULL);
		return -1;
	}
	if (qget(req, "from", v, sizeof(v)) >= 0 && parse_i64(v, 0, INT64_MAX, &q->from) < 0) {
		api_err(req, 400, "VALIDATION_ERROR", "from must be Unix milliseconds", NULL);
		return -1;
	}
	if (qget(req, "to", v, sizeof(v)) >= 0 && parse_i64(v, 0, INT64_MAX, &q->to) < 0) {
		api_err(req, 400, "VALIDATION_ERROR", "to must be Unix milliseconds", NULL);
		return -1;
	}
	if (qget(req, "sort", v, sizeof(v)) >= 0) {
		if (!strcmp(v, "created"))
			q->sort = 0;
		else if (!strcmp(v, "cost"))
			q->sort = 1;
		else if (!strcmp(v, "duration"))
			q->sort = 2;
		else {
			api_err(req, 400, "VALIDATION_ERROR", "sort must be created, cost or duration",
				NULL);
			return -1;
		}
	}
	if (qget(req, "order", v, sizeof(v)) >= 0) {
		if (strcmp(v, "asc") && strcmp(v, "desc")) {
			api_err(req, 400, "VALIDATION_ERROR", "order must be asc or desc", NULL);
			return -1;
		}
		q->asc = strcmp(v, "asc") == 0;
	}
	return 0;
}

struct hit {
	char id[32];
	int64_t key;
};

static int hit_cmp_asc(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	return x->key < y->key ? -1 : x->key > y->key;
}

static int hit_cmp_desc(const void *a, const void *b)
{
	return hit_cmp_asc(b, a);
}

static void list_jobs(struct api *api, struct httpd_req *req)
{
	struct auth a;
	struct listq q;
	MDB_txn *t;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned char prefix[ORG_ID_MAX + 1];
	size_t pn;
	struct hit *hits = NULL;
	size_t nhits = 0, caphits = 0;
	int rc;
	struct jw w;

	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (api_auth(api, req, t, &a) < 0 || api_rate(api, req, &a) < 0 || parse_list(req, &q) < 0)
		goto out;
	pn = strlen(a.org.id);
	memcpy(prefix, a.org.id, pn);
	prefix[pn++] = 0;
	/* by_org is newest first; gather every match (for meta.total), then page. */
	mdb_cursor_open(t, api->store->dbi[DB_BY_ORG], &cur);
	k.mv_data = prefix;
	k.mv_size = pn;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > pn + 8 && memcmp(k.mv_data, prefix, pn) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *kp = k.mv_data;
		int64_t created = (int64_t)~be64_get(kp + pn);
		char id[32];
		struct job j = { .cost = 0 };
		if (created < q.from || created > q.to)
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)MIN(k.mv_size - pn - 8, 31),
			 (const char *)kp + pn + 8);
		if (q.status || q.type[0] || q.client[0] || q.sort) {
			if (job_get(api->store, t, id, &j) < 0)
				continue;
			if ((q.status && j.status != q.status) || (q.type[0] && strcmp(j.type, q.type)) ||
			    (q.client[0] && (j.client.n != strlen(q.client) ||
					     memcmp(j.client.p, q.client, j.client.n))))
				continue;
		}
		if (nhits == caphits) {
			caphits = caphits ? caphits * 2 : 256;
			hits = xrealloc(hits, caphits * sizeof(*hits));
		}
		memcpy(hits[nhits].id, id, sizeof(id));
		if (q.sort == 1)
			hits[nhits].key = j.cost;
		else if (q.sort == 2)
			hits[nhits].key = j.completed_at && j.started_at ? j.completed_at - j.started_at : 0;
		else
			hits[nhits].key = created;
		nhits++;
	}
	mdb_cursor_close(cur);
	if (q.sort || q.asc)
		qsort(hits, nhits, sizeof(*hits), q.asc ? hit_cmp_asc : hit_cmp_desc);

	buf_reset(&api->scratch);
	buf_puts(&api->scratch, "{\"data\":");
	jw_init(&w, &api->scratch);
	jw_arr_begin(&w);
	for (size_t i = (size_t)q.offset; i < nhits && i < (size_t)(q.offset + q.limit); i++) {
		struct job j;
		if (job_get(api->store, t, hits[i].id, &j) == 0)
			api_job_json(&w, api, &j, now_ms());
	}
	jw_arr_end(&w);
	buf_printf(&api->scratch, ",\"meta\":{\"total\":%zu,\"page\":%lld,\"limit\":%lld,\"offset\":%lld}}",
		   nhits, (long long)(q.offset / q.limit + 1), (long long)q.limit,
		   (long long)q.offset);
	httpd_respond(req, 200, "application/json", NULL, api->scratch.data, api->scratch.len);
out:
	free(hits);
	store_abort(t);
}

void api_jobs_route(struct api *api, struct httpd_req *req, struct route *r)
{
	if (r->nseg == 1) {
		if (r->is_post)
			api_submit(api, req);
		else if (r->is_get)
			list_jobs(api, req);
		else
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET or POST", NULL);
		return;
	}
	if (seg_is(r, 1, "types")) {
		if (!r->is_get)
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
		else if (r->nseg == 2)
			types_list(api, req);
		else if (r->nseg == 4 && seg_is(r, 3, "schema"))
			type_schema(api, req, r);
		else
			api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
		return;
	}
	if (r->nseg == 2) {
		if (r->is_get)
			get_job(api, req, r);
		else
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
		return;
	}
	if (r->nseg == 3 && (seg_is(r, 2, "cancel") || seg_is(r, 2, "retry"))) {
		if (r->is_post)
			cancel_or_retry(api, req, r, seg_is(r, 2, "retry"));
		else
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use POST", NULL);
		return;
	}
	if (r->nseg == 3 && seg_is(r, 2, "logs")) {
		if (r->is_get)
			logs(api, req, r);
		else
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
		return;
	}
	api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
}
