/* outbox.c - the durable webhook outbox; see outbox.h for the key layouts,
 * the event mapping and the guarantees. */
#include "jobring/outbox.h"
#include "jobring/job.h"
#include "jobring/util.h"
#include "jobring/whsign.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WH_ENDPOINT_VERSION 1u
#define WH_DELIVERY_VERSION 1u
#define CURSOR_KEY "notifier.cursor"
#define MAX_CALLBACK_JSON 16384
#define MAX_ERROR_MESSAGE 1024

static const char *const event_names[WH_EVENT_MAX] = {
	[WH_JOB_CREATED] = "job.created",	[WH_JOB_STARTED] = "job.started",
	[WH_JOB_COMPLETED] = "job.completed",	[WH_JOB_FAILED] = "job.failed",
	[WH_JOB_CANCELLED] = "job.cancelled",	[WH_BALANCE_LOW] = "balance.low",
};

const char *wh_event_name(int e)
{
	return e > 0 && e < WH_EVENT_MAX ? event_names[e] : NULL;
}

int wh_event_parse(const char *s)
{
	for (int e = 1; e < WH_EVENT_MAX; e++)
		if (strcmp(s, event_names[e]) == 0)
			return e;
	return 0;
}

/* A fixed id field as a C string (fields are NUL-padded but may be full). */
static void field(char *out, size_t outsz, const char *f, size_t fsz)
{
	size_t n = strnlen(f, fsz);
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, f, n);
	out[n] = '\0';
}

/* prefix 0x00 id; returns the length (k holds 2 * 40 bytes). */
static size_t index_key(unsigned char *k, const char *prefix, const char *id)
{
	size_t pn = strnlen(prefix, 39), in = strnlen(id, 39);
	memcpy(k, prefix, pn);
	k[pn] = 0;
	memcpy(k + pn + 1, id, in);
	return pn + 1 + in;
}

/* ---- endpoints ------------------------------------------------------------ */

int wh_endpoint_get(struct store *s, MDB_txn *t, const char *id, struct wh_endpoint *ret)
{
	return store_get_rec(s, t, DB_ENDPOINTS, id, ret, sizeof(*ret), WH_ENDPOINT_VERSION);
}

int wh_endpoint_put(struct store *s, MDB_txn *t, const struct wh_endpoint *e)
{
	struct wh_endpoint c = *e;
	unsigned char k[80];
	int r;

	c.version = WH_ENDPOINT_VERSION;
	if ((r = store_put(s, t, DB_ENDPOINTS, c.id, strlen(c.id), &c, sizeof(c))) < 0)
		return r;
	return store_put(s, t, DB_ENDPOINTS, k, index_key(k, c.org, c.id), "", 0);
}

int wh_endpoint_list(struct store *s, MDB_txn *t, const char *org,
		     struct wh_endpoint ret[WH_MAX_ENDPOINTS])
{
	unsigned char pre[48];
	size_t pn = index_key(pre, org, "");
	MDB_cursor *c;
	MDB_val k = { pn, pre }, v;
	int n = 0, rc;

	if ((rc = mdb_cursor_open(t, s->dbi[DB_ENDPOINTS], &c)))
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && n < WH_MAX_ENDPOINTS && k.mv_size > pn && memcmp(k.mv_data, pre, pn) == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char id[WH_ID_MAX];
		if (k.mv_size - pn >= sizeof(id))
			continue;
		memcpy(id, (const char *)k.mv_data + pn, k.mv_size - pn);
		id[k.mv_size - pn] = '\0';
		if (wh_endpoint_get(s, t, id, &ret[n]) == 0)
			n++;
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? n : store_err(rc);
}

/* ---- deliveries ------------------------------------------------------------- */

