/* api_webhooks.c - webhook endpoints (RENDOBAR-API.md §3.1), served under
 * both spellings:
 *
 *   /webhooks/endpoints                 POST create {name,url,subscribedEvents?,active?},
 *                                       GET list
 *   /webhook-endpoints                  (the same, older docs)
 *     /{id}                             GET, PATCH {name,url,subscribedEvents,active}, DELETE
 *     /{id}/deliveries                  GET ?limit&offset&status
 *     /{id}/deliveries/{del}/redeliver  POST
 *     /{id}/rotate-secret               POST
 *   /webhooks/deliveries/{del}/redeliver POST (any delivery of the org, callbacks too)
 *   /webhooks/callback-secret           GET: the secret that signs per-job callbacks
 *                                       with verify:true (made on first use)
 *
 * The signing secret is in the answer to create and rotate-secret only.
 * Another org's endpoint or delivery is 404. Storage is outbox.h's. */
#include "api_int.h"
#include "jobring/outbox.h"
#include "jobring/util.h"
#include "jobring/whsign.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_SCAN_MAX 100000

static const char *const disabled_names[] = {
	[WH_ENABLED] = NULL, [WH_DISABLED_USER] = "manual",
	[WH_DISABLED_FAILURES] = "failures", [WH_DISABLED_GONE] = "gone",
};

static void endpoint_json(struct jw *w, const struct wh_endpoint *e, const char *secret,
			  int64_t now)
{
	jw_obj_begin(w);
	jw_kv_str(w, "id", e->id);
	jw_kv_str(w, "name", e->name);
	jw_kv_str(w, "url", e->url);
	jw_key(w, "subscribedEvents");
	jw_arr_begin(w);
	for (int ev = 1; ev < WH_EVENT_MAX; ev++)
		if (e->events & WH_BIT(ev))
			jw_str(w, wh_event_name(ev));
	jw_arr_end(w);
	jw_kv_bool(w, "active", e->active != 0);
	jw_kv_str(w, "disabledReason", e->disabled < ARRAY_SIZE(disabled_names)
				       ? disabled_names[e->disabled] : NULL);
	jw_kv_int(w, "consecutiveFailures", e->failures);
	jw_kv_int(w, "createdAt", e->created_at);
	jw_kv_int(w, "updatedAt", e->updated_at);
	if (e->prev_secret[0] && e->prev_until > now)
		jw_kv_int(w, "previousSecretExpiresAt", e->prev_until);
	else
		jw_kv_null(w, "previousSecretExpiresAt");
	if (secret)
		jw_kv_str(w, "signingSecret", secret);
	jw_obj_end(w);
}

static void delivery_json(struct jw *w, const struct wh_delivery *d)
{
	static const char *const st[] = { "pending", "pending", "delivered", "failed" };
	jw_obj_begin(w);
	jw_kv_str(w, "id", d->id);
	jw_kv_str(w, "endpointId", d->endpoint[0] ? d->endpoint : NULL);
	jw_kv_str(w, "kind", d->callback ? "callback" : "endpoint");
	jw_kv_str(w, "event", wh_event_name(d->event));
	jw_kv_str(w, "status", st[d->status < ARRAY_SIZE(st) ? d->status : 0]);
	jw_kv_int(w, "attempts", d->attempts);
	if (d->last_status)
		jw_kv_int(w, "lastStatus", d->last_status);
	else
		jw_kv_null(w, "lastStatus");
	jw_kv_str(w, "lastError", d->last_error[0] ? d->last_error : NULL);
	if (d->status == WH_PENDING)
		jw_kv_int(w, "nextAttemptAt", d->next_at);
	else
		jw_kv_null(w, "nextAttemptAt");
	jw_kv_int(w, "createdAt", d->created_at);
	if (d->delivered_at)
		jw_kv_int(w, "deliveredAt", d->delivered_at);
	else
		jw_kv_null(w, "deliveredAt");
	if (d->last_at)
		jw_kv_int(w, "lastAttemptAt", d->last_at);
	else
		jw_kv_null(w, "lastAttemptAt");
	jw_kv_str(w, "jobId", d->job[0] ? d->job : NULL);
	jw_kv_uint(w, "eventSeq", d->seq);
	jw_obj_end(w);
}

