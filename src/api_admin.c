/* api_admin.c - /admin/… (orgs, credits, keys, dead-letter queue) and the
 * org's own account endpoints (/orgs/current, /billing/…). */
#include "api_int.h"
#include "jobring/lifecycle.h"
#include "jobring/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void org_json(struct jw *w, const struct org_rec *o)
{
	jw_obj_begin(w);
	jw_kv_str(w, "id", o->id);
	jw_kv_str(w, "name", o->name);
	jw_kv_str(w, "plan", o->plan);
	jw_kv_int(w, "balance", o->balance);
	jw_kv_int(w, "held", o->held);
	jw_kv_int(w, "available", o->balance - o->held);
	jw_kv_int(w, "createdAt", o->created_at);
	jw_kv_bool(w, "suspended", (o->flags & ORG_SUSPENDED) != 0);
	jw_obj_end(w);
}

static void plan_limits(struct jw *w, const struct plan_cfg *p)
{
	jw_obj_begin(w);
	jw_kv_int(w, "concurrentJobs", p->concurrent_jobs);
	jw_kv_int(w, "requestsPerMinute", p->requests_per_minute);
	jw_kv_int(w, "apiRequestsPerMinute", p->requests_per_minute);
	jw_kv_int(w, "maxJobTimeout", p->max_job_timeout);
	jw_kv_int(w, "maxInputFileSize", p->max_input_file_size);
	jw_kv_int(w, "queueLimit", p->queue_limit);
	jw_kv_int(w, "maxBatchSize", 1);
	jw_kv_int(w, "priority", p->priority);
	jw_obj_end(w);
}

/* ---- /orgs/current, /billing/state, /billing/balance ------------------------ */

void api_account_route(struct api *api, struct httpd_req *req, struct route *r)
{
	struct auth a;
	MDB_txn *t;
	struct jw w;
	char fmt[32];
	int rc, which;

	if (r->nseg == 2 && seg_is(r, 0, "orgs") && seg_is(r, 1, "current"))
		which = 0;
	else if (r->nseg == 2 && seg_is(r, 0, "billing") && seg_is(r, 1, "state"))
		which = 1;
	else if (r->nseg == 2 && seg_is(r, 0, "billing") && seg_is(r, 1, "balance"))
		which = 2;
	else {
		api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
		return;
	}
	if (!r->is_get) {
		api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
		return;
	}
	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	rc = api_auth(api, req, t, &a);
	store_abort(t);
	if (rc < 0 || api_rate(api, req, &a) < 0)
		return;
	money_format(fmt, sizeof(fmt), a.org.balance);
	buf_reset(&api->scratch);
	jw_init(&w, &api->scratch);
	jw_obj_begin(&w);
	if (which == 0) {
		jw_key(&w, "org");
		jw_obj_begin(&w);
		jw_kv_str(&w, "id", a.org.id);
		jw_kv_str(&w, "name", a.org.name);
		jw_obj_end(&w);
		jw_key(&w, "plan");
		jw_obj_begin(&w);
		jw_kv_str(&w, "name", a.plan->name);
		jw_key(&w, "limits");
		plan_limits(&w, a.plan);
		jw_obj_end(&w);
		jw_key(&w, "balance");
		jw_obj_begin(&w);
		jw_kv_int(&w, "amount", a.org.balance);
		jw_kv_str(&w, "currency", "USD");
		jw_kv_str(&w, "formatted", fmt);
		jw_kv_str(&w, "balanceFormatted", fmt);
		jw_kv_int(&w, "held", a.org.held);
		jw_obj_end(&w);
		jw_kv_bool(&w, "testMode", a.test);
	} else if (which == 1) {
		jw_key(&w, "balance");
		jw_obj_begin(&w);
		jw_key(&w, "amount");
		jw_double(&w, a.org.balance / 1e9);
		jw_kv_int(&w, "nanodollars", a.org.balance);
		jw_kv_str(&w, "formatted", fmt);
		jw_obj_end(&w);
		jw_key(&w, "plan");
		jw_obj_begin(&w);
		jw_kv_str(&w, "slug", a.plan->name);
		jw_kv_str(&w, "name", a.plan->name);
		jw_kv_int(&w, "price", 0);
		jw_key(&w, "limits");
		plan_limits(&w, a.plan);
		jw_obj_end(&w);
		jw_kv_null(&w, "subscription");
		jw_key(&w, "usage");
		jw_obj_begin(&w);
		jw_key(&w, "currentPeriodSpend");
		jw_double(&w, a.org.spent / 1e9);
		jw_kv_uint(&w, "jobCount", a.org.job_count);
		jw_obj_end(&w);
		jw_kv_bool(&w, "isPro", strcmp(a.plan->name, "free") != 0);
		jw_kv_int(&w, "creditBonusRate", 0);
		jw_kv_null(&w, "upgradePlan");
	} else {
		jw_kv_int(&w, "balance", a.org.balance);
		jw_kv_int(&w, "held", a.org.held);
		jw_kv_int(&w, "available", a.org.balance - a.org.held);
		jw_kv_int(&w, "rollover", 0);
		jw_kv_str(&w, "formatted", fmt);
	}
	jw_obj_end(&w);
	api_ok(req, 200, &api->scratch);
}