static int due_key_set(struct store *s, MDB_txn *t, int64_t at, const char *id, int add)
{
	unsigned char k[8 + WH_ID_MAX];
	size_t n = strnlen(id, WH_ID_MAX - 1);
	int r;

	be64_put(k, (uint64_t)at);
	memcpy(k + 8, id, n);
	if (add)
		return store_put(s, t, DB_DELIV_DUE, k, 8 + n, "", 0);
	r = store_del(s, t, DB_DELIV_DUE, k, 8 + n);
	return r == -ENOENT ? 0 : r;
}

static size_t payload_key(unsigned char *k, const char *id)
{
	size_t n = strnlen(id, WH_ID_MAX - 1);
	memcpy(k, id, n);
	k[n] = 0x01;
	return n + 1;
}

static int deliv_put(struct store *s, MDB_txn *t, const struct wh_delivery *d)
{
	struct wh_delivery c = *d;
	c.version = WH_DELIVERY_VERSION;
	return store_put(s, t, DB_DELIVERIES, c.id, strlen(c.id), &c, sizeof(c));
}

int wh_delivery_get(struct store *s, MDB_txn *t, const char *id, struct wh_delivery *ret,
		    const char **body, const char **cb)
{
	unsigned char k[WH_ID_MAX + 1];
	MDB_val v;
	int r = store_get_rec(s, t, DB_DELIVERIES, id, ret, sizeof(*ret), WH_DELIVERY_VERSION);

	if (r < 0)
		return r;
	if (!body && !cb)
		return 0;
	if ((r = store_get(s, t, DB_DELIVERIES, k, payload_key(k, ret->id), &v)) < 0)
		return r == -ENOENT ? -EBADMSG : r;
	if (v.mv_size != (size_t)ret->body_len + ret->cb_len)
		return -EBADMSG;
	if (body)
		*body = v.mv_data;
	if (cb)
		*cb = (const char *)v.mv_data + ret->body_len;
	return 0;
}

int wh_redeliver(struct store *s, MDB_txn *t, const char *id, int64_t now,
		 struct wh_delivery *ret)
{
	struct wh_delivery d;
	int r;

	if ((r = wh_delivery_get(s, t, id, &d, NULL, NULL)) < 0)
		return r;
	if (d.status == WH_PENDING && (r = due_key_set(s, t, d.next_at, d.id, 0)) < 0)
		return r;
	d.status = WH_PENDING;
	d.next_at = now;
	d.delivered_at = 0;
	if ((r = due_key_set(s, t, now, d.id, 1)) < 0 || (r = deliv_put(s, t, &d)) < 0)
		return r;
	if (ret)
		*ret = d;
	return 0;
}

int wh_endpoint_del(struct store *s, MDB_txn *t, const struct wh_endpoint *e)
{
	unsigned char k[80], pre[48];
	size_t pn = index_key(pre, e->id, ""), nkeys = 0;
	char (*ids)[WH_ID_MAX] = NULL;
	MDB_cursor *c;
	MDB_val key = { pn, pre }, v;
	int r, rc;

	if ((r = store_del(s, t, DB_ENDPOINTS, e->id, strlen(e->id))) < 0 ||
	    ((r = store_del(s, t, DB_ENDPOINTS, k, index_key(k, e->org, e->id))) < 0 && r != -ENOENT))
		return r;
	/* Collect first, then delete: no cursor walks a tree being changed. */
	if ((rc = mdb_cursor_open(t, s->dbi[DB_DELIVERIES], &c)))
		return store_err(rc);
	ids = xmalloc(WH_DELETE_DELIVERIES * sizeof(*ids));
	for (rc = mdb_cursor_get(c, &key, &v, MDB_SET_RANGE);
	     rc == 0 && nkeys < WH_DELETE_DELIVERIES && key.mv_size > pn + 8 &&
	     key.mv_size - pn - 8 < WH_ID_MAX && memcmp(key.mv_data, pre, pn) == 0;
	     rc = mdb_cursor_get(c, &key, &v, MDB_NEXT)) {
		memcpy(ids[nkeys], (const char *)key.mv_data + pn + 8, key.mv_size - pn - 8);
		ids[nkeys++][key.mv_size - pn - 8] = '\0';
	}
	mdb_cursor_close(c);
	r = 0;
	for (size_t i = 0; i < nkeys && r == 0; i++) {
		struct wh_delivery d;
		unsigned char ik[80];
		size_t in;
		if (wh_delivery_get(s, t, ids[i], &d, NULL, NULL) < 0)
			continue;
		memcpy(ik, pre, pn);
		be64_put(ik + pn, ~(uint64_t)d.created_at);
		in = strlen(d.id);
		memcpy(ik + pn + 8, d.id, in);
		if (d.status == WH_PENDING)
			r = due_key_set(s, t, d.next_at, d.id, 0);
		if (r == 0)
			r = store_del(s, t, DB_DELIVERIES, ik, pn + 8 + in);
		if (r == 0)
			r = store_del(s, t, DB_DELIVERIES, k, payload_key(k, d.id));
		if (r == 0 || r == -ENOENT)
			r = store_del(s, t, DB_DELIVERIES, d.id, strlen(d.id));
		if (r == -ENOENT)
			r = 0;
	}
	free(ids);
	return r;
}