/* 400 VALIDATION_ERROR with details [{path:[path], message}]; aborts child. */
static void invalid(struct httpd_req *req, MDB_txn *child, const char *path, const char *message)
{
	struct buf b;
	struct jw w;

	store_abort(child);
	buf_init(&b);
	jw_init(&w, &b);
	jw_arr_begin(&w);
	jw_obj_begin(&w);
	jw_key(&w, "path");
	jw_arr_begin(&w);
	jw_str(&w, path);
	jw_arr_end(&w);
	jw_kv_str(&w, "message", message);
	jw_obj_end(&w);
	jw_arr_end(&w);
	{
		char m[300];
		snprintf(m, sizeof(m), "%s %s", path, message);
		api_err(req, 400, "VALIDATION_ERROR", m, buf_cstr(&b));
	}
	buf_free(&b);
}

/* Authenticate (read txn) and rate-limit; -1 when answered. */
static int authed(struct api *api, struct httpd_req *req, struct auth *a)
{
	MDB_txn *t;
	int r;

	if ((r = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, r);
		return -1;
	}
	r = api_auth(api, req, t, a);
	store_abort(t);
	if (r < 0 || api_rate(api, req, a) < 0)
		return -1;
	return 0;
}

/* The endpoint in segment i, if it is this org's (404 answered → -1). */
static int own_endpoint(struct api *api, struct httpd_req *req, MDB_txn *t, const struct auth *a,
			const struct route *r, int i, struct wh_endpoint *e)
{
	char id[WH_ID_MAX];
	if (seg_copy(r, i, id, sizeof(id)) < 0 || wh_endpoint_get(api->store, t, id, e) < 0 ||
	    strcmp(e->org, a->org.id) != 0) {
		store_abort(t);
		api_err(req, 404, "NOT_FOUND", "Webhook endpoint not found", NULL);
		return -1;
	}
	return 0;
}

/* Check and apply the fields of a create or PATCH body to e; -1 when a 400
 * was answered (child aborted). */
static int apply_fields(struct api *api, struct httpd_req *req, MDB_txn *child, cJSON *body,
			struct wh_endpoint *e, int create)
{
	static const char *const known[] = { "name", "url", "subscribedEvents", "active", NULL };
	const cJSON *it, *v;
	char why[128];

