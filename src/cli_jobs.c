/* cli_jobs.c - the job commands: submit (with uploads of local inputs),
 * get, list, cancel, retry, logs, types, balance. */
#include "cli_int.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ASSET_NAME 128

/* ---- submit ----------------------------------------------------------------------- */

static const char *content_type(const char *name)
{
	static const struct { const char *ext, *type; } t[] = {
		{ ".mp4", "video/mp4" }, { ".m4v", "video/mp4" }, { ".mov", "video/quicktime" },
		{ ".webm", "video/webm" }, { ".mkv", "video/x-matroska" }, { ".avi", "video/x-msvideo" },
		{ ".ts", "video/mp2t" }, { ".mp3", "audio/mpeg" }, { ".wav", "audio/wav" },
		{ ".flac", "audio/flac" }, { ".ogg", "audio/ogg" }, { ".m4a", "audio/mp4" },
		{ ".aac", "audio/aac" }, { ".opus", "audio/opus" }, { ".png", "image/png" },
		{ ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" }, { ".gif", "image/gif" },
		{ ".webp", "image/webp" }, { ".srt", "application/x-subrip" }, { ".vtt", "text/vtt" },
		{ ".txt", "text/plain" }, { ".csv", "text/csv" }, { ".json", "application/json" },
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < ARRAY_SIZE(t); i++)
		if (strcasecmp(dot, t[i].ext) == 0)
			return t[i].type;
	return "application/octet-stream";
}

/* The asset name the server accepts: the file's base name with anything but
 * letters, digits, '.', '_' and '-' turned into '_', not starting with '.'. */
static void asset_name(char *out, size_t outsz, const char *path)
{
	const char *b = strrchr(path, '/');
	size_t o = 0;

	b = b ? b + 1 : path;
	for (; *b && o + 1 < MIN(outsz, MAX_ASSET_NAME + 1); b++) {
		char ch = *b;
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
		out[o++] = ok ? ch : '_';
	}
	out[o] = '\0';
	if (!o || out[0] == '.')
		snprintf(out, outsz, "upload%.100s", o ? out : "");
}

/* Upload a local file through the assets flow; its URL goes to url_out
 * (malloc'd). 0 or CLI_FAIL after saying why. */
static int upload(struct cli *c, const char *input, const char *path, char **url_out)
{
	struct cli_resp r;
	struct stat st;
	char name[MAX_ASSET_NAME + 16], p[128];
	cJSON *b;
	const cJSON *d;
	const char *id, *put, *url;
	int rc;

	asset_name(name, sizeof(name), path);
	if (stat(path, &st) < 0) {
		fprintf(stderr, "jobring submit: --input %s: cannot read %s: %s\n", input, path,
			strerror(errno));
		return CLI_FAIL;
	}
	if (c->tty)
		fprintf(stderr, "uploading %s (%lld bytes)...\n", path, (long long)st.st_size);
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "name", name);
	cJSON_AddNumberToObject(b, "size", (double)st.st_size);
	cJSON_AddStringToObject(b, "contentType", content_type(name));
	rc = cli_request(c, "POST", "/assets", b, CLI_AUTH_KEY, &r);
	cJSON_Delete(b);
	if (rc < 0) {
		fprintf(stderr, "jobring submit: cannot upload --input %s (%s):\n", input, path);
		cli_report(c, &r);
		cli_resp_free(&r);
		return CLI_FAIL;
	}
	d = cli_data(&r);
	id = cli_js(d, "id", NULL);
	url = cli_js(d, "url", NULL);
	put = cli_js(cJSON_GetObjectItemCaseSensitive(r.json, "upload"), "url", NULL);
	if (url && !strcmp(cli_js(r.json, "status", ""), "deduplicated")) {
		*url_out = xstrdup(url);
		cli_resp_free(&r);
		return 0;
	}
	if (!id || !put || cli_check_id(c, "asset id", id) != 0) {
		fprintf(stderr, "jobring submit: POST /assets answered without an asset id and an "
			"upload URL\n");
		cli_resp_free(&r);
		return CLI_FAIL;
	}
	snprintf(p, sizeof(p), "/assets/%s/complete", id);
	{
		struct cli_resp u;
		char *put_url = xstrdup(put);
		rc = cli_put_file(c, put_url, path, content_type(name), &u);
		free(put_url);
		if (rc < 0) {
			fprintf(stderr, "jobring submit: uploading %s failed:\n", path);
			cli_report(c, &u);
			cli_resp_free(&u);
			cli_resp_free(&r);
			return CLI_FAIL;
		}
		cli_resp_free(&u);
	}
	cli_resp_free(&r);
	if (cli_request(c, "POST", p, NULL, CLI_AUTH_KEY, &r) < 0) {
		fprintf(stderr, "jobring submit: cannot complete the upload of %s:\n", path);
		cli_report(c, &r);
		cli_resp_free(&r);
		return CLI_FAIL;
	}
	url = cli_js(cli_data(&r), "url", NULL);
	if (!url) {
		fprintf(stderr, "jobring submit: the uploaded asset %s has no URL\n", id);
		cli_resp_free(&r);
		return CLI_FAIL;
	}
	*url_out = xstrdup(url);
	cli_resp_free(&r);
	return 0;
}