int outbox_callback_secret(struct store *s, MDB_txn *t, const char *org, int create,
			   char out[WH_SECRET_MAX])
{
	char k[64];
	int n = snprintf(k, sizeof(k), "cbsecret:%.40s", org), r;
	MDB_val v;

	r = store_get(s, t, DB_META, k, (size_t)n, &v);
	if (r == 0 && v.mv_size < WH_SECRET_MAX) {
		memcpy(out, v.mv_data, v.mv_size);
		out[v.mv_size] = '\0';
		return 0;
	}
	if (r < 0 && (r != -ENOENT || !create))
		return r;
	if (r == 0)
		return -EBADMSG;
	if ((r = whsign_new_secret(out, WH_SECRET_MAX)) < 0)
		return r;
	return store_put(s, t, DB_META, k, (size_t)n, out, strlen(out));
}

/* ---- mapping and envelopes ------------------------------------------------------ */

static int data_low(const char *data, size_t n)
{
	cJSON *j = n ? cJSON_ParseWithLength(data, n) : NULL;
	int low = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "low"));
	cJSON_Delete(j);
	return low;
}

int outbox_map(const struct event_rec *ev, const char *data, size_t data_len, int out[2])
{
	switch (ev->kind) {
	case EV_JOB_CREATED:
		out[0] = WH_JOB_CREATED;
		return 1;
	case EV_JOB_STATUS:
		switch (ev->status) {
		case JOB_RUNNING:
			out[0] = WH_JOB_STARTED;
			return 1;
		case JOB_COMPLETE:
			if (ev->prev_status == JOB_DISPATCHED) {
				out[0] = WH_JOB_STARTED;
				out[1] = WH_JOB_COMPLETED;
				return 2;
			}
			out[0] = WH_JOB_COMPLETED;
			return 1;
		case JOB_FAILED:
			out[0] = WH_JOB_FAILED;
			return 1;
		case JOB_CANCELLED:
			out[0] = WH_JOB_CANCELLED;
			return 1;
		default:
			return 0;
		}
	case EV_BALANCE:
		if (!data_low(data, data_len))
			return 0;
		out[0] = WH_BALANCE_LOW;
		return 1;
	default:
		return 0;
	}
}

int outbox_envelope(struct buf *out, int event, const char *delivery_id, int64_t ts_ms,
		    const char *org, const char *job, const char *data_json, size_t data_len)
{
	struct jw w;

	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_kv_str(&w, "version", "1");
	jw_kv_str(&w, "event", wh_event_name(event));
	jw_kv_str(&w, "deliveryId", delivery_id);
	jw_kv_int(&w, "timestamp", ts_ms);
	jw_kv_str(&w, "orgId", org);
	if (job && *job)
		jw_kv_str(&w, "jobId", job);
	else
		jw_kv_null(&w, "jobId");
	jw_key(&w, "data");
	jw_raw(&w, data_json, data_len);
	jw_obj_end(&w);
	return jw_finish(&w);
}