	cJSON_ArrayForEach(it, body) {
		int ok = 0;
		for (const char *const *k = known; *k; k++)
			ok |= strcmp(*k, it->string) == 0;
		if (!ok) {
			invalid(req, child, it->string, "is not a known field");
			return -1;
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(body, "name");
	if (v || create) {
		size_t n = cJSON_IsString(v) ? strlen(v->valuestring) : 0, cp = 0;
		if (n)
			cp = utf8_codepoints(v->valuestring, n);
		int ctl = 0;
		for (size_t i = 0; i < n; i++)
			ctl |= (unsigned char)v->valuestring[i] < 0x20 || v->valuestring[i] == 0x7f;
		if (!cJSON_IsString(v) || cp < 1 || cp > WH_NAME_CHARS || n >= WH_NAME_MAX || ctl) {
			invalid(req, child, "name", "must be a string of 1 to 50 characters");
			return -1;
		}
		snprintf(e->name, sizeof(e->name), "%s", v->valuestring);
	}
	v = cJSON_GetObjectItemCaseSensitive(body, "url");
	if (v || create) {
		if (!cJSON_IsString(v)) {
			invalid(req, child, "url", "is required and must be a string");
			return -1;
		}
		if (wh_url_check(v->valuestring, api->cfg->webhooks.allow_private_targets, why,
				 sizeof(why)) < 0) {
			invalid(req, child, "url", why);
			return -1;
		}
		snprintf(e->url, sizeof(e->url), "%s", v->valuestring);
	}
	v = cJSON_GetObjectItemCaseSensitive(body, "subscribedEvents");
	if (v) {
		uint32_t evs = 0;
		if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > 32) {
			invalid(req, child, "subscribedEvents", "must be a non-empty array of event names");
			return -1;
		}
		cJSON_ArrayForEach(it, v) {
			int ev = cJSON_IsString(it) ? wh_event_parse(it->valuestring) : 0;
			if (!ev) {
				invalid(req, child, "subscribedEvents",
					"has an unknown event (known: job.created job.started job.completed "
					"job.failed job.cancelled balance.low)");
				return -1;
			}
			evs |= WH_BIT(ev);
		}
		e->events = evs;
	} else if (create) {
		e->events = WH_DEFAULT_EVENTS;
	}
	v = cJSON_GetObjectItemCaseSensitive(body, "active");
	if (v) {
		if (!cJSON_IsBool(v)) {
			invalid(req, child, "active", "must be true or false");
			return -1;
		}
		if (cJSON_IsTrue(v) && !e->active) {
			e->active = 1;
			e->disabled = WH_ENABLED;
			e->failures = 0;
		} else if (cJSON_IsFalse(v) && e->active) {
			e->active = 0;
			e->disabled = WH_DISABLED_USER;
		}
	}
	return 0;
}

static void answer_endpoint(struct api *api, MDB_txn *child, struct httpd_req *req, int status,
			    const struct wh_endpoint *e, const char *secret, int64_t now)
{
	struct jw w;
	buf_reset(&api->scratch);
	jw_init(&w, &api->scratch);
	endpoint_json(&w, e, secret, now);
	api_wdone(api, child, req, status, &api->scratch, NULL);
}

static void create(struct api *api, struct httpd_req *req)
{
	struct auth a;
	struct wh_endpoint e, list[WH_MAX_ENDPOINTS];
	MDB_txn *t;
	cJSON *body;
	int64_t now = now_ms();
	int r;

	if (authed(api, req, &a) < 0 || !(body = api_body_json(req)))
		return;
	if ((r = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, r);
		goto out;
	}
	memset(&e, 0, sizeof(e));
	e.active = 1;
	if (apply_fields(api, req, t, body, &e, 1) < 0)
		goto out;
	if ((r = wh_endpoint_list(api->store, t, a.org.id, list)) < 0) {
		api_store_error(api, t, req, r);
		goto out;
	}
	if (r >= WH_MAX_ENDPOINTS) {
		api_wfail(api, t, req, 409, "CONFLICT", "An organization has at most 10 webhook endpoints");
		goto out;
	}
	id_new(e.id, sizeof(e.id), "we_", 20);
	snprintf(e.org, sizeof(e.org), "%s", a.org.id);
	whsign_new_secret(e.secret, sizeof(e.secret));
	e.created_at = e.updated_at = now;
	if ((r = wh_endpoint_put(api->store, t, &e)) < 0) {
		api_store_error(api, t, req, r);
		goto out;
	}
	answer_endpoint(api, t, req, 201, &e, e.secret, now);
out:
	cJSON_Delete(body);
}

static void list(struct api *api, struct httpd_req *req)
{
	struct auth a;
	struct wh_endpoint eps[WH_MAX_ENDPOINTS];
	MDB_txn *t;
	struct jw w;
	int n, r;

	if (authed(api, req, &a) < 0)
		return;
	if ((r = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, r);
		return;
	}
	if ((n = wh_endpoint_list(api->store, t, a.org.id, eps)) < 0) {
		api_store_error(api, t, req, n);
		return;
	}
	store_abort(t);
	buf_reset(&api->scratch);
	buf_puts(&api->scratch, "{\"data\":");
	jw_init(&w, &api->scratch);
	jw_arr_begin(&w);
	for (int i = 0; i < n; i++)
		endpoint_json(&w, &eps[i], NULL, now_ms());
	jw_arr_end(&w);
	buf_printf(&api->scratch, ",\"meta\":{\"total\":%d,\"page\":1,\"limit\":%d}}", n,
		   WH_MAX_ENDPOINTS);
	httpd_respond(req, 200, "application/json", NULL, api->scratch.data, api->scratch.len);
}

static void get_one(struct api *api, struct httpd_req *req, struct route *r, int b)
{
	struct auth a;
	struct wh_endpoint e;
	MDB_txn *t;
	struct jw w;
	int rc;

	if (authed(api, req, &a) < 0)
		return;
	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (own_endpoint(api, req, t, &a, r, b, &e) < 0)
		return;
	store_abort(t);
	buf_reset(&api->scratch);
	jw_init(&w, &api->scratch);
	endpoint_json(&w, &e, NULL, now_ms());
	api_ok(req, 200, &api->scratch);
}

/* PATCH, DELETE and rotate-secret: one write each. */
enum change { CH_PATCH, CH_DELETE, CH_ROTATE };

static void change(struct api *api, struct httpd_req *req, struct route *r, int b, enum change ch)
{
	struct auth a;
	struct wh_endpoint e;
	MDB_txn *t;
	cJSON *body = NULL;
	int64_t now = now_ms();
	int rc;

	if (authed(api, req, &a) < 0)
		return;
	if (ch == CH_PATCH && !(body = api_body_json(req)))
		return;
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		goto out;
	}
	if (own_endpoint(api, req, t, &a, r, b, &e) < 0)
		goto out;
	if (ch == CH_DELETE) {
		if ((rc = wh_endpoint_del(api->store, t, &e)) < 0) {
			api_store_error(api, t, req, rc);
			goto out;
		}
		buf_reset(&api->scratch);
		buf_printf(&api->scratch, "{\"id\":\"%s\",\"deleted\":true}", e.id);
		api_wdone(api, t, req, 200, &api->scratch, NULL);
		goto out;
	}
	if (ch == CH_PATCH && apply_fields(api, req, t, body, &e, 0) < 0)
		goto out;
	if (ch == CH_ROTATE) {
		memcpy(e.prev_secret, e.secret, sizeof(e.prev_secret));
		e.prev_until = now + WH_ROTATE_MS;
		whsign_new_secret(e.secret, sizeof(e.secret));
	}
	e.updated_at = now;
	if ((rc = wh_endpoint_put(api->store, t, &e)) < 0) {
		api_store_error(api, t, req, rc);
		goto out;
	}
	answer_endpoint(api, t, req, 200, &e, ch == CH_ROTATE ? e.secret : NULL, now);
out:
	cJSON_Delete(body);
}