/* Split "K=V" (k must be non-empty). 0 or CLI_USAGE. */
static int split_kv(const struct cli *c, const char *opt, const char *s, char *k, size_t ksz,
		    const char **v)
{
	const char *eq = strchr(s, '=');

	*v = NULL;
	if (!eq || eq == s || (size_t)(eq - s) >= ksz)
		return cli_usage_error(c, "--%s wants %s, not '%s'", opt,
				       !strcmp(opt, "param") ? "K=V" : "NAME=URL or NAME=@FILE", s);
	memcpy(k, s, (size_t)(eq - s));
	k[eq - s] = '\0';
	*v = eq + 1;
	return 0;
}

static void put_item(cJSON *obj, const char *k, cJSON *v)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, k))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, k, v);
	else
		cJSON_AddItemToObject(obj, k, v);
}

/* Build {type, params, inputs, idempotencyKey}; local files are checked
 * here and uploaded by the caller. 0 or CLI_USAGE. */
static int build_body(struct cli *c, cJSON *body)
{
	cJSON *inputs, *params;
	char k[256];
	const char *v;
	int rc;

	cJSON_AddStringToObject(body, "type", c->pos[0]);
	inputs = cJSON_AddObjectToObject(body, "inputs");
	params = cJSON_AddObjectToObject(body, "params");

	for (int i = 0; i < c->nvals; i++) {
		const char *opt = c->vals[i].opt;
		if (strcmp(opt, "param") && strcmp(opt, "input"))
			continue;
		if ((rc = split_kv(c, opt, c->vals[i].val, k, sizeof(k), &v)) != 0)
			return rc;
		if (!strcmp(opt, "param")) {
			const char *end = NULL;
			cJSON *j = cJSON_ParseWithOpts(v, &end, 1);
			put_item(params, k, j ? j : cJSON_CreateString(v));
		} else if (v[0] == '@') {
			struct stat st;
			if (stat(v + 1, &st) < 0)
				return cli_usage_error(c, "--input %s: cannot read %s: %s", k, v + 1,
						       strerror(errno));
			if (!S_ISREG(st.st_mode))
				return cli_usage_error(c, "--input %s: %s is not a regular file", k,
						       v + 1);
			put_item(inputs, k, cJSON_CreateNull());	/* filled after the upload */
		} else if (v[0] == '{') {
			cJSON *j = cJSON_Parse(v);
			if (!cJSON_IsObject(j)) {
				cJSON_Delete(j);
				return cli_usage_error(c, "--input %s: '%s' is not a JSON object", k, v);
			}
			put_item(inputs, k, j);
		} else if (!v[0]) {
			return cli_usage_error(c, "--input %s: empty source (a URL or @FILE)", k);
		} else {
			put_item(inputs, k, cJSON_CreateString(v));
		}
	}
	if ((v = cli_get(c, "idempotency-key")))
		cJSON_AddStringToObject(body, "idempotencyKey", v);
	return 0;
}