/* data of a job event: {jobId, jobType, status, test, (error | cost)}. j is
 * the job as it is now (it may have moved on), or NULL. */
static void job_data(struct buf *b, int event, const struct event_rec *ev, const char *data,
		     size_t data_len, const struct job *j, const char *job, const char *type)
{
	cJSON *d = data_len ? cJSON_ParseWithLength(data, data_len) : NULL;
	int status = event == WH_JOB_STARTED ? JOB_RUNNING : ev->status;
	struct jw w;

	buf_reset(b);
	jw_init(&w, b);
	jw_obj_begin(&w);
	jw_kv_str(&w, "jobId", job);
	jw_kv_str(&w, "jobType", type);
	jw_kv_str(&w, "status", job_status_name(status));
	jw_kv_int(&w, "attempt", ev->attempt);
	jw_kv_bool(&w, "test", ev->test != 0);
	if (event == WH_JOB_FAILED) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(d, "code");
		const char *c = cJSON_IsString(code) ? code->valuestring
			      : j && j->status == JOB_FAILED ? j->error_code : "PROVIDER_ERROR";
		jw_key(&w, "error");
		jw_obj_begin(&w);
		jw_kv_str(&w, "code", c);
		jw_key(&w, "message");
		if (j && j->status == JOB_FAILED && !strcmp(j->error_code, c) && j->error_message.n)
			jw_strn(&w, j->error_message.p, MIN(j->error_message.n, MAX_ERROR_MESSAGE));
		else
			jw_null(&w);
		jw_obj_end(&w);
	} else if (event == WH_JOB_COMPLETED) {
		const cJSON *cost = cJSON_GetObjectItemCaseSensitive(d, "cost");
		jw_key(&w, "cost");
		jw_money(&w, cJSON_IsNumber(cost) ? (int64_t)cost->valuedouble : j ? j->cost : 0);
	}
	jw_obj_end(&w);
	cJSON_Delete(d);
}

static void balance_data(struct buf *b, const struct event_rec *ev)
{
	struct jw w;
	buf_reset(b);
	jw_init(&w, b);
	jw_obj_begin(&w);
	jw_key(&w, "balance");
	jw_money(&w, ev->amount);
	jw_obj_end(&w);
}

/* ---- making deliveries --------------------------------------------------------- */

static void ids_push(struct wh_ids *ids, const char *id)
{
	if (!ids)
		return;
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 64;
		ids->v = xrealloc(ids->v, ids->cap * sizeof(*ids->v));
	}
	snprintf(ids->v[ids->n++], WH_ID_MAX, "%s", id);
}

static int make_delivery(struct outbox *ob, MDB_txn *t, uint64_t seq, const struct event_rec *ev,
			 int event, const char *org, const char *job, const char *endpoint,
			 const char *cb, size_t cb_len, const struct buf *data, int64_t now,
			 struct wh_ids *made)
{
	struct store *s = ob->s;
	struct wh_delivery d;
	struct buf body;
	unsigned char k[80];
	MDB_val key, val;
	int r;