/* ---- /admin ------------------------------------------------------------------------ */

static int name_ok(const cJSON *n, size_t max)
{
	return cJSON_IsString(n) && n->valuestring[0] && strlen(n->valuestring) <= max &&
	       utf8_valid(n->valuestring, strlen(n->valuestring));
}

static void admin_org_create(struct api *api, struct httpd_req *req)
{
	cJSON *b = api_body_json(req);
	const cJSON *name, *plan;
	struct org_rec o;
	MDB_txn *t;
	struct jw w;
	int rc;

	if (!b)
		return;
	name = cJSON_GetObjectItemCaseSensitive(b, "name");
	plan = cJSON_GetObjectItemCaseSensitive(b, "plan");
	if (!name_ok(name, 63)) {
		api_err(req, 400, "VALIDATION_ERROR", "name: 1 to 63 characters", NULL);
	} else if (plan && (!cJSON_IsString(plan) || !config_plan(api->cfg, plan->valuestring))) {
		api_err(req, 400, "VALIDATION_ERROR", "plan: not a configured plan", NULL);
	} else if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
	} else if ((rc = account_org_create(api->store, t, name->valuestring,
					    plan ? plan->valuestring : "free", now_ms(), &o)) < 0) {
		api_store_error(api, t, req, rc);
	} else {
		buf_reset(&api->scratch);
		jw_init(&w, &api->scratch);
		org_json(&w, &o);
		api_wdone(api, t, req, 201, &api->scratch, NULL);
	}
	cJSON_Delete(b);
}