int cli_submit(struct cli *c)
{
	cJSON *body = cJSON_CreateObject();
	struct cli_resp r;
	const char *wt = cli_get(c, "wait-timeout");
	int64_t t;
	int rc;

	if (wt && (parse_i64(wt, 1, 86400 * 7, &t) < 0 || !cli_get(c, "wait"))) {
		cJSON_Delete(body);
		return cli_usage_error(c, "--wait-timeout wants a number of seconds, with --wait");
	}
	if ((rc = build_body(c, body)) != 0) {
		cJSON_Delete(body);
		return rc;
	}
	/* the uploads, in the order given */
	for (int i = 0; i < c->nvals; i++) {
		char k[256], *url = NULL;
		const char *v;
		if (strcmp(c->vals[i].opt, "input") ||
		    split_kv(c, "input", c->vals[i].val, k, sizeof(k), &v) != 0 || v[0] != '@')
			continue;
		if ((rc = upload(c, k, v + 1, &url)) != 0) {
			cJSON_Delete(body);
			return rc;
		}
		put_item(cJSON_GetObjectItemCaseSensitive(body, "inputs"), k, cJSON_CreateString(url));
		free(url);
	}
	rc = cli_request(c, "POST", "/jobs", body, CLI_AUTH_KEY, &r);
	cJSON_Delete(body);
	if (rc < 0) {
		rc = cli_report(c, &r);
		cli_resp_free(&r);
		return rc;
	}
	const cJSON *d = cli_data(&r);
	const char *id = cli_js(d, "id", NULL);
	if (!id || cli_check_id(c, "job id", id) != 0) {
		fprintf(stderr, "jobring submit: the server answered without a job id\n");
		cli_resp_free(&r);
		return CLI_FAIL;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "idempotent")))
		fprintf(stderr, "jobring submit: %s was already submitted under this idempotency "
			"key; this is that job\n", id);
	if (!cli_get(c, "wait")) {
		if (c->json)
			cli_print_raw(&r);
		else
			printf("%s\n", id);
		cli_resp_free(&r);
		return CLI_OK;
	}
	if (!c->json)
		fprintf(stderr, "submitted %s (%s)\n", id, cli_js(d, "type", c->pos[0]));
	char *idc = xstrdup(id);
	cli_resp_free(&r);
	rc = cli_wait(c, idc);
	free(idc);
	return rc;
}

/* ---- get, list, cancel, retry ---------------------------------------------------------- */

static void pct(char *out, size_t outsz, const cJSON *j)
{
	const char *st = cli_js(j, "status", "");
	double p = cli_jn(j, "progress", 0);

	if (!strcmp(st, "complete"))
		snprintf(out, outsz, "100%%");
	else if (p > 0)
		snprintf(out, outsz, "%d%%", (int)(p * 100 + 0.5 > 100 ? 100 : p * 100 + 0.5));
	else
		snprintf(out, outsz, "-");
}

void cli_jobs_table(const cJSON *jobs, FILE *out)
{
	struct cli_table t;
	const cJSON *j;

	cli_table_init(&t, 6, "ID", "TYPE", "STATUS", "PROGRESS", "AGE", "ERROR");
	cJSON_ArrayForEach(j, jobs) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
		char p[16], age[16], err[512] = "";
		pct(p, sizeof(p), j);
		cli_age(age, sizeof(age), (int64_t)cli_jn(j, "createdAt", 0));
		if (cJSON_IsObject(e)) {
			snprintf(err, sizeof(err), "%s: %s", cli_js(e, "code", "?"),
				 cli_js(e, "message", ""));
			cli_trunc(err, 72);
		}
		cli_table_row(&t, cli_js(j, "id", "?"), cli_js(j, "type", "?"),
			      cli_js(j, "status", "?"), p, age, err);
	}
	cli_table_print(&t, out);
}