	memset(&d, 0, sizeof(d));
	id_new_sorted(d.id, sizeof(d.id), "del_", 20);
	d.status = WH_PENDING;
	d.event = (uint8_t)event;
	d.callback = endpoint == NULL;
	d.seq = seq;
	d.created_at = now;
	d.next_at = now;
	snprintf(d.endpoint, sizeof(d.endpoint), "%s", endpoint ? endpoint : "");
	snprintf(d.org, sizeof(d.org), "%s", org);
	snprintf(d.job, sizeof(d.job), "%s", job ? job : "");
	buf_init(&body);
	if ((r = outbox_envelope(&body, event, d.id, ev->at, org, job, buf_cstr(data),
				 data->len)) < 0) {
		buf_free(&body);
		return r;
	}
	d.body_len = (uint32_t)body.len;
	d.cb_len = (uint32_t)cb_len;
	key.mv_data = k;
	key.mv_size = payload_key(k, d.id);
	val.mv_size = body.len + cb_len;
	r = store_err(mdb_put(t, s->dbi[DB_DELIVERIES], &key, &val, MDB_RESERVE));
	if (r == 0) {
		memcpy(val.mv_data, body.data, body.len);
		if (cb_len)
			memcpy((char *)val.mv_data + body.len, cb, cb_len);
	}
	buf_free(&body);
	if (r < 0 || (r = deliv_put(s, t, &d)) < 0 || (r = due_key_set(s, t, now, d.id, 1)) < 0)
		return r;
	if (endpoint) {
		size_t pn = index_key(k, endpoint, "");
		be64_put(k + pn, ~(uint64_t)now);
		memcpy(k + pn + 8, d.id, strlen(d.id));
		if ((r = store_put(s, t, DB_DELIVERIES, k, pn + 8 + strlen(d.id), "", 0)) < 0)
			return r;
	}
	ids_push(made, d.id);
	return 1;
}

/* balance.low fires on the way down only: "whlow:" org is set while low. */
static int low_flag(struct store *s, MDB_txn *t, const char *org, int set, int *was)
{
	char k[64];
	int n = snprintf(k, sizeof(k), "whlow:%.40s", org), r;
	MDB_val v;

	r = store_get(s, t, DB_META, k, (size_t)n, &v);
	if (r < 0 && r != -ENOENT)
		return r;
	*was = r == 0;
	if (set && !*was)
		return store_put(s, t, DB_META, k, (size_t)n, "", 0);
	if (!set && *was)
		return store_del(s, t, DB_META, k, (size_t)n);
	return 0;
}

/* What outbox_event needs of an org's endpoints, cached for the events of
 * one outbox_advance call (endpoints do not change inside it): reading the
 * full records (2.4 KiB each) for every event was a good part of the
 * notifier's time in its write transaction. */
struct ep_brief {
	char id[WH_ID_MAX];
	uint32_t events, active;
};

struct ep_org {
	char org[ORG_ID_MAX + 1];
	int n;
	struct ep_brief eps[WH_MAX_ENDPOINTS];
};

#define EP_CACHE_ORGS 16

struct ep_cache {
	struct ep_org v[EP_CACHE_ORGS];
	unsigned n, next;	/* used slots; the next one to replace */
};

static const struct ep_org *org_endpoints(struct store *s, MDB_txn *t, struct ep_cache *cache,
					  struct ep_org *tmp, const char *org, int *err)
{
	struct wh_endpoint eps[WH_MAX_ENDPOINTS];
	struct ep_org *o = tmp;
	int n;

	for (unsigned i = 0; cache && i < cache->n; i++)
		if (!strcmp(cache->v[i].org, org))
			return &cache->v[i];
	if ((n = wh_endpoint_list(s, t, org, eps)) < 0) {
		*err = n;
		return NULL;
	}
	if (cache) {
		o = &cache->v[cache->next];
		cache->next = (cache->next + 1) % EP_CACHE_ORGS;
		cache->n = MAX(cache->n, cache->next ? cache->next : EP_CACHE_ORGS);
	}
	snprintf(o->org, sizeof(o->org), "%s", org);
	o->n = n;
	for (int k = 0; k < n; k++) {
		memcpy(o->eps[k].id, eps[k].id, WH_ID_MAX);
		o->eps[k].events = eps[k].events;
		o->eps[k].active = eps[k].active;
	}
	return o;
}

static int event_to_deliveries(struct outbox *ob, MDB_txn *t, struct ep_cache *cache,
			       uint64_t seq, const struct event_rec *ev, const char *data,
			       size_t data_len, int64_t now, struct wh_ids *made);