static int qint(struct httpd_req *req, const char *key, int64_t min, int64_t max, int64_t dflt,
		int64_t *ret)
{
	char v[32];
	*ret = dflt;
	if (!req->query || http_query_get(req->query, req->query_len, key, v, sizeof(v)) < 0)
		return 0;
	return parse_i64(v, min, max, ret);
}

static void deliveries(struct api *api, struct httpd_req *req, struct route *r, int b)
{
	struct auth a;
	struct wh_endpoint e;
	MDB_txn *t;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned char pre[48];
	size_t pn, total = 0, shown = 0;
	int64_t limit, offset;
	int status = 0, rc;
	char sv[16];
	struct jw w;

	if (authed(api, req, &a) < 0)
		return;
	if (qint(req, "limit", 1, 100, 50, &limit) < 0 || qint(req, "offset", 0, 1000000, 0, &offset) < 0) {
		api_err(req, 400, "VALIDATION_ERROR", "limit must be 1..100 and offset 0..1000000", NULL);
		return;
	}
	if (req->query && http_query_get(req->query, req->query_len, "status", sv, sizeof(sv)) >= 0) {
		status = !strcmp(sv, "pending") ? WH_PENDING : !strcmp(sv, "delivered") ? WH_DELIVERED
		       : !strcmp(sv, "failed") ? WH_FAILED : -1;
		if (status < 0) {
			api_err(req, 400, "VALIDATION_ERROR", "status must be pending, delivered or failed",
				NULL);
			return;
		}
	}
	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (own_endpoint(api, req, t, &a, r, b, &e) < 0)
		return;
	pn = strlen(e.id);
	memcpy(pre, e.id, pn);
	pre[pn++] = 0;
	buf_reset(&api->scratch);
	buf_puts(&api->scratch, "{\"data\":");
	jw_init(&w, &api->scratch);
	jw_arr_begin(&w);
	mdb_cursor_open(t, api->store->dbi[DB_DELIVERIES], &cur);
	k.mv_data = pre;
	k.mv_size = pn;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && total < LIST_SCAN_MAX && k.mv_size > pn + 8 && k.mv_size - pn - 8 < WH_ID_MAX &&
	     memcmp(k.mv_data, pre, pn) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct wh_delivery d;
		char id[WH_ID_MAX];
		memcpy(id, (const char *)k.mv_data + pn + 8, k.mv_size - pn - 8);
		id[k.mv_size - pn - 8] = '\0';
		if (wh_delivery_get(api->store, t, id, &d, NULL, NULL) < 0 ||
		    (status && d.status != status))
			continue;
		if (total++ >= (size_t)offset && shown < (size_t)limit) {
			delivery_json(&w, &d);
			shown++;
		}
	}
	mdb_cursor_close(cur);
	store_abort(t);
	jw_arr_end(&w);
	buf_printf(&api->scratch, ",\"meta\":{\"total\":%zu,\"page\":%lld,\"limit\":%lld,\"offset\":%lld}}",
		   total, (long long)(offset / limit + 1), (long long)limit, (long long)offset);
	httpd_respond(req, 200, "application/json", NULL, api->scratch.data, api->scratch.len);
}

/* Redeliver segment di; when b >= 0 the delivery must belong to the
 * endpoint in segment b, else to the org. */