static void admin_org(struct api *api, struct httpd_req *req, struct route *r)
{
	char id[ORG_ID_MAX];
	struct org_rec o;
	MDB_txn *t;
	struct jw w;
	cJSON *b = NULL;
	int rc;

	if (seg_copy(r, 2, id, sizeof(id)) < 0) {
		api_err(req, 404, "NOT_FOUND", "Org not found", NULL);
		return;
	}
	if (r->nseg == 3 && r->is_get) {
		if ((rc = store_begin(api->store, 1, &t)) < 0) {
			api_store_error(api, NULL, req, rc);
			return;
		}
		rc = org_get(api->store, t, id, &o);
		store_abort(t);
		if (rc < 0) {
			api_err(req, 404, "NOT_FOUND", "Org not found", NULL);
			return;
		}
		buf_reset(&api->scratch);
		jw_init(&w, &api->scratch);
		org_json(&w, &o);
		api_ok(req, 200, &api->scratch);
		return;
	}
	if (!(r->nseg == 3 && r->is_patch) && !(r->nseg == 4 && r->is_post &&
						 (seg_is(r, 3, "credits") || seg_is(r, 3, "keys")))) {
		api_err(req, r->nseg <= 4 ? 405 : 404, r->nseg <= 4 ? "METHOD_NOT_ALLOWED" : "NOT_FOUND",
			"Route not found for this method", NULL);
		return;
	}
	if (!(b = api_body_json(req)))
		return;
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		goto out;
	}
	if (org_get(api->store, t, id, &o) < 0) {
		api_wfail(api, t, req, 404, "NOT_FOUND", "Org not found");
		goto out;
	}
	buf_reset(&api->scratch);
	jw_init(&w, &api->scratch);
	if (r->nseg == 3) {	/* PATCH {plan, name, suspended} */
		const cJSON *plan = cJSON_GetObjectItemCaseSensitive(b, "plan");
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
		const cJSON *susp = cJSON_GetObjectItemCaseSensitive(b, "suspended");
		if (plan && (!cJSON_IsString(plan) || !config_plan(api->cfg, plan->valuestring))) {
			api_wfail(api, t, req, 400, "VALIDATION_ERROR", "plan: not a configured plan");
			goto out;
		}
		if (name && !name_ok(name, 63)) {
			api_wfail(api, t, req, 400, "VALIDATION_ERROR", "name: 1 to 63 characters");
			goto out;
		}
		if (susp && !cJSON_IsBool(susp)) {
			api_wfail(api, t, req, 400, "VALIDATION_ERROR", "suspended: true or false");
			goto out;
		}
		if (plan)
			snprintf(o.plan, sizeof(o.plan), "%s", plan->valuestring);
		if (name)
			snprintf(o.name, sizeof(o.name), "%s", name->valuestring);
		if (susp)
			o.flags = cJSON_IsTrue(susp) ? (o.flags | ORG_SUSPENDED) : (o.flags & ~ORG_SUSPENDED);
		if ((rc = org_put(api->store, t, &o)) < 0) {
			api_store_error(api, t, req, rc);
			goto out;
		}
		org_json(&w, &o);
	} else if (seg_is(r, 3, "credits")) {
		const cJSON *amt = cJSON_GetObjectItemCaseSensitive(b, "amount");
		if (!cJSON_IsNumber(amt) || amt->valuedouble != floor(amt->valuedouble) ||
		    fabs(amt->valuedouble) > 1e15 || amt->valuedouble == 0) {
			api_wfail(api, t, req, 400, "VALIDATION_ERROR",
				  "amount: a non-zero integer number of nanodollars (|amount| <= 1e15)");
			goto out;
		}
		if ((rc = account_grant(api->store, t, id, (int64_t)amt->valuedouble, now_ms(), &o)) < 0) {
			api_store_error(api, t, req, rc);
			goto out;
		}
		jw_obj_begin(&w);
		jw_kv_str(&w, "orgId", o.id);
		jw_kv_int(&w, "balance", o.balance);
		jw_kv_int(&w, "held", o.held);
		jw_obj_end(&w);
	} else {		/* keys */
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
		const cJSON *test = cJSON_GetObjectItemCaseSensitive(b, "test");
		char key[API_KEY_MAX];
		struct key_rec kr;
		if (name && !name_ok(name, 63)) {
			api_wfail(api, t, req, 400, "VALIDATION_ERROR", "name: 1 to 63 characters");
			goto out;
		}
		if (test && !cJSON_IsBool(test)) {
			api_wfail(api, t, req, 400, "VALIDATION_ERROR", "test: true or false");
			goto out;
		}
		if ((rc = account_key_create(api->store, t, id, name ? name->valuestring : "",
					     cJSON_IsTrue(test), now_ms(), key, sizeof(key), &kr)) < 0) {
			api_store_error(api, t, req, rc);
			goto out;
		}
		jw_obj_begin(&w);
		jw_kv_str(&w, "id", kr.id);
		jw_kv_str(&w, "key", key);
		jw_kv_str(&w, "orgId", kr.org);
		jw_kv_str(&w, "name", kr.name);
		jw_kv_bool(&w, "test", kr.test != 0);
		jw_obj_end(&w);
	}
	api_wdone(api, t, req, r->nseg == 4 && seg_is(r, 3, "keys") ? 201 : 200, &api->scratch, NULL);
out:
	cJSON_Delete(b);
}

static void admin_key_delete(struct api *api, struct httpd_req *req, struct route *r)
{
	char id[40];
	MDB_txn *t;
	int rc;

	if (seg_copy(r, 2, id, sizeof(id)) < 0) {
		api_err(req, 404, "NOT_FOUND", "Key not found", NULL);
		return;
	}
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	rc = account_key_delete(api->store, t, id);
	if (rc == -ENOENT) {
		api_wfail(api, t, req, 404, "NOT_FOUND", "Key not found");
		return;
	}
	if (rc < 0) {
		api_store_error(api, t, req, rc);
		return;
	}
	buf_reset(&api->scratch);
	buf_printf(&api->scratch, "{\"id\":\"%s\",\"deleted\":true}", id);
	api_wdone(api, t, req, 200, &api->scratch, NULL);
}

