/* cli_admin.c - `jobring webhooks …` (an org's endpoints, with its API key)
 * and `jobring admin …` (orgs, keys, credits, the dead-letter queue, with
 * the admin token). */
#include "cli_int.h"
#include "jobring/buf.h"
#include "jobring/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- webhooks ------------------------------------------------------------------------ */

static const char *const wh_events[] = { "job.created", "job.started", "job.completed",
					 "job.failed", "job.cancelled", "balance.low" };

static void events_str(char *out, size_t outsz, const cJSON *arr)
{
	const cJSON *e;
	size_t o = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(e, arr)
		if (cJSON_IsString(e) && o < outsz)
			o += (size_t)snprintf(out + o, outsz - o, "%s%s", o ? "," : "", e->valuestring);
}

static void show_endpoint(const cJSON *d)
{
	struct cli_kvs kv = { 0 };
	char ev[512];
	const char *secret = cli_js(d, "signingSecret", NULL);

	events_str(ev, sizeof(ev), cJSON_GetObjectItemCaseSensitive(d, "subscribedEvents"));
	cli_kvs_add(&kv, "id", "%s", cli_js(d, "id", "?"));
	cli_kvs_add(&kv, "name", "%s", cli_js(d, "name", ""));
	cli_kvs_add(&kv, "url", "%s", cli_js(d, "url", ""));
	cli_kvs_add(&kv, "events", "%s", ev);
	cli_kvs_add(&kv, "active", "%s",
		    cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(d, "active")) ? "no" : "yes");
	if (secret)
		cli_kvs_add(&kv, "secret", "%s  (shown once: keep it to verify signatures)", secret);
	cli_kvs_print(&kv, stdout);
}

int cli_wh_list(struct cli *c)
{
	struct cli_resp r;
	struct cli_table t;
	const cJSON *e;

	if (cli_call(c, "GET", "/webhooks/endpoints", NULL, &r))
		return CLI_FAIL;
	if (!c->json) {
		if (!cJSON_GetArraySize(cli_data(&r)))
			fprintf(stderr, "no webhook endpoints (add one: jobring webhooks create --url "
				"URL)\n");
		cli_table_init(&t, 5, "ID", "NAME", "ACTIVE", "EVENTS", "URL");
		cJSON_ArrayForEach(e, cli_data(&r)) {
			char ev[512];
			const char *why = cli_js(e, "disabledReason", NULL);
			char act[64];
			events_str(ev, sizeof(ev), cJSON_GetObjectItemCaseSensitive(e, "subscribedEvents"));
			if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "active")))
				snprintf(act, sizeof(act), "no%s%s%s", why ? " (" : "", why ? why : "",
					 why ? ")" : "");
			else
				snprintf(act, sizeof(act), "yes");
			cli_table_row(&t, cli_js(e, "id", "?"), cli_js(e, "name", ""), act, ev,
				      cli_js(e, "url", ""));
		}
		cli_table_print(&t, t.nrows ? stdout : NULL);
	}
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_wh_create(struct cli *c)
{
	const char *url = cli_get(c, "url"), *name = cli_get(c, "name");
	cJSON *b, *ev;
	struct cli_resp r;
	int n = 0;

	if (!url)
		return cli_usage_error(c, "--url URL is required (where deliveries go)");
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return cli_usage_error(c, "--url must be an http:// or https:// URL");
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "name", name ? name : "cli");
	cJSON_AddStringToObject(b, "url", url);
	ev = cJSON_AddArrayToObject(b, "subscribedEvents");
	for (int i = 0; i < c->nvals; i++) {
		const char *e = c->vals[i].val;
		int ok = 0;
		if (strcmp(c->vals[i].opt, "event"))
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(wh_events); k++)
			ok |= !strcmp(e, wh_events[k]);
		if (!ok) {
			cJSON_Delete(b);
			return cli_usage_error(c, "--event '%s' is not one of job.created job.started "
					       "job.completed job.failed job.cancelled balance.low", e);
		}
		cJSON_AddItemToArray(ev, cJSON_CreateString(e));
		n++;
	}
	if (!n)
		for (size_t k = 2; k < 5; k++)	/* completed, failed, cancelled */
			cJSON_AddItemToArray(ev, cJSON_CreateString(wh_events[k]));
	n = cli_call(c, "POST", "/webhooks/endpoints", b, &r);
	cJSON_Delete(b);
	if (n)
		return CLI_FAIL;
	if (!c->json)
		show_endpoint(cli_data(&r));
	cli_resp_free(&r);
	return CLI_OK;
}

/* DELETE prefix/{id} for the id in the first argument (`what` names it in
 * a usage error). */