static void redeliver(struct api *api, struct httpd_req *req, struct route *r, int b, int di)
{
	struct auth a;
	struct wh_endpoint e;
	struct wh_delivery d;
	char id[WH_ID_MAX];
	MDB_txn *t;
	struct jw w;
	struct msg m;
	int rc;

	if (authed(api, req, &a) < 0)
		return;
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (b >= 0 && own_endpoint(api, req, t, &a, r, b, &e) < 0)
		return;
	if (seg_copy(r, di, id, sizeof(id)) < 0 || wh_delivery_get(api->store, t, id, &d, NULL, NULL) < 0 ||
	    strcmp(d.org, a.org.id) != 0 || (b >= 0 && strcmp(d.endpoint, e.id) != 0)) {
		api_wfail(api, t, req, 404, "NOT_FOUND", "Delivery not found");
		return;
	}
	if (!d.callback && (b >= 0 || wh_endpoint_get(api->store, t, d.endpoint, &e) == 0) && !e.active) {
		api_wfail(api, t, req, 409, "CONFLICT", "The endpoint is disabled; enable it first");
		return;
	}
	if ((rc = wh_redeliver(api->store, t, id, now_ms(), &d)) < 0) {
		api_store_error(api, t, req, rc);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.kind = MSG_WEBHOOK_DUE;
	m.timer_kind = TIMER_WEBHOOK;
	m.attempt = d.attempts + 1;
	m.at = m.due = d.next_at;
	snprintf(m.job, sizeof(m.job), "%s", d.id);
	snprintf(m.org, sizeof(m.org), "%s", d.org);
	api_post(api, ACTOR_NOTIFIER, &m);
	buf_reset(&api->scratch);
	jw_init(&w, &api->scratch);
	delivery_json(&w, &d);
	api_wdone(api, t, req, 202, &api->scratch, NULL);
}

static void callback_secret(struct api *api, struct httpd_req *req)
{
	struct auth a;
	char sec[WH_SECRET_MAX];
	MDB_txn *t;
	int rc;

	if (authed(api, req, &a) < 0)
		return;
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if ((rc = outbox_callback_secret(api->store, t, a.org.id, 1, sec)) < 0) {
		api_store_error(api, t, req, rc);
		return;
	}
	buf_reset(&api->scratch);
	buf_printf(&api->scratch, "{\"signingSecret\":\"%s\"}", sec);
	api_wdone(api, t, req, 200, &api->scratch, NULL);
}

static void method_not_allowed(struct httpd_req *req, const char *allow)
{
	char m[64];
	snprintf(m, sizeof(m), "Use %s", allow);
	api_err(req, 405, "METHOD_NOT_ALLOWED", m, NULL);
}

void api_webhooks_route(struct api *api, struct httpd_req *req, struct route *r)
{
	int b, n;

	if (seg_is(r, 0, "webhook-endpoints")) {
		b = 1;
	} else if (seg_is(r, 0, "webhooks") && seg_is(r, 1, "endpoints")) {
		b = 2;
	} else if (seg_is(r, 0, "webhooks") && seg_is(r, 1, "deliveries") && r->nseg == 4 &&
		   seg_is(r, 3, "redeliver")) {
		if (r->is_post)
			redeliver(api, req, r, -1, 2);
		else
			method_not_allowed(req, "POST");
		return;
	} else if (seg_is(r, 0, "webhooks") && seg_is(r, 1, "callback-secret") && r->nseg == 2) {
		if (r->is_get)
			callback_secret(api, req);
		else
			method_not_allowed(req, "GET");
		return;
	} else {
		api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
		return;
	}
	n = r->nseg - b;
	if (n == 0) {
		if (r->is_post)
			create(api, req);
		else if (r->is_get)
			list(api, req);
		else
			method_not_allowed(req, "GET or POST");
	} else if (n == 1) {
		if (r->is_get)
			get_one(api, req, r, b);
		else if (r->is_patch)
			change(api, req, r, b, CH_PATCH);
		else if (r->is_delete)
			change(api, req, r, b, CH_DELETE);
		else
			method_not_allowed(req, "GET, PATCH or DELETE");
	} else if (n == 2 && seg_is(r, b + 1, "deliveries")) {
		if (r->is_get)
			deliveries(api, req, r, b);
		else
			method_not_allowed(req, "GET");
	} else if (n == 2 && seg_is(r, b + 1, "rotate-secret")) {
		if (r->is_post)
			change(api, req, r, b, CH_ROTATE);
		else
			method_not_allowed(req, "POST");
	} else if (n == 4 && seg_is(r, b + 1, "deliveries") && seg_is(r, b + 3, "redeliver")) {
		if (r->is_post)
			redeliver(api, req, r, b, b + 2);
		else
			method_not_allowed(req, "POST");
	} else {
		api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
	}
}