static void admin_dlq_list(struct api *api, struct httpd_req *req)
{
	MDB_txn *t;
	MDB_cursor *cur;
	MDB_val k, v;
	struct jw w;
	int rc, n = 0;

	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	buf_reset(&api->scratch);
	jw_init(&w, &api->scratch);
	jw_arr_begin(&w);
	mdb_cursor_open(t, api->store->dbi[DB_DLQ], &cur);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < 1000;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), n++) {
		char id[40];
		struct job j;
		snprintf(id, sizeof(id), "%.*s", (int)MIN(k.mv_size, 39), (const char *)k.mv_data);
		if (job_get(api->store, t, id, &j) == 0)
			api_job_json(&w, api, &j, now_ms());
	}
	mdb_cursor_close(cur);
	jw_arr_end(&w);
	store_abort(t);
	buf_printf(&api->scratch, "%s", "");
	{
		struct buf out;
		buf_init(&out);
		buf_puts(&out, "{\"data\":");
		buf_append(&out, api->scratch.data, api->scratch.len);
		buf_printf(&out, ",\"meta\":{\"total\":%d}}", n);
		httpd_respond(req, 200, "application/json", NULL, out.data, out.len);
		buf_free(&out);
	}
}

static void admin_dlq_item(struct api *api, struct httpd_req *req, struct route *r, int requeue)
{
	char id[40];
	struct job j, after;
	MDB_txn *t;
	MDB_val v;
	int rc;

	if (seg_copy(r, 2, id, sizeof(id)) < 0) {
		api_err(req, 404, "NOT_FOUND", "Not in the dead-letter queue", NULL);
		return;
	}
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (store_get(api->store, t, DB_DLQ, id, strlen(id), &v) < 0 ||
	    job_get(api->store, t, id, &j) < 0) {
		api_wfail(api, t, req, 404, "NOT_FOUND", "Not in the dead-letter queue");
		return;
	}
	if (requeue) {
		const struct jobtype_cfg *type = config_type(api->cfg, j.type);
		struct lc_move m = { .op = LC_RETRY, .job_id = id, .at = now_ms(),
				     .hold = type && !(j.flags & JOB_TEST) ? config_estimate(type) : 0 };
		struct org_rec o;
		struct msg msg;
		if (org_get(api->store, t, j.org, &o) == 0 && o.balance - o.held < m.hold) {
			api_wfail(api, t, req, 402, "INSUFFICIENT_CREDITS",
				  "The org has not enough credits to requeue this job");
			return;
		}
		if ((rc = lc_apply(api->store, t, &m, &after)) < 0) {
			if (rc == -ESTALE)
				api_wfail(api, t, req, 409, "CONFLICT", "The job is not failed");
			else
				api_store_error(api, t, req, rc);
			return;
		}
		api_msg_job(&msg, MSG_JOB_WAITING, &after);
		api_post(api, ACTOR_DISPATCHER, &msg);
	} else {
		/* drop from the DLQ; the job stays failed */
		j.flags &= (uint8_t)~JOB_IN_DLQ;
		if ((rc = job_put(api->store, t, &j)) < 0 ||
		    (rc = lc_dlq_remove(api->store, t, id)) < 0 ||
		    (rc = job_get(api->store, t, id, &after)) < 0) {
			api_store_error(api, t, req, rc);
			return;
		}
	}
	{
		struct jw w;
		buf_reset(&api->scratch);
		jw_init(&w, &api->scratch);
		api_job_json(&w, api, &after, now_ms());
	}
	api_wdone(api, t, req, 200, &api->scratch, NULL);
}

void api_admin_route(struct api *api, struct httpd_req *req, struct route *r)
{
	if (api_admin_auth(api, req) < 0)
		return;
	if (r->nseg == 2 && seg_is(r, 1, "orgs")) {
		if (r->is_post)
			admin_org_create(api, req);
		else
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use POST", NULL);
	} else if (r->nseg >= 3 && r->nseg <= 4 && seg_is(r, 1, "orgs")) {
		admin_org(api, req, r);
	} else if (r->nseg == 3 && seg_is(r, 1, "keys")) {
		if (r->is_delete)
			admin_key_delete(api, req, r);
		else
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use DELETE", NULL);
	} else if (r->nseg == 2 && seg_is(r, 1, "dlq")) {
		if (r->is_get)
			admin_dlq_list(api, req);
		else
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
	} else if (r->nseg == 3 && seg_is(r, 1, "dlq") && r->is_delete) {
		admin_dlq_item(api, req, r, 0);
	} else if (r->nseg == 4 && seg_is(r, 1, "dlq") && seg_is(r, 3, "requeue")) {
		if (r->is_post)
			admin_dlq_item(api, req, r, 1);
		else
			api_err(req, 405, "METHOD_NOT_ALLOWED", "Use POST", NULL);
	} else {
		api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
	}
}