int outbox_event(struct outbox *ob, MDB_txn *t, uint64_t seq, const struct event_rec *ev,
		 const char *data, size_t data_len, int64_t now, struct wh_ids *made)
{
	return event_to_deliveries(ob, t, NULL, seq, ev, data, data_len, now, made);
}

static int event_to_deliveries(struct outbox *ob, MDB_txn *t, struct ep_cache *cache,
			       uint64_t seq, const struct event_rec *ev, const char *data,
			       size_t data_len, int64_t now, struct wh_ids *made)
{
	struct store *s = ob->s;
	struct ep_org tmp;
	const struct ep_org *eo;
	const struct ep_brief *eps;
	char org[ORG_ID_MAX + 1], job[sizeof(ev->job) + 1], type[sizeof(ev->type) + 1];
	char *cb = NULL, *msg = NULL;
	size_t cb_len = 0;
	struct buf d;
	struct job j;
	int evs[2], ne, neps, have_job = 0, made_n = 0, r = 0, was;

	field(org, sizeof(org), ev->org, sizeof(ev->org));
	field(job, sizeof(job), ev->job, sizeof(ev->job));
	field(type, sizeof(type), ev->type, sizeof(ev->type));
	ne = outbox_map(ev, data, data_len, evs);
	if (ev->kind == EV_BALANCE && ne == 0)
		return low_flag(s, t, org, 0, &was);	/* back above: the next drop fires */
	if (ne == 0)
		return 0;
	if (!(eo = org_endpoints(s, t, cache, &tmp, org, &r)))
		return r;
	eps = eo->eps;
	neps = eo->n;
	{
		/* Most events go nowhere (no endpoint wants them, and only a
		 * terminal status event can carry a per-job callback): skip
		 * reading the job for those. */
		int wanted = 0;
		for (int i = 0; i < ne; i++)
			for (int k = 0; k < neps; k++)
				wanted |= eps[k].active && (eps[k].events & WH_BIT(evs[i]));
		if (!wanted && !(ev->kind == EV_JOB_STATUS && (JOB_BIT(ev->status) & JOB_TERMINAL_MASK)))
			return 0;
	}
	if (ev->kind != EV_BALANCE) {
		/* The job's callback and failure message, copied now: j's variable
		 * fields point into the map, and writes follow. */
		if ((r = job_get(s, t, job, &j)) == 0) {
			have_job = 1;
			if (j.callback.n && j.callback.n <= MAX_CALLBACK_JSON &&
			    (JOB_BIT(ev->status) & JOB_TERMINAL_MASK) && ev->kind == EV_JOB_STATUS) {
				cb = xstrndup(j.callback.p, j.callback.n);
				cb_len = j.callback.n;
			}
			if (j.error_message.n)
				msg = xstrndup(j.error_message.p, MIN(j.error_message.n, MAX_ERROR_MESSAGE));
			j.error_message.p = msg;
			j.error_message.n = msg ? (uint32_t)strlen(msg) : 0;
			j.idem.p = j.inputs.p = j.params.p = j.output.p = j.error_detail.p = NULL;
			j.step.p = j.callback.p = j.client.p = NULL;
		} else if (r != -ENOENT && r != -EBADMSG) {
			return r;
		}
		r = 0;
	}
	buf_init(&d);
	for (int i = 0; i < ne && r >= 0; i++) {
		int e = evs[i], want = 0;
		for (int k = 0; k < neps; k++)
			want |= eps[k].active && (eps[k].events & WH_BIT(e));
		if (e == WH_BALANCE_LOW) {
			if (!want)
				continue;	/* nobody listens: keep no state */
			if ((r = low_flag(s, t, org, 1, &was)) < 0 || was)
				continue;
			balance_data(&d, ev);
		} else {
			job_data(&d, e, ev, data, data_len, have_job ? &j : NULL, job, type);
		}
		for (int k = 0; k < neps && r >= 0; k++)
			if (eps[k].active && (eps[k].events & WH_BIT(e)) &&
			    (r = make_delivery(ob, t, seq, ev, e, org, e == WH_BALANCE_LOW ? NULL : job,
					       eps[k].id, NULL, 0, &d, now, made)) > 0)
				made_n += r;
		/* the callback goes with the terminal event (the last one) */
		if (r >= 0 && cb && i == ne - 1) {
			cJSON *c = cJSON_ParseWithLength(cb, cb_len);
			char sec[WH_SECRET_MAX];
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "verify")))
				r = outbox_callback_secret(s, t, org, 1, sec);
			cJSON_Delete(c);
			if (r >= 0 && (r = make_delivery(ob, t, seq, ev, e, org, job, NULL, cb, cb_len,
							 &d, now, made)) > 0)
				made_n += r;
		}
	}
	buf_free(&d);
	free(cb);
	free(msg);
	return r < 0 ? r : made_n;
}