static void show_job(const cJSON *j)
{
	struct cli_kvs kv = { 0 };
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "output");
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(j, "steps"), *s;
	static const char *const times[][2] = { { "created", "createdAt" },
		{ "dispatched", "dispatchedAt" }, { "started", "startedAt" },
		{ "completed", "completedAt" } };
	char buf[64], age[16];
	char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "inputs"));
	char *pa = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "params"));

	cli_kvs_add(&kv, "id", "%s", cli_js(j, "id", "?"));
	cli_kvs_add(&kv, "type", "%s", cli_js(j, "type", "?"));
	cli_kvs_add(&kv, "status", "%s", cli_js(j, "status", "?"));
	pct(buf, sizeof(buf), j);
	cli_kvs_add(&kv, "progress", "%s", buf);
	cJSON_ArrayForEach(s, steps)
		cli_kvs_add(&kv, "step", "%s (%s)", cli_js(s, "name", "?"), cli_js(s, "status", "?"));
	for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
		int64_t ms = (int64_t)cli_jn(j, times[i][1], 0);
		if (!ms)
			continue;
		cli_time(buf, sizeof(buf), ms);
		cli_age(age, sizeof(age), ms);
		cli_kvs_add(&kv, times[i][0], "%s (%s ago)", buf, age);
	}
	cli_kvs_add(&kv, "retries", "%d", (int)cli_jn(j, "retryCount", 0));
	if (cli_js(j, "idempotencyKey", NULL))
		cli_kvs_add(&kv, "idempotency", "%s", cli_js(j, "idempotencyKey", ""));
	cli_money(buf, sizeof(buf), cJSON_GetObjectItemCaseSensitive(j, "cost"));
	cli_kvs_add(&kv, "cost", "%s", buf);
	cli_kvs_add(&kv, "inputs", "%s", in ? in : "{}");
	cli_kvs_add(&kv, "params", "%s", pa ? pa : "{}");
	if (cJSON_IsObject(e)) {
		cli_kvs_add(&kv, "error", "%s: %s", cli_js(e, "code", "?"), cli_js(e, "message", ""));
		if (cli_js(e, "detail", NULL))
			cli_kvs_add(&kv, "detail", "%s", cli_js(e, "detail", ""));
		cli_kvs_add(&kv, "retryable", "%s",
			    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "retryable")) ? "yes" : "no");
	}
	if (cJSON_IsObject(o)) {
		const cJSON *f, *data = cJSON_GetObjectItemCaseSensitive(o, "data");
		cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(o, "files"))
			cli_kvs_add(&kv, "output", "%s", cli_js(f, "url", "?"));
		if (data && !cJSON_IsNull(data)) {
			char *d = cJSON_PrintUnformatted(data);
			cli_kvs_add(&kv, "data", "%s", d);
			free(d);
		}
		if (cli_jn(o, "expiresAt", 0) > 0) {
			cli_time(buf, sizeof(buf), (int64_t)cli_jn(o, "expiresAt", 0));
			cli_kvs_add(&kv, "links until", "%s", buf);
		}
	}
	free(in);
	free(pa);
	cli_kvs_print(&kv, stdout);
}

int cli_get_job(struct cli *c)
{
	struct cli_resp r;
	char p[128];

	if (cli_check_id(c, "job id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/jobs/%s", c->pos[0]);
	if (cli_call(c, "GET", p, NULL, &r))
		return CLI_FAIL;
	if (!c->json)
		show_job(cli_data(&r));
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_list(struct cli *c)
{
	static const char *const st[] = { "waiting", "dispatched", "running", "complete", "failed",
					  "cancelled" };
	const char *status = cli_get(c, "status"), *type = cli_get(c, "type");
	const char *limit = cli_get(c, "limit"), *offset = cli_get(c, "offset");
	char q[1024], enc[512];
	int64_t lim = 20, off = 0;
	struct cli_resp r;
	int ok = !status;

	for (size_t i = 0; status && i < ARRAY_SIZE(st); i++)
		ok |= !strcmp(status, st[i]);
	if (!ok)
		return cli_usage_error(c, "--status must be one of waiting dispatched running "
				       "complete failed cancelled");
	if (limit && parse_i64(limit, 1, 100, &lim) < 0)
		return cli_usage_error(c, "--limit must be a number from 1 to 100");
	if (offset && parse_i64(offset, 0, 10000000, &off) < 0)
		return cli_usage_error(c, "--offset must be a number from 0");
	snprintf(q, sizeof(q), "/jobs?limit=%lld&offset=%lld", (long long)lim, (long long)off);
	if (status)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "&status=%s", status);
	if (type) {
		cli_qenc(enc, sizeof(enc), type);
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "&type=%s", enc);
	}
	if (cli_call(c, "GET", q, NULL, &r))
		return CLI_FAIL;
	if (!c->json) {
		const cJSON *d = cli_data(&r);
		int n = cJSON_GetArraySize(d);
		double total = cli_jn(cJSON_GetObjectItemCaseSensitive(r.json, "meta"), "total", n);
		if (n == 0)
			fprintf(stderr, "no jobs%s\n", status || type || off ? " match" : " yet");
		else
			cli_jobs_table(d, stdout);
		if (n && total > n)
			fprintf(stderr, "(%lld-%lld of %.0f; see --offset and --limit)\n",
				(long long)off + 1, (long long)off + n, total);
	}
	cli_resp_free(&r);
	return CLI_OK;
}