static int delete_one(struct cli *c, const char *what, const char *prefix)
{
	struct cli_resp r;
	char p[160];

	if (cli_check_id(c, what, c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "%s/%s", prefix, c->pos[0]);
	if (cli_call(c, "DELETE", p, NULL, &r))
		return CLI_FAIL;
	if (!c->json)
		printf("%s: deleted\n", c->pos[0]);
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_wh_delete(struct cli *c)
{
	return delete_one(c, "endpoint id", "/webhooks/endpoints");
}

int cli_wh_deliveries(struct cli *c)
{
	struct cli_resp r;
	struct cli_table t;
	const cJSON *d;
	char p[160];

	if (cli_check_id(c, "endpoint id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/webhooks/endpoints/%s/deliveries", c->pos[0]);
	if (cli_call(c, "GET", p, NULL, &r))
		return CLI_FAIL;
	if (!c->json) {
		cli_table_init(&t, 7, "ID", "EVENT", "STATUS", "ATTEMPTS", "JOB", "AGE", "LAST");
		cJSON_ArrayForEach(d, cli_data(&r)) {
			char att[16], age[16], last[300] = "";
			const char *err = cli_js(d, "lastError", NULL);
			snprintf(att, sizeof(att), "%d", (int)cli_jn(d, "attempts", 0));
			cli_age(age, sizeof(age), (int64_t)cli_jn(d, "createdAt", 0));
			if (cli_jn(d, "lastStatus", 0) > 0)
				snprintf(last, sizeof(last), "HTTP %d", (int)cli_jn(d, "lastStatus", 0));
			else if (err)
				snprintf(last, sizeof(last), "%s", err);
			cli_trunc(last, 60);
			cli_table_row(&t, cli_js(d, "id", "?"), cli_js(d, "event", "?"),
				      cli_js(d, "status", "?"), att, cli_js(d, "jobId", NULL), age, last);
		}
		if (!t.nrows)
			fprintf(stderr, "no deliveries yet\n");
		cli_table_print(&t, t.nrows ? stdout : NULL);
	}
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_wh_redeliver(struct cli *c)
{
	struct cli_resp r;
	char p[256];

	if (cli_check_id(c, "endpoint id", c->pos[0]) || cli_check_id(c, "delivery id", c->pos[1]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/webhooks/endpoints/%s/deliveries/%s/redeliver", c->pos[0],
		 c->pos[1]);
	if (cli_call(c, "POST", p, NULL, &r))
		return CLI_FAIL;
	if (!c->json)
		printf("%s: %s (attempts so far: %d)\n", cli_js(cli_data(&r), "id", c->pos[1]),
		       cli_js(cli_data(&r), "status", "queued"), (int)cli_jn(cli_data(&r), "attempts", 0));
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_wh_rotate(struct cli *c)
{
	struct cli_resp r;
	char p[160];

	if (cli_check_id(c, "endpoint id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/webhooks/endpoints/%s/rotate-secret", c->pos[0]);
	if (cli_call(c, "POST", p, NULL, &r))
		return CLI_FAIL;
	if (!c->json)
		show_endpoint(cli_data(&r));
	cli_resp_free(&r);
	return CLI_OK;
}

/* ---- admin --------------------------------------------------------------------------- */

static void show_org(const cJSON *o)
{
	struct cli_kvs kv = { 0 };
	cJSON *n = cJSON_CreateNumber(0);
	char b[32], h[32], t[32];

	cJSON_SetNumberValue(n, cli_jn(o, "balance", 0));
	cli_money(b, sizeof(b), n);
	cJSON_SetNumberValue(n, cli_jn(o, "held", 0));
	cli_money(h, sizeof(h), n);
	cJSON_Delete(n);
	cli_time(t, sizeof(t), (int64_t)cli_jn(o, "createdAt", 0));
	cli_kvs_add(&kv, "id", "%s", cli_js(o, "id", "?"));
	cli_kvs_add(&kv, "name", "%s", cli_js(o, "name", ""));
	cli_kvs_add(&kv, "plan", "%s", cli_js(o, "plan", ""));
	cli_kvs_add(&kv, "balance", "%s", b);
	cli_kvs_add(&kv, "held", "%s", h);
	cli_kvs_add(&kv, "created", "%s", t);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "suspended")))
		cli_kvs_add(&kv, "suspended", "yes");
	cli_kvs_print(&kv, stdout);
}

int cli_org_create(struct cli *c)
{
	struct cli_resp r;
	cJSON *b = cJSON_CreateObject();
	int rc;

	cJSON_AddStringToObject(b, "name", c->pos[0]);
	if (cli_get(c, "plan"))
		cJSON_AddStringToObject(b, "plan", cli_get(c, "plan"));
	rc = cli_call(c, "POST", "/admin/orgs", b, &r);
	cJSON_Delete(b);
	if (rc)
		return CLI_FAIL;
	if (!c->json)
		show_org(cli_data(&r));
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_org_get(struct cli *c)
{
	struct cli_resp r;
	char p[128];

	if (cli_check_id(c, "org id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/admin/orgs/%s", c->pos[0]);
	if (cli_call(c, "GET", p, NULL, &r))
		return CLI_FAIL;
	if (!c->json)
		show_org(cli_data(&r));
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_org_plan(struct cli *c)
{
	struct cli_resp r;
	cJSON *b;
	char p[128];
	int rc;

	if (cli_check_id(c, "org id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/admin/orgs/%s", c->pos[0]);
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "plan", c->pos[1]);
	rc = cli_call(c, "PATCH", p, b, &r);
	cJSON_Delete(b);
	if (rc)
		return CLI_FAIL;
	if (!c->json)
		show_org(cli_data(&r));
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_key_create(struct cli *c)
{
	struct cli_resp r;
	struct cli_kvs kv = { 0 };
	cJSON *b;
	char p[128];
	int rc;

	if (cli_check_id(c, "org id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/admin/orgs/%s/keys", c->pos[0]);
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "name", cli_get(c, "name") ? cli_get(c, "name") : "cli");
	cJSON_AddBoolToObject(b, "test", cli_get(c, "test") != NULL);
	rc = cli_call(c, "POST", p, b, &r);
	cJSON_Delete(b);
	if (rc)
		return CLI_FAIL;
	if (!c->json) {
		const cJSON *d = cli_data(&r);
		cli_kvs_add(&kv, "id", "%s", cli_js(d, "id", "?"));
		cli_kvs_add(&kv, "org", "%s", cli_js(d, "orgId", c->pos[0]));
		cli_kvs_add(&kv, "test", "%s",
			    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "test")) ? "yes" : "no");
		cli_kvs_add(&kv, "key", "%s", cli_js(d, "key", "?"));
		cli_kvs_print(&kv, stdout);
		fprintf(stderr, "the key is shown only this once: export JOBRING_API_KEY=%s\n",
			cli_js(d, "key", "?"));
	}
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_key_delete(struct cli *c)
{
	return delete_one(c, "key id", "/admin/keys");
}

/* Nanodollars from "12345", "-500", "$5", "$0.25", "-$1.5". 0 or -1. */
static int parse_amount(const char *s, int64_t *out)
{
	int neg = 0;
	char *end;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (*s == '$') {
		double d = strtod(s + 1, &end);
		const char *dot = strchr(s + 1, '.');
		if (end == s + 1 || *end || !isfinite(d) || d > 1e6 || (dot && strlen(dot + 1) > 9))
			return -1;
		*out = (int64_t)llround(d * 1e9);
	} else if (parse_i64(s, 0, 1000000000000000LL, out) < 0) {
		return -1;
	}
	if (neg)
		*out = -*out;
	return *out ? 0 : -1;
}

int cli_credits(struct cli *c)
{
	struct cli_resp r;
	struct cli_kvs kv = { 0 };
	int64_t amt;
	cJSON *b;
	char p[128], m[32], bal[32];
	int rc;

	if (cli_check_id(c, "org id", c->pos[0]))
		return CLI_USAGE;
	if (parse_amount(c->pos[1], &amt) < 0)
		return cli_usage_error(c, "AMOUNT '%s' is not a non-zero number of nanodollars or "
				       "$dollars (like 5000000000 or '$5')", c->pos[1]);
	snprintf(p, sizeof(p), "/admin/orgs/%s/credits", c->pos[0]);
	b = cJSON_CreateObject();
	cJSON_AddNumberToObject(b, "amount", (double)amt);
	rc = cli_call(c, "POST", p, b, &r);
	cJSON_Delete(b);
	if (rc)
		return CLI_FAIL;
	if (!c->json) {
		money_format(m, sizeof(m), amt);
		money_format(bal, sizeof(bal), (int64_t)cli_jn(cli_data(&r), "balance", 0));
		cli_kvs_add(&kv, "org", "%s", cli_js(cli_data(&r), "orgId", c->pos[0]));
		cli_kvs_add(&kv, amt > 0 ? "added" : "taken", "%s", amt > 0 ? m : m + 1);
		cli_kvs_add(&kv, "balance", "%s", bal);
		cli_kvs_print(&kv, stdout);
	}
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_dlq_list(struct cli *c)
{
	struct cli_resp r;

	if (cli_call(c, "GET", "/admin/dlq", NULL, &r))
		return CLI_FAIL;
	if (!c->json) {
		if (cJSON_GetArraySize(cli_data(&r)))
			cli_jobs_table(cli_data(&r), stdout);
		else
			fprintf(stderr, "the dead-letter queue is empty\n");
	}
	cli_resp_free(&r);
	return CLI_OK;
}

static int dlq_item(struct cli *c, const char *method, const char *suffix, const char *what)
{
	struct cli_resp r;
	char p[160];

	if (cli_check_id(c, "job id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/admin/dlq/%s%s", c->pos[0], suffix);
	if (cli_call(c, method, p, NULL, &r))
		return CLI_FAIL;
	if (!c->json)
		printf("%s: %s (now %s)\n", c->pos[0], what, cli_js(cli_data(&r), "status", "?"));
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_dlq_requeue(struct cli *c)
{
	return dlq_item(c, "POST", "/requeue", "requeued");
}

int cli_dlq_delete(struct cli *c)
{
	return dlq_item(c, "DELETE", "", "removed from the dead-letter queue");
}