int outbox_cursor(struct store *s, MDB_txn *t, uint64_t *ret)
{
	return store_get_u64(s, t, CURSOR_KEY, ret);
}

int outbox_advance(struct outbox *ob, MDB_txn *t, unsigned max, int64_t now,
		   struct wh_ids *made, outbox_each_fn each, void *user, uint64_t *cursor)
{
	struct store *s = ob->s;
	unsigned char kb[8];
	uint64_t cur, last;
	MDB_cursor *c;
	MDB_val k, v;
	unsigned n = 0;
	int r, rc;
	struct ep_cache *cache = xmalloc(sizeof(*cache));

	cache->n = cache->next = 0;
	if ((r = outbox_cursor(s, t, &cur)) < 0) {
		free(cache);
		return r;
	}
	last = cur;
	be64_put(kb, cur + 1);
	k.mv_data = kb;
	k.mv_size = 8;
	if ((rc = mdb_cursor_open(t, s->dbi[DB_EVENTS], &c))) {
		free(cache);
		return store_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct event_rec ev;
		const char *data;
		uint64_t seq;
		if (k.mv_size != 8)
			continue;
		seq = be64_get(k.mv_data);
		last = seq;
		n++;
		if (v.mv_size < sizeof(ev))
			continue;	/* not ours to judge: skip it */
		memcpy(&ev, v.mv_data, sizeof(ev));
		if (ev.data_len > v.mv_size - sizeof(ev))
			continue;
		data = (const char *)v.mv_data + sizeof(ev);
		if (each)
			each(user, seq, &ev, data, ev.data_len);
		if ((r = event_to_deliveries(ob, t, cache, seq, &ev, data, ev.data_len, now,
					     made)) < 0)
			break;
	}
	mdb_cursor_close(c);
	free(cache);
	if (r < 0)
		return r;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_err(rc);
	if (last != cur) {
		be64_put(kb, last);
		if ((r = store_put(s, t, DB_META, CURSOR_KEY, strlen(CURSOR_KEY), kb, 8)) < 0)
			return r;
	}
	if (cursor)
		*cursor = last;
	return (int)n;
}

/* ---- attempts ------------------------------------------------------------------------ */

int64_t outbox_backoff_ms(const struct config *cfg, unsigned n, int64_t retry_after_s,
			  uint64_t *rng)
{
	int64_t cap = cfg->webhooks.backoff_max_ms, d = cfg->webhooks.backoff_ms;

	for (unsigned i = 1; i < n && d < cap; i++)
		d *= 2;
	if (rng && d >= 4)
		d += (int64_t)(rand_next(rng) % (uint64_t)(d / 4 + 1));
	if (d > cap)
		d = cap;
	if (retry_after_s >= 0) {
		int64_t ra = MIN(retry_after_s, (int64_t)WH_RETRY_AFTER_MAX_S) * 1000;
		d = MAX(d, ra);
	}
	return d;
}

int outbox_outcome(struct outbox *ob, MDB_txn *t, const struct wh_outcome *o, int64_t now,
		   struct wh_next *ret)
{
	struct store *s = ob->s;
	const struct config *cfg = ob->cfg;
	struct wh_delivery d;
	struct wh_endpoint e;
	int r, have_e = 0, ok, dirty_e = 0;