static int move(struct cli *c, const char *verb)
{
	struct cli_resp r;
	char p[128];

	if (cli_check_id(c, "job id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/jobs/%s/%s", c->pos[0], verb);
	if (cli_call(c, "POST", p, NULL, &r))
		return CLI_FAIL;
	if (!c->json) {
		const cJSON *d = cli_data(&r);
		if (!strcmp(verb, "retry"))
			printf("%s: %s (retry %d)\n", cli_js(d, "id", c->pos[0]),
			       cli_js(d, "status", "?"), (int)cli_jn(d, "retryCount", 0));
		else
			printf("%s: %s\n", cli_js(d, "id", c->pos[0]), cli_js(d, "status", "?"));
	}
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_cancel(struct cli *c)
{
	return move(c, "cancel");
}

int cli_retry(struct cli *c)
{
	return move(c, "retry");
}

/* ---- logs, types, balance ----------------------------------------------------------- */

int cli_logs(struct cli *c)
{
	struct cli_resp r;
	const cJSON *l;
	char p[128];

	if (cli_check_id(c, "job id", c->pos[0]))
		return CLI_USAGE;
	snprintf(p, sizeof(p), "/jobs/%s/logs", c->pos[0]);
	if (cli_call(c, "GET", p, NULL, &r))
		return CLI_FAIL;
	if (!c->json) {
		cJSON_ArrayForEach(l, cli_data(&r)) {
			int64_t ms = (int64_t)cli_jn(l, "timestamp", 0);
			const char *step = cli_js(l, "step", NULL);
			char t[32];
			cli_time(t, sizeof(t), ms);
			printf("%s.%03d  %-5s  %s%s%s%s\n", t, (int)(ms % 1000), cli_js(l, "level", "info"),
			       step ? "[" : "", step ? step : "", step ? "] " : "",
			       cli_js(l, "message", ""));
		}
	}
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_types(struct cli *c)
{
	struct cli_resp r;
	struct cli_table t;
	const cJSON *ty;

	if (cli_call(c, "GET", "/jobs/types", NULL, &r))
		return CLI_FAIL;
	if (!c->json) {
		cli_table_init(&t, 4, "TYPE", "ESTIMATE", "MAX TIME", "SUMMARY");
		cJSON_ArrayForEach(ty, cli_data(&r)) {
			const cJSON *price = cJSON_GetObjectItemCaseSensitive(ty, "price");
			char est[32], max[32];
			cli_money(est, sizeof(est), cJSON_GetObjectItemCaseSensitive(price, "estimate"));
			snprintf(max, sizeof(max), "%ds", (int)cli_jn(ty, "maxExecutionSeconds", 0));
			cli_table_row(&t, cli_js(ty, "type", "?"), est,
				      cli_jn(ty, "maxExecutionSeconds", 0) > 0 ? max : "-",
				      cli_js(ty, "summary", ""));
		}
		cli_table_print(&t, stdout);
	}
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_balance(struct cli *c)
{
	struct cli_resp r;
	struct cli_kvs kv = { 0 };
	char b[32], h[32], a[32];

	if (cli_call(c, "GET", "/billing/balance", NULL, &r))
		return CLI_FAIL;
	if (!c->json) {
		const cJSON *d = cli_data(&r);
		cJSON *n = cJSON_CreateNumber(cli_jn(d, "balance", 0));
		cli_money(b, sizeof(b), n);
		cJSON_SetNumberValue(n, cli_jn(d, "held", 0));
		cli_money(h, sizeof(h), n);
		cJSON_SetNumberValue(n, cli_jn(d, "available", cli_jn(d, "balance", 0) -
							    cli_jn(d, "held", 0)));
		cli_money(a, sizeof(a), n);
		cJSON_Delete(n);
		cli_kvs_add(&kv, "balance", "%s", b);
		cli_kvs_add(&kv, "held", "%s (for unfinished jobs)", h);
		cli_kvs_add(&kv, "available", "%s", a);
		cli_kvs_print(&kv, stdout);
	}
	cli_resp_free(&r);
	return CLI_OK;
}