	memset(ret, 0, sizeof(*ret));
	if ((r = wh_delivery_get(s, t, o->id, &d, NULL, NULL)) == -ENOENT || r == -EBADMSG ||
	    (r == 0 && (d.status != WH_PENDING || d.attempts + 1 != o->attempt))) {
		ret->stale = 1;
		return 0;
	}
	if (r < 0)
		return r;
	if (!d.callback) {
		if ((r = wh_endpoint_get(s, t, d.endpoint, &e)) == 0)
			have_e = 1;
		else if (r != -ENOENT && r != -EBADMSG)
			return r;
	}
	ret->created_at = d.created_at;
	d.attempts = o->attempt;
	d.last_status = o->status;
	d.last_at = now;
	snprintf(d.last_error, sizeof(d.last_error), "%s", o->error);
	ok = !o->final && o->status >= 200 && o->status < 300;
	if ((r = due_key_set(s, t, d.next_at, d.id, 0)) < 0)
		return r;
	if (ok) {
		d.status = WH_DELIVERED;
		d.delivered_at = now;
		d.next_at = 0;
		ret->delivered = 1;
		if (have_e && e.failures) {
			e.failures = 0;
			dirty_e = 1;
		}
	} else if (o->final || o->status == 410 || d.attempts >= (uint32_t)cfg->webhooks.max_attempts) {
		d.status = WH_FAILED;
		d.next_at = 0;
		ret->failed = 1;
		if (have_e && e.active && o->status == 410) {
			e.active = 0;
			e.disabled = WH_DISABLED_GONE;
			ret->disabled = dirty_e = 1;
		} else if (have_e && e.active) {
			dirty_e = 1;
			if (++e.failures >= (uint32_t)cfg->webhooks.disable_after_failures) {
				e.active = 0;
				e.disabled = WH_DISABLED_FAILURES;
				ret->disabled = 1;
			}
		}
	} else {
		d.next_at = now + outbox_backoff_ms(cfg, d.attempts, o->retry_after_s, &ob->rng);
		ret->due = d.next_at;
		ret->attempt = d.attempts + 1;
		if ((r = due_key_set(s, t, d.next_at, d.id, 1)) < 0 ||
		    (r = timer_record(s, t, d.next_at, TIMER_WEBHOOK, d.id, ret->attempt)) < 0)
			return r;
	}
	if (dirty_e) {
		e.updated_at = now;
		if ((r = wh_endpoint_put(s, t, &e)) < 0)
			return r;
	}
	return deliv_put(s, t, &d);
}

int outbox_due(struct outbox *ob, MDB_txn *t, int64_t now, unsigned max, unsigned max_scan,
	       outbox_due_fn fn, void *user)
{
	MDB_cursor *c;
	MDB_val k, v;
	unsigned taken = 0, seen = 0;
	int rc;

	if ((rc = mdb_cursor_open(t, ob->s->dbi[DB_DELIV_DUE], &c)))
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && taken < max && seen < max_scan;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), seen++) {
		char id[WH_ID_MAX];
		if (k.mv_size <= 8 || k.mv_size - 8 >= sizeof(id))
			continue;
		if ((int64_t)be64_get(k.mv_data) > now)
			break;
		memcpy(id, (const char *)k.mv_data + 8, k.mv_size - 8);
		id[k.mv_size - 8] = '\0';
		taken += fn(user, id) > 0;
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? (int)taken : store_err(rc);
}

int64_t outbox_next_due(struct outbox *ob, MDB_txn *t)
{
	MDB_cursor *c;
	MDB_val k, v;
	int64_t due = INT64_MAX;

	if (mdb_cursor_open(t, ob->s->dbi[DB_DELIV_DUE], &c))
		return INT64_MAX;
	if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size > 8)
		due = (int64_t)be64_get(k.mv_data);
	mdb_cursor_close(c);
	return due;
}
